/**
 * From JSON to a typed event: a discriminated union on `type`, and for intent events on `version` too.
 * Parsing checks the envelope and the fields this package relies on (ids, status); it does not validate every field.
 */
import {
  DISPUTE_EVENT_TYPES,
  INTENT_EVENT_TYPES,
  REFUND_EVENT_TYPES,
  USER_EVENT_TYPES,
  type DisputeData,
  type DisputeEventType,
  type RefundData,
  type RefundEventType,
  type UserEventType,
  type UserLimitsData,
  SENDCASH_EVENT_TYPES,
  isEventType,
  type DeliveryExhaustedData,
  type EndpointHealthData,
  type IntentData,
  type IntentEventType,
  type OperationalEventType,
  type PayloadVersion,
  type PaymentStatusData,
} from './catalog.js';
import { WebhookVerificationError } from './errors.js';
import type { Format } from './signing.js';

interface Envelope {
  /**
   * The de-duplication key, the same on every redelivery of the event. `standard`: the signed `webhook-id` header.
   * `pushcash` and `sendcash` sign only the body, so a header id could be swapped by whoever replays a request:
   * the key is derived from the signed body instead, e.g. `intent.approved:intent_…:approved`,
   * `Payment.Status:<paymentReference>:Completed`.
   */
  id: string;
  format: Format;
  /** When the sender signed this attempt (`pushcash`: the body's `timestamp`; `standard`: `webhook-timestamp`); null for `sendcash`. */
  timestamp: Date | null;
}

export type IntentEvent = {
  [T in IntentEventType]:
    | (Envelope & { type: T; version: '2024-05'; data: IntentData<T, '2024-05'> })
    | (Envelope & { type: T; version: '2023-01'; data: IntentData<T, '2023-01'> });
}[IntentEventType];

interface OperationalDataByType {
  'delivery.exhausted': DeliveryExhaustedData;
  'endpoint.disabled': EndpointHealthData;
  'endpoint.recovered': EndpointHealthData;
}
export type OperationalEvent = {
  [T in OperationalEventType]: Envelope & { type: T; version: null; data: OperationalDataByType[T] };
}[OperationalEventType];

/** Refund and dispute events: `version` as for intent events (`tag` and cents, or `idempotency_key` and dollars). */
export type RefundEvent = Envelope & { type: RefundEventType; version: PayloadVersion; data: RefundData };
export type DisputeEvent = Envelope & { type: DisputeEventType; version: PayloadVersion; data: DisputeData };
/** Limit-request events; their only amount (`approved_daily_limit`) is a string in the endpoint's unit. */
export type UserEvent = Envelope & { type: UserEventType; version: null; data: UserLimitsData };

/** Sendcash Pay's only event. */
export type PaymentStatusEvent = Envelope & { type: 'Payment.Status'; version: null; data: PaymentStatusData };

export type WebhookEvent = IntentEvent | RefundEvent | DisputeEvent | UserEvent | OperationalEvent | PaymentStatusEvent;
export type WebhookEventType = WebhookEvent['type'];

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function malformed(message: string): WebhookVerificationError {
  return new WebhookVerificationError('malformed_json', message);
}

/** Decodes and parses a body; anything but a JSON object is `malformed_json`. */
export function parseJson(body: string | Uint8Array): Json {
  let value: unknown;
  try {
    const text = typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: true }).decode(body);
    value = JSON.parse(text);
  } catch (cause) {
    throw new WebhookVerificationError('malformed_json', 'The body is not valid UTF-8 JSON', { cause });
  }
  if (!isObject(value)) throw malformed('The body is not a JSON object');
  return value;
}

/**
 * `2023-01` carries `idempotency_key` and float dollars; `2024-05` carries `tag`, `rail`, `type` and integer cents.
 * Push Cash omits `tag` when none was given, so `rail`/`type` count too, and the amount decides only when nothing else does.
 */
export function detectVersion(data: Json): PayloadVersion {
  if ('tag' in data || 'rail' in data || 'type' in data) return '2024-05';
  if ('idempotency_key' in data) return '2023-01';
  return Number.isInteger(data.amount) ? '2024-05' : '2023-01';
}

