import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { Database } from '../db/database.js'
import { isDatabaseUnavailable } from '../db/errors.js'
import { eventsWritten } from '../events/outbox.js'
import { setDefaultCurrency } from '../money.js'
import { planDigests } from '../notifications/digest.js'
import { sendDueNotifications } from '../notifications/jobs.js'
import { createMailer } from '../notifications/mailer.js'
import { setDefaultTimeZone } from '../pipeline/service.js'
import { remindDueTasks } from '../tasks/reminders.js'
import { deliverDueWebhooks, webhookJobOptions } from '../webhooks/jobs.js'
import { dispatchEvents } from './dispatch.js'

const DISPATCH_BATCH = 200
const DELIVERY_BATCH = 32
const MAIL_BATCH = 16
const REMINDER_BATCH = 100

export interface WorkerOptions {
  /** What time it is for the morning digest: the system's clock unless a test sets another. */
  clock?: () => Date
}

export interface Workers {
  /** Stops claiming, and resolves once the jobs in hand are finished. */
  stop(): Promise<void>
}

/**
 * The background jobs on PostgreSQL itself: write due task reminders, fan events out, deliver
 * webhooks, send mails. Each round claims what is due (leases, FOR UPDATE SKIP LOCKED) and works it
 * outside any transaction; rounds follow each other while there is work, else wait WORKER_POLL_MS or a
 * local write, whichever comes first. Once a minute on the clock a round also plans the digests due.
 */
export function startWorkers(
  db: Database,
  config: Config,
  log: FastifyBaseLogger,
  options: WorkerOptions = {},
): Workers {
  const clock = options.clock ?? (() => new Date())
  // Housekeeping (an import undone) may change a lead's status: its first response needs the zone too.
  setDefaultTimeZone(config.defaultTimeZone)
  setDefaultCurrency(config.defaultCurrency)
  const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom, log })
  const webhookOptions = webhookJobOptions(config)
  const mailOptions = {
    mailer,
    publicUrl: config.publicUrl,
    defaultTimeZone: config.defaultTimeZone,
    retryDelaysMs: config.jobRetryDelaysMs,
    log,
  }
  let stopping = false
  let wake: (() => void) | undefined
  const onWrite = () => wake?.()
  eventsWritten.on('written', onWrite)

  let digestMinute: number | undefined
  const planDueDigests = async (): Promise<number> => {
    const now = clock()
    const minute = Math.floor(now.getTime() / 60_000)
    if (minute === digestMinute) return 0
    // Set first: a failed run is tried again the next minute, not on every round.
    digestMinute = minute
    return planDigests(db, { now, hour: config.digestHour, defaultTimeZone: config.defaultTimeZone })
  }

  const round = async (): Promise<number> => {
    // Reminders and digests first: their events and mails go out in this same round.
    const reminded = await remindDueTasks(db, REMINDER_BATCH)
    const digests = await planDueDigests()
    const dispatched = await dispatchEvents(db, DISPATCH_BATCH)
    const [delivered, mailed] = await Promise.all([
      deliverDueWebhooks(db, webhookOptions, DELIVERY_BATCH),
      sendDueNotifications(db, mailOptions, MAIL_BATCH),
    ])
    return reminded + digests + dispatched + delivered + mailed
  }

  const loop = async () => {
    let failures = 0
    while (!stopping) {
      let worked = 0
      try {
        worked = await round()
        failures = 0
      } catch (error) {
        failures += 1
        const message = (error as Error).message
        if (isDatabaseUnavailable(error)) log.warn({ err: { message } }, 'workers: database unreachable')
        else log.error({ err: { type: (error as Error).name, message } }, 'workers: a round failed')
      }
      if (worked > 0 || stopping) continue
      // Back off while the database is away, up to ten polls.
      const wait = config.workerPollMs * Math.min(2 ** failures, 10)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait)
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      wake = undefined
    }
  }

  const running = loop()
  return {
    async stop() {
      stopping = true
      wake?.()
      eventsWritten.off('written', onWrite)
      await running
      mailer.close()
    },
  }
}
