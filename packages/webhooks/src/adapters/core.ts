/**
 * What every adapter does, free of any framework: verify, de-duplicate, run the handler, choose the answer.
 *   200 processed, or a duplicate (the handler is not run again)
 *   401 signature or timestamp refused; 400 body not a known event; 500 handler failed (the sender retries)
 */
import { WebhookVerificationError } from '../errors.js';
import type { WebhookEvent } from '../parse.js';
import type { ProcessedEventStore } from '../process-once.js';
import type { Format } from '../signing.js';
import { verify, type HeadersLike } from '../verify.js';

export interface WebhookHandlerOptions<Tx = undefined> {
  format: Format;
  /** One secret, or several during a rotation. */
  secrets: string | readonly string[];
  /** Handles one verified event. With a store it runs inside the store's transaction (`tx`); throwing answers 500. */
  onEvent(event: WebhookEvent, tx: Tx): unknown;
  /** With a store, an event id already processed answers 200 without calling `onEvent`. Default: none. */
  store?: ProcessedEventStore<Tx>;
  /** Default: `DEFAULT_TOLERANCE_MS[format]`. */
  toleranceMs?: number;
  /** The clock. Default: `Date.now`. */
  now?: () => Date | number;
  /** Told of every failure of `onEvent` or the store. Default: `console.error`. */
  onError?(err: unknown, event: WebhookEvent): void;
}

export interface WebhookReply {
  status: number;
  body: { received: true; duplicate?: true } | { error: string; message: string };
}

export async function handleWebhook<Tx>(o: WebhookHandlerOptions<Tx>, body: string | Uint8Array, headers: HeadersLike): Promise<WebhookReply> {
  let event: WebhookEvent;
  try {
    event = await verify(o.format, { body, headers, secrets: o.secrets, now: o.now?.(), toleranceMs: o.toleranceMs });
  } catch (err) {
    if (err instanceof WebhookVerificationError) return { status: err.status, body: { error: err.code, message: err.message } };
    throw err; // a programming error (unknown format): let the framework's error handling see it
  }
  try {
    if (!o.store) {
      await o.onEvent(event, undefined as Tx);
      return { status: 200, body: { received: true } };
    }
    const r = await o.store.once(event.id, (tx) => o.onEvent(event, tx));
    return { status: 200, body: r.duplicate ? { received: true, duplicate: true } : { received: true } };
  } catch (err) {
    (o.onError ?? ((e) => console.error('webhook handler failed', event.type, event.id, e)))(err, event);
    return { status: 500, body: { error: 'handler_failed', message: 'The event was not processed; redeliver it' } };
  }
}

/** Answer for a framework that already parsed the body: the signed bytes are gone. */
export function rawBodyUnavailable(hint: string): WebhookReply {
  return { status: 500, body: { error: 'raw_body_unavailable', message: `The raw body is needed to verify the signature: ${hint}` } };
}
