/**
 * The three signature schemes, for the sender and for receivers. Async so the same code runs on Node and on
 * runtimes that only have Web Crypto (`crypto.subtle`).
 *
 * - `pushcash`:  `X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`, only when there is a secret.
 * - `sendcash`:  `X-Transfers-Signature: <hex HMAC-SHA256(secret, raw body)>`.
 * - `standard`:  Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` over
 *   `{id}.{timestamp}.{body}`, `whsec_<base64>` secrets, several space-separated signatures during a rotation.
 */

export const FORMATS = ['pushcash', 'sendcash', 'standard'] as const;
export type Format = (typeof FORMATS)[number];

const encoder = new TextEncoder();

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? encoder.encode(data) : data;
}

type NodeCrypto = typeof import('node:crypto');
let nodeCrypto: NodeCrypto | null | undefined;

/** Node's crypto when present (synchronous and fast); otherwise Web Crypto. */
async function node(): Promise<NodeCrypto | null> {
  if (nodeCrypto === undefined) {
    try {
      nodeCrypto = typeof process !== 'undefined' && process.versions?.node ? await import('node:crypto') : null;
    } catch {
      nodeCrypto = null;
    }
  }
  return nodeCrypto;
}

export async function hmacSha256(key: string | Uint8Array, data: string | Uint8Array): Promise<Uint8Array> {
  const n = await node();
  if (n) return new Uint8Array(n.createHmac('sha256', toBytes(key)).update(toBytes(data)).digest());
  const k = await crypto.subtle.importKey('raw', toBytes(key) as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, toBytes(data) as BufferSource));
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Standard Webhooks secrets are `whsec_<base64 key bytes>`; the HMAC key is the decoded bytes. */
export function standardKey(secret: string): Uint8Array {
  return fromBase64(secret.startsWith('whsec_') ? secret.slice(6) : secret);
}

export interface SignInput {
  format: Format;
  /** The event id: the same on every attempt and resend. */
  id: string;
  body: string;
  /** Secrets that sign, newest first. Several only during a rotation (standard sends one signature each). */
  secrets: string[];
  /** The attempt time. */
  timestamp: Date;
}

/**
 * A synchronous HMAC-SHA256: the digest of `data` under `key`, as hex or base64. The server hands in node:crypto's
 * (`createHmac(...).update(...).digest(encoding)`), which signs without a promise per attempt.
 */
export type HmacSync = (key: string | Uint8Array, data: string, encoding: 'hex' | 'base64') => string;

/**
 * The headers that identify and sign one attempt, with a synchronous HMAC. The one definition of the three schemes:
 * {@link signHeaders} is this with Web Crypto (or node:crypto) behind a promise.
 */
export function signHeadersWith(input: SignInput, hmac: HmacSync): Record<string, string> {
  const headers: Record<string, string> = {};
  switch (input.format) {
    case 'pushcash': {
      headers['x-webhook-id'] = input.id;
      const secret = input.secrets[0];
      if (secret) headers['x-webhook-signature'] = `sha256=${hmac(secret, input.body, 'hex')}`;
      return headers;
    }
    case 'sendcash': {
      headers['x-webhook-id'] = input.id;
      const secret = input.secrets[0];
      if (secret) headers['x-transfers-signature'] = hmac(secret, input.body, 'hex');
      return headers;
    }
    case 'standard': {
      const ts = String(Math.floor(input.timestamp.getTime() / 1000));
      headers['webhook-id'] = input.id;
      headers['webhook-timestamp'] = ts;
      const content = `${input.id}.${ts}.${input.body}`;
      const sigs: string[] = [];
      for (const secret of input.secrets) sigs.push(`v1,${hmac(standardKey(secret), content, 'base64')}`);
      if (sigs.length) headers['webhook-signature'] = sigs.join(' ');
      return headers;
    }
  }
}

/** The headers that identify and sign one attempt. */
export async function signHeaders(input: SignInput): Promise<Record<string, string>> {
  const n = await node();
  if (n) return signHeadersWith(input, (key, data, encoding) => n.createHmac('sha256', toBytes(key)).update(data).digest(encoding));
  // Web Crypto signs asynchronously only: ask the scheme which digests it needs, then sign with them, in that order.
  const asked: [string | Uint8Array, string][] = [];
  signHeadersWith(input, (key, data) => {
    asked.push([key, data]);
    return '';
  });
  const digests = await Promise.all(asked.map(([key, data]) => hmacSha256(key, data)));
  let i = 0;
  return signHeadersWith(input, (_key, _data, encoding) => {
    const d = digests[i++]!;
    return encoding === 'hex' ? toHex(d) : toBase64(d);
  });
}

/**
 * Constant-time comparison of two secrets, signatures or tokens, as bytes: strings are compared as their UTF-8 bytes,
 * so inputs of equal character length and different byte length are simply unequal (never an exception). The time
 * taken depends on the length of `b` (the expected value), not on where the inputs differ. No dependencies: it runs
 * wherever Web Crypto does, and the server uses it for every such comparison too.
 */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const x = typeof a === 'string' ? utf8.encode(a) : a;
  const y = typeof b === 'string' ? utf8.encode(b) : b;
  let diff = x.length ^ y.length;
  for (let i = 0; i < y.length; i++) diff |= (x[i % (x.length || 1)] ?? 0) ^ y[i]!;
  return diff === 0 && x.length === y.length;
}

/** Constant-time comparison of two byte strings (length is not secret). Kept for existing callers: {@link constantTimeEqual}. */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  return constantTimeEqual(a, b);
}

const utf8 = new TextEncoder();

/** Makes a new Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export function newStandardSecret(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return `whsec_${toBase64(bytes)}`;
}
