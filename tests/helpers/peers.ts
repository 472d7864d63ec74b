import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ParsedMail, simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

export interface ReceivedRequest {
  path: string
  headers: IncomingHttpHeaders
  body: string
  // biome-ignore lint/suspicious/noExplicitAny: event payloads of several shapes
  json: any
  /** The status the receiver answered, once it has. */
  status?: number
}

export interface Receiver {
  url: string
  received: ReceivedRequest[]
  /** How to answer each request: a status code (200 when none is set). */
  respond: (request: ReceivedRequest) => number | Promise<number>
  close(): Promise<void>
}

/** A real HTTP server that records what webhooks POST to it. */
export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    received: [],
    respond: () => 200,
    close: async () => {},
  }
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8')
      let json: unknown
      try {
        json = JSON.parse(body)
      } catch {
        json = undefined
      }
      const received: ReceivedRequest = { path: request.url ?? '', headers: request.headers, body, json }
      receiver.received.push(received)
      const status = await receiver.respond(received)
      if (response.destroyed) return
      response.statusCode = status
      response.end()
      received.status = status
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  receiver.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return receiver
}

export interface MailSink {
  url: string
  mails: ParsedMail[]
  /** Return an SMTP error message to refuse a message (the sender should retry), or nothing to accept it. */
  refuse: () => string | undefined
  close(): Promise<void>
}

/** A real SMTP server in the test process; what it accepts is read back with mailparser. */
export async function startMailSink(): Promise<MailSink> {
  const sink: MailSink = { url: '', mails: [], refuse: () => undefined, close: async () => {} }
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', async () => {
        const refusal = sink.refuse()
        if (refusal) {
          const error = new Error(refusal) as Error & { responseCode: number }
          error.responseCode = 451
          return callback(error)
        }
        sink.mails.push(await simpleParser(Buffer.concat(chunks)))
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  sink.url = `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`
  sink.close = () => new Promise((resolve) => server.close(() => resolve()))
  return sink
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>

/** Polls until `check` returns something truthy, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await check()
    if (result) return result as Truthy<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
