/** A failure an operator can act on at start, said in one line: no stack trace helps them. */
export class StartupError extends Error {}
