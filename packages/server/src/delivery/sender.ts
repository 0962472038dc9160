/**
 * One HTTP attempt in two steps: `prepare` renders the body for this moment and signs it (it throws on a fault of the
 * worker's own, such as a secret it cannot use), `send` POSTs it through undici and describes what happened: it never
 * throws, every failure is an outcome with a stable error code. The status line alone decides the outcome: the body is
 * read for at most 2 KB or 1 s, as raw bytes, and never decompressed.
 */
import { renderPayload, signHeadersWith, type EventRecord, type Format, type HmacSync, type PayloadVersion } from '@cashwire/webhooks';
import { createHmac } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { Agent, type Dispatcher } from 'undici';
import type { LookupFn } from '../security/ssrf.js';
import { proxyConnector } from './egress.js';

export const USER_AGENT = 'Cashwire-Webhooks/0.1 (+https://github.com/cashwire/cashwire)';
export const EXCERPT_BYTES = 2048;
/** Once the status line is in, the body is read for at most this long. */
export const BODY_WINDOW_MS = 1_000;
/** Past this, the rest of a response body is not read: the connection is dropped instead. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

export interface SendTimeouts {
  /** TCP/TLS connect timeout. Default 5 s. */
  connectTimeoutMs: number;
  /** The whole request, response headers and the body read included. Default 15 s. */
  totalTimeoutMs: number;
  /**
   * An HTTP proxy (http://[user:password@]host:port) every connection is tunneled through with CONNECT
   * (CASHWIRE_EGRESS_PROXY); see egress.ts. Unset: deliveries connect directly.
   */
  egressProxy?: string;
}

export interface Attempt {
  url: string;
  format: Format;
  payloadVersion: PayloadVersion;
  secrets: string[];
  event: EventRecord;
  /** The attempt's time: the body's `timestamp` and the signature's. */
  at: Date;
}

export interface AttemptOutcome {
  status?: number;
  retryAfter?: string;
  errorCode?: string;
  errorMessage?: string;
  /** The first EXCERPT_BYTES of the body, exactly as received. */
  excerpt?: Buffer;
  /** For an answer that is not 2xx only: its headers, bounded ({@link boundHeaders}). */
  headers?: Record<string, string>;
  latencyMs: number;
}

/** A request ready to go: rendered and signed. */
export interface Prepared {
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** Maps what undici throws to a small set of stable codes. */
export function errorCode(err: unknown): string {
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (e.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'connect_timeout';
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'forbidden_address') return 'forbidden_address';
  if (code === 'proxy_error') return 'proxy_error';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'connection_reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns_error';
  if (e.name === 'AbortError') return 'aborted';
  if (code === 'ERR_INVALID_URL' || code === 'UND_ERR_INVALID_ARG') return 'invalid_url';
  return 'network_error';
}

export function createAgent(t: SendTimeouts, connections = 64, lookup?: LookupFn): Agent {
  // Redirects are never followed: undici only follows them through an interceptor, which we do not install.
  return new Agent({
    // Through the egress proxy, `lookup` (the SSRF guard, in production) checks the destination before the tunnel.
    connect: t.egressProxy
      ? proxyConnector({ proxy: t.egressProxy, timeoutMs: t.connectTimeoutMs, lookup })
      : { timeout: t.connectTimeoutMs, ...(lookup ? { lookup: lookup as never } : {}) },
    headersTimeout: t.totalTimeoutMs,
    bodyTimeout: t.totalTimeoutMs,
    connections,
    pipelining: 1,
    keepAliveTimeout: 10_000,
  });
}

/**
 * Reads the first EXCERPT_BYTES of a response body, for at most `windowMs`; it goes on draining (up to
 * DRAIN_LIMIT_BYTES, within the window) so that the connection can be reused, and past either limit the body is
 * destroyed. Never rejects: a body that errors or is cut off still yields what came. Plain listeners: an async iterator
 * per response costs more than the small bodies webhook receivers send.
 */
function readExcerpt(body: Dispatcher.ResponseData['body'], windowMs: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (destroy: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      body.off('data', onData);
      if (destroy) body.destroy();
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      resolve(all.length > EXCERPT_BYTES ? all.subarray(0, EXCERPT_BYTES) : all);
    };
    const onData = (chunk: Buffer) => {
      if (size < EXCERPT_BYTES) chunks.push(chunk);
      size += chunk.length;
      if (size > DRAIN_LIMIT_BYTES) done(true);
    };
    const timer = setTimeout(() => done(true), windowMs);
    timer.unref();
    body.on('data', onData);
    body.once('end', () => done(false));
    body.once('close', () => done(false));
    body.once('error', () => done(false));
  });
}

/** At most this many response headers are kept of a failed attempt, and at most this many bytes (UTF-8) of names and values in all. */
export const MAX_RESPONSE_HEADERS = 32;
export const MAX_RESPONSE_HEADER_BYTES = 4096;

