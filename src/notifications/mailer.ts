import type { FastifyBaseLogger } from 'fastify'
import nodemailer from 'nodemailer'
import type { Mail } from './templates.js'

export interface Mailer {
  send(to: string, mail: Mail): Promise<void>
  close(): void
}

/**
 * Mails through SMTP_URL with nodemailer; with no SMTP_URL each mail is written to the log at info
 * (recipient, subject, text), so that a fresh start shows what it would send.
 */
export function createMailer(options: { smtpUrl: string | undefined; from: string; log: FastifyBaseLogger }): Mailer {
  const { smtpUrl, from, log } = options
  if (!smtpUrl) {
    return {
      async send(to, mail) {
        log.info({ mail: { to, subject: mail.subject, text: mail.text } }, 'mail not sent: SMTP_URL is not set')
      },
      close() {},
    }
  }
  // Each step of a send gives up well within the lease on its claim (MAIL_LEASE_SECONDS).
  const transport = nodemailer.createTransport(
    { url: smtpUrl, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 },
    { from },
  )
  return {
    async send(to, mail) {
      await transport.sendMail({ to, subject: mail.subject, text: mail.text, html: mail.html })
    },
    close() {
      transport.close()
    },
  }
}
