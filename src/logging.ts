import type { DestinationStream } from 'pino'
import pinoPretty from 'pino-pretty'

export type LogFormat = 'pretty' | 'json'

/** A person at a terminal reads lines; a collector reads JSON. */
export function defaultLogFormat(stdoutIsTerminal = Boolean(process.stdout.isTTY)): LogFormat {
  return stdoutIsTerminal ? 'pretty' : 'json'
}

/**
 * Where pino writes: its own JSON stream on stdout (undefined), or readable lines.
 */
export function logDestination(format: LogFormat): DestinationStream | undefined {
  if (format === 'json') return undefined
  return pinoPretty({
    colorize: Boolean(process.stdout.isTTY),
    translateTime: 'SYS:HH:MM:ss',
    // The ready line's URLs are in its message already.
    ignore: 'pid,hostname,api,docs,dashboard',
  })
}
