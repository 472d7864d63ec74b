/**
 * A text cell starting with one of these is read as a formula by Excel, LibreOffice or Google
 * Sheets (tab and CR too, after they are stripped). OWASP's advice: prefix a single quote.
 */
const FORMULA_START = /^[=+\-@\t\r]/
const NEUTRALISED = /^'[=+\-@\t\r]/

export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text
}

/** The inverse, for a file we exported coming back as an import. */
export function restoreNeutralised(text: string): string {
  return NEUTRALISED.test(text) ? text.slice(1) : text
}