/**
 * A failed attempt's response headers as stored (delivery_attempts.response_headers, jsonb): each value a string
 * (undici's arrays, such as several set-cookie, joined with ", "), at most MAX_RESPONSE_HEADERS of them and
 * MAX_RESPONSE_HEADER_BYTES in all, the value that crosses the limit truncated (ending in "…") and the rest dropped.
 * undici decodes header bytes as latin1, one character per byte, so any byte a receiver sends survives; only the
 * control bytes (NUL, which jsonb cannot hold, and the rest below 0x20 but tab, and DEL) are written as \xNN.
 */
export function boundHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  let n = 0;
  let budget = MAX_RESPONSE_HEADER_BYTES;
  for (const [rawName, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    if (n >= MAX_RESPONSE_HEADERS || budget <= 0) break;
    const name = printable(rawName.toLowerCase());
    let value = printable(Array.isArray(raw) ? raw.join(', ') : String(raw));
    const nameBytes = Buffer.byteLength(name);
    if (nameBytes + 1 > budget) break;
    let valueBytes = Buffer.byteLength(value);
    if (nameBytes + valueBytes > budget) {
      // Truncated by characters until it fits with its marker (latin1 characters take at most 2 bytes in UTF-8).
      value = value.slice(0, Math.max(0, budget - nameBytes - 3));
      while (value.length > 0 && nameBytes + Buffer.byteLength(value) + 3 > budget) value = value.slice(0, -1);
      value += '…';
      valueBytes = Buffer.byteLength(value);
    }
    out[name] = value;
    n++;
    budget -= nameBytes + valueBytes;
  }
  return out;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/g;
const printable = (s: string) => s.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const hmac: HmacSync = (key, data, encoding) => createHmac('sha256', key).update(data).digest(encoding);

/** A URL's origin and path, parsed once per URL (a lane's deliveries share theirs). */
const targets = new Map<string, { origin: string; path: string }>();
function target(url: string): { origin: string; path: string } {
  let t = targets.get(url);
  if (!t) {
    const u = new URL(url);
    t = { origin: u.origin, path: u.pathname + u.search };
    if (targets.size >= 10_000) targets.clear();
    targets.set(url, t);
  }
  return t;
}

/**
 * Renders the body for the attempt's moment and signs it, synchronously. Throws on a fault of the worker's own (a
 * secret it cannot use) and on a URL that does not parse.
 */
export function prepare(a: Attempt): Prepared {
  const { origin, path } = target(a.url);
  const body = renderPayload(a.event, a.payloadVersion, a.at);
  const headers = {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    // Answers are stored as they come: a compressed one would only be bytes nobody can read.
    'accept-encoding': 'identity',
    ...signHeadersWith({ format: a.format, id: a.event.id, body, secrets: a.secrets, timestamp: a.at }, hmac),
  };
  return { origin, path, headers, body };
}

/** Shutdown signals shared by many attempts at once: each attempt in flight holds one listener on it (undici's). */
const sharedSignals = new WeakSet<AbortSignal>();

/**
 * POSTs a prepared request. Its time is bounded by the agent's timeouts (connect, then `totalTimeoutMs` for the status
 * line and headers) and the body window; `signal` (the worker's shutdown signal, shared by every attempt) aborts it.
 * No controller or timer of its own per attempt: at thousands a second they cost more than the request's own work.
 */
export async function send(agent: Dispatcher, p: Prepared, t: SendTimeouts & { bodyWindowMs?: number }, signal?: AbortSignal): Promise<AttemptOutcome> {
  const started = performance.now();
  if (signal && !sharedSignals.has(signal)) {
    setMaxListeners(0, signal);
    sharedSignals.add(signal);
  }
  try {
    const res = await agent.request({
      origin: p.origin,
      path: p.path,
      method: 'POST',
      headers: p.headers,
      body: p.body,
      // Per request too, for a dispatcher made elsewhere (tests inject theirs).
      headersTimeout: t.totalTimeoutMs,
      bodyTimeout: t.totalTimeoutMs,
      ...(signal ? { signal } : {}),
    });
    // The status line is in: it decides. What the body says, and whether it arrives, does not change the outcome.
    const remaining = t.totalTimeoutMs - (performance.now() - started);
    const excerpt = await readExcerpt(res.body, Math.max(1, Math.min(t.bodyWindowMs ?? BODY_WINDOW_MS, remaining)));
    const retryAfter = res.headers['retry-after'];
    const out: AttemptOutcome = {
      status: res.statusCode,
      retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      excerpt,
      latencyMs: Math.round(performance.now() - started),
    };
    // A failure's headers explain it (retry-after, a proxy's error headers); a success's are not kept: nothing to read.
    if (res.statusCode < 200 || res.statusCode >= 300) out.headers = boundHeaders(res.headers);
    return out;
  } catch (err) {
    return {
      errorCode: signal?.aborted ? 'aborted' : errorCode(err),
      errorMessage: String((err as Error)?.message ?? err).slice(0, 500),
      latencyMs: Math.round(performance.now() - started),
    };
  }
}
