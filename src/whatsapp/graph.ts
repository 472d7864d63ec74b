import type { WhatsAppConfig } from '../config.js'
import { DomainError } from '../errors/domain.js'

const SEND_TIMEOUT_MS = 10_000

export type OutboundMessage =
  | { text: string }
  | { template: { name: string; language: string; components?: Array<Record<string, unknown>> } }

/** Meta's error texts are a sentence or two; the rest of a longer one is cut before it is answered or stored. */
export const MAX_META_TEXT = 300

export function cutMetaText(text: string): string {
  return text.length <= MAX_META_TEXT ? text : `${text.slice(0, MAX_META_TEXT - 1)}…`
}

/** The Graph API refused the message, or could not be reached: nothing was sent. */
export class WhatsAppSendError extends DomainError {
  constructor(metaCode: number | null, metaMessage: string, metaDetails?: string) {
    super(
      502,
      'whatsapp_send_failed',
      metaCode === null
        ? `WhatsApp did not send the message: ${metaMessage}`
        : `WhatsApp refused the message (${metaCode}): ${metaMessage}`,
      { meta_code: metaCode, meta_message: metaMessage, ...(metaDetails && { meta_details: metaDetails }) },
    )
  }
}

/** The request body of POST /{phone_number_id}/messages, as Meta's Cloud API reference writes it. */
export function graphMessageBody(to: string, message: OutboundMessage): Record<string, unknown> {
  const common = { messaging_product: 'whatsapp', recipient_type: 'individual', to }
  if ('text' in message) return { ...common, type: 'text', text: { preview_url: false, body: message.text } }
  const { name, language, components } = message.template
  return {
    ...common,
    type: 'template',
    template: { name, language: { code: language }, ...(components && { components }) },
  }
}

interface GraphAnswer {
  messages?: Array<{ id?: unknown }>
  error?: { code?: unknown; message?: unknown; error_data?: { details?: unknown } }
}

/**
 * Sends one message through the Cloud API and returns its WhatsApp message id (`wamid.…`).
 * Runs outside any transaction: the network must not hold a database connection.
 */
export async function sendWhatsAppMessage(
  config: WhatsAppConfig,
  to: string,
  message: OutboundMessage,
): Promise<string> {
  let response: Response
  try {
    response = await fetch(`${config.graphUrl}/${encodeURIComponent(config.phoneNumberId)}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${config.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(graphMessageBody(to, message)),
      redirect: 'error',
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    })
  } catch (error) {
    const reason =
      (error as Error).name === 'TimeoutError'
        ? `no answer within ${SEND_TIMEOUT_MS / 1000} s`
        : 'the Graph API could not be reached'
    throw new WhatsAppSendError(null, reason)
  }
  let answer: GraphAnswer | undefined
  try {
    answer = (await response.json()) as GraphAnswer
  } catch {
    answer = undefined
  }
  const messageId = answer?.messages?.[0]?.id
  if (response.ok && typeof messageId === 'string' && messageId !== '') return messageId
  const error = answer?.error
  if (error && typeof error.code === 'number') {
    const details = typeof error.error_data?.details === 'string' ? cutMetaText(error.error_data.details) : undefined
    throw new WhatsAppSendError(error.code, cutMetaText(String(error.message ?? '')), details)
  }
  throw new WhatsAppSendError(null, `the Graph API answered ${response.status} without a message id`)
}