function str(data: Json, field: string): string {
  const v = data[field];
  if (typeof v !== 'string' || v === '') throw malformed(`\`data.${field}\` must be a non-empty string`);
  return v;
}

export interface ParseContext {
  format: Format;
  /** A signed event id (`webhook-id`); without one the id is derived from the body. */
  id?: string | null;
  /** The verified attempt time; by default the body's `timestamp` when it parses. */
  timestamp?: Date | null;
}

/** Builds the typed event from a parsed body. Throws `malformed_json` or `unknown_type`. */
export function toEvent(body: Json, ctx: ParseContext): WebhookEvent {
  const timestamp = ctx.timestamp !== undefined ? ctx.timestamp : bodyTimestamp(body);
  const data = body.data;
  const isSendcash = typeof body.event === 'string' && body.type === undefined;
  const type = isSendcash ? body.event : body.type;
  if (typeof type !== 'string') throw malformed('The body has no `type` (or Sendcash `event`)');
  if (isSendcash ? !(SENDCASH_EVENT_TYPES as readonly string[]).includes(type) : !isEventType(type)) {
    throw new WebhookVerificationError('unknown_type', `Unknown event type ${JSON.stringify(type.slice(0, 100))}`);
  }
  if (!isObject(data)) throw malformed('`data` must be an object');

  const base = { format: ctx.format, timestamp };
  const signedId = ctx.id ?? null;
  if (type === 'Payment.Status') {
    const key = `${type}:${str(data, 'paymentReference')}:${str(data, 'status')}`;
    return { ...base, id: signedId ?? key, type, version: null, data: data as unknown as PaymentStatusData };
  }
  if ((INTENT_EVENT_TYPES as readonly string[]).includes(type)) {
    if (typeof data.amount !== 'number') throw malformed('`data.amount` must be a number');
    const key = `${type}:${str(data, 'id')}:${str(data, 'status')}`;
    return { ...base, id: signedId ?? key, type, version: detectVersion(data), data } as unknown as IntentEvent;
  }
  if ((REFUND_EVENT_TYPES as readonly string[]).includes(type) || (DISPUTE_EVENT_TYPES as readonly string[]).includes(type)) {
    if (typeof data.amount !== 'number') throw malformed('`data.amount` must be a number');
    const key = `${type}:${str(data, 'id')}`;
    const version: PayloadVersion = 'idempotency_key' in data ? '2023-01' : '2024-05';
    return { ...base, id: signedId ?? key, type, version, data } as unknown as RefundEvent | DisputeEvent;
  }
  if ((USER_EVENT_TYPES as readonly string[]).includes(type)) {
    const key = `${type}:${str(data, 'user_id')}:${str(data, 'timestamp')}`;
    return { ...base, id: signedId ?? key, type, version: null, data } as unknown as UserEvent;
  }
  const key = type === 'delivery.exhausted' ? `${type}:${str(data, 'delivery_id')}` : `${type}:${str(data, 'endpoint_id')}:${str(data, 'at')}`;
  return { ...base, id: signedId ?? key, type, version: null, data } as unknown as OperationalEvent;
}

/** The body's `timestamp` as a Date, or null when absent or not a date. */
export function bodyTimestamp(body: Json): Date | null {
  if (typeof body.timestamp !== 'string') return null;
  const ms = Date.parse(body.timestamp);
  return Number.isNaN(ms) ? null : new Date(ms);
}

/** Parses an already-verified body. Prefer `verify`, which also checks the signature and the timestamp. */
export function parseEvent(body: string | Uint8Array, ctx: ParseContext): WebhookEvent {
  return toEvent(parseJson(body), ctx);
}

/** An intent, refund or dispute event's amount in integer cents, whatever the payload version. */
export function amountInCents(event: IntentEvent | RefundEvent | DisputeEvent): number {
  return event.version === '2024-05' ? event.data.amount : Math.round(event.data.amount * 100);
}

/** The merchant's own transaction id: `tag` (2024-05) or `idempotency_key` (2023-01). */
export function tagOf(event: IntentEvent): string | null {
  return event.version === '2024-05' ? event.data.tag : event.data.idempotency_key;
}
