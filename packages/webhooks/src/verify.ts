/**
 * Verifies a webhook request and returns its typed event. Async and built on `hmacSha256` from signing.ts, so the
 * sender and the receiver share one implementation and it runs wherever Web Crypto does.
 *
 * Order matters: `standard` checks the (signed) headers' timestamp before the signature, as the reference library
 * does; `pushcash` can only trust its body's `timestamp` after the signature over that body has passed.
 */
import { WebhookVerificationError } from './errors.js';
import { bodyTimestamp, parseJson, toEvent, type WebhookEvent } from './parse.js';
import { fromBase64, hmacSha256, standardKey, timingSafeEqualBytes, type Format } from './signing.js';

/** A Fetch `Headers`, or a plain object such as Node's `req.headers` (names in any case). */
export type HeadersLike = { get(name: string): string | null } | Record<string, string | readonly string[] | undefined>;

export interface VerifyInput {
  /** The raw body exactly as received: bytes, or a string only if nothing re-encoded it. */
  body: string | Uint8Array;
  headers: HeadersLike;
  /** One secret, or several during a rotation: any one of them may match. */
  secrets: string | readonly string[];
  /** The current time (Date or epoch ms). Default: `Date.now()`. */
  now?: Date | number;
  /** How far the signed timestamp may be from `now`, either way. Default: `DEFAULT_TOLERANCE_MS[format]`. */
  toleranceMs?: number;
}

/** `pushcash`: 10 minutes, as Push Cash documents. `standard`: 5 minutes, as the spec's libraries do. `sendcash` signs no time. */
export const DEFAULT_TOLERANCE_MS: Record<Format, number | null> = {
  pushcash: 10 * 60_000,
  sendcash: null,
  standard: 5 * 60_000,
};

const encoder = new TextEncoder();

function headerValue(headers: HeadersLike, name: string): string | undefined {
  let v: string | readonly string[] | null | undefined;
  if (typeof headers.get === 'function') {
    v = (headers as { get(name: string): string | null }).get(name);
  } else {
    for (const [k, value] of Object.entries(headers)) {
      if (k.toLowerCase() === name) v = value as string | readonly string[] | undefined;
    }
  }
  const s = typeof v === 'string' ? v : v?.[0];
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

function required(headers: HeadersLike, name: string): string {
  const v = headerValue(headers, name);
  if (v === undefined) throw new WebhookVerificationError('missing_header', `Missing header ${name}`);
  return v;
}

/** `<prefix><64 hex digits>` to the 32 signature bytes. */
function hexSignature(value: string, name: string, prefix: string): Uint8Array {
  const hex = value.startsWith(prefix) ? value.slice(prefix.length) : null;
  if (hex === null || !/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new WebhookVerificationError('malformed_header', `${name} must be ${prefix}<64 hex digits>`);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function checkTime(at: number, now: number, toleranceMs: number): void {
  if (now - at > toleranceMs) throw new WebhookVerificationError('stale_timestamp');
  if (at - now > toleranceMs) throw new WebhookVerificationError('future_timestamp');
}

function secretList(secrets: string | readonly string[]): string[] {
  const list = (typeof secrets === 'string' ? [secrets] : [...(secrets ?? [])]).filter((s) => typeof s === 'string' && s !== '');
  if (!list.length) throw new WebhookVerificationError('missing_secret');
  return list;
}

/** True if any secret's HMAC of `content` equals one of `received`. Every pair is compared in constant time. */
async function anyMatch(keys: (string | Uint8Array)[], content: Uint8Array, received: Uint8Array[]): Promise<boolean> {
  let ok = false;
  for (const key of keys) {
    const expected = await hmacSha256(key, content);
    for (const sig of received) ok = timingSafeEqualBytes(expected, sig) || ok;
  }
  return ok;
}

export async function verify(format: Format, input: VerifyInput): Promise<WebhookEvent> {
  const { body, headers } = input;
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) {
    // A parsed object: re-serialising it would not reproduce the signed bytes.
    throw new TypeError('verify() needs the raw body (Uint8Array, Buffer or string), not parsed JSON');
  }
  const secrets = secretList(input.secrets);
  const bytes = typeof body === 'string' ? encoder.encode(body) : body;
  const now = input.now === undefined ? Date.now() : typeof input.now === 'number' ? input.now : input.now.getTime();
  const tolerance = input.toleranceMs ?? DEFAULT_TOLERANCE_MS[format];

  switch (format) {
    case 'pushcash':
    case 'sendcash': {
      const name = format === 'pushcash' ? 'x-webhook-signature' : 'x-transfers-signature';
      const sig = hexSignature(required(headers, name), name, format === 'pushcash' ? 'sha256=' : '');
      if (!(await anyMatch(secrets, bytes, [sig]))) throw new WebhookVerificationError('bad_signature');
      const json = parseJson(bytes);
      if (format === 'sendcash') return toEvent(json, { format, timestamp: null });
      const at = bodyTimestamp(json);
      if (!at) throw new WebhookVerificationError('malformed_json', 'The body has no ISO 8601 `timestamp`');
      checkTime(at.getTime(), now, tolerance!);
      return toEvent(json, { format, timestamp: at });
    }
    case 'standard': {
      const id = required(headers, 'webhook-id');
      const ts = required(headers, 'webhook-timestamp');
      const signature = required(headers, 'webhook-signature');
      if (!/^\d{1,15}$/.test(ts)) throw new WebhookVerificationError('malformed_header', 'webhook-timestamp must be unix seconds');
      checkTime(Number(ts) * 1000, now, tolerance!);
      const entries = signature.split(' ').filter((e) => e.includes(','));
      if (!entries.length) throw new WebhookVerificationError('malformed_header', 'webhook-signature must hold `v1,<base64>` entries');
      const received: Uint8Array[] = [];
      for (const e of entries) {
        const [version, value] = [e.slice(0, e.indexOf(',')), e.slice(e.indexOf(',') + 1)];
        if (version !== 'v1') continue; // other schemes (v1a: asymmetric) are not ours to check
        try {
          received.push(fromBase64(value));
        } catch {
          // not base64: cannot match
        }
      }
      let keys: Uint8Array[];
      try {
        keys = secrets.map((s) => {
          const key = standardKey(s);
          if (!key.length) throw new Error('empty key');
          return key;
        });
      } catch (cause) {
        throw new WebhookVerificationError('missing_secret', 'A standard secret is not whsec_<base64>', { cause });
      }
      const prefix = encoder.encode(`${id}.${ts}.`);
      const content = new Uint8Array(prefix.length + bytes.length);
      content.set(prefix);
      content.set(bytes, prefix.length);
      if (!(await anyMatch(keys, content, received))) throw new WebhookVerificationError('bad_signature');
      return toEvent(parseJson(bytes), { format, id, timestamp: new Date(Number(ts) * 1000) });
    }
    default:
      throw new TypeError(`Unknown webhook format ${JSON.stringify(format)}: expected pushcash, sendcash or standard`);
  }
}
