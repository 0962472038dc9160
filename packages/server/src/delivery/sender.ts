/**
 * One HTTP attempt: render the body for this moment, sign it, POST it through undici, and describe what happened.
 * Never throws: every failure is an outcome with a stable error code.
 */
import { renderPayload, signHeaders, type EventRecord, type Format, type PayloadVersion } from '@cashwire/webhooks';
import { setMaxListeners } from 'node:events';
import { Agent, type Dispatcher } from 'undici';
import type { LookupFn } from '../security/ssrf.js';

export const USER_AGENT = 'Cashwire-Webhooks/0.1 (+https://github.com/cashwire/cashwire)';
const EXCERPT_BYTES = 2048;
/** Past this, the rest of a response body is not read: the connection is dropped instead. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

export interface SendTimeouts {
  /** TCP/TLS connect timeout. Default 5 s. */
  connectTimeoutMs: number;
  /** The whole request, response headers and the body read included. Default 15 s. */
  totalTimeoutMs: number;
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
  excerpt?: string;
  latencyMs: number;
}

/** Maps what undici throws to a small set of stable codes. */
export function errorCode(err: unknown): string {
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (e.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'connect_timeout';
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'forbidden_address') return 'forbidden_address';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'connection_reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns_error';
  if (e.name === 'AbortError') return 'aborted';
  if (code === 'ERR_INVALID_URL' || code === 'UND_ERR_INVALID_ARG') return 'invalid_url';
  return 'network_error';
}

export function createAgent(t: SendTimeouts, connections = 64, lookup?: LookupFn): Agent {
  // Redirects are never followed: undici only follows them through an interceptor, which we do not install.
  return new Agent({
    connect: { timeout: t.connectTimeoutMs, ...(lookup ? { lookup: lookup as never } : {}) },
    headersTimeout: t.totalTimeoutMs,
    bodyTimeout: t.totalTimeoutMs,
    connections,
    pipelining: 1,
    keepAliveTimeout: 10_000,
  });
}

/**
 * Reads the first EXCERPT_BYTES of a response body, draining up to DRAIN_LIMIT_BYTES so the connection can be reused;
 * past that the body is destroyed. Plain listeners: an async iterator per response costs more than the small bodies
 * webhook receivers send.
 */
function readExcerpt(body: Dispatcher.ResponseData['body']): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      resolve(chunks.length === 1 && size <= EXCERPT_BYTES ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8'));
    };
    const onData = (chunk: Buffer) => {
      if (size < EXCERPT_BYTES) chunks.push(chunk);
      size += chunk.length;
      if (size > DRAIN_LIMIT_BYTES) {
        done();
        body.destroy();
      }
    };
    body.on('data', onData);
    body.once('end', done);
    body.once('close', done);
    body.once('error', (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
  });
}

/** Shutdown signals shared by many attempts at once: each attempt in flight holds one listener on it. */
const sharedSignals = new WeakSet<AbortSignal>();

export async function send(agent: Dispatcher, a: Attempt, t: SendTimeouts, signal?: AbortSignal): Promise<AttemptOutcome> {
  const started = performance.now();
  const body = renderPayload(a.event, a.payloadVersion, a.at);
  const headers = {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    ...(await signHeaders({ format: a.format, id: a.event.id, body, secrets: a.secrets, timestamp: a.at })),
  };
  // One controller for both the total timeout and the caller's shutdown signal: AbortSignal.timeout() and
  // AbortSignal.any() per attempt cost several times more (weak references, finalizers, GC) at thousands a second.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, t.totalTimeoutMs);
  timer.unref();
  const onStop = () => controller.abort(signal?.reason);
  if (signal && !sharedSignals.has(signal)) {
    setMaxListeners(0, signal);
    sharedSignals.add(signal);
  }
  if (signal?.aborted) onStop();
  else signal?.addEventListener('abort', onStop, { once: true });
  try {
    const url = new URL(a.url);
    const res = await agent.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: 'POST',
      headers,
      body,
      signal: controller.signal,
    });
    const excerpt = await readExcerpt(res.body);
    const retryAfter = res.headers['retry-after'];
    return {
      status: res.statusCode,
      retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      excerpt,
      latencyMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    return {
      errorCode: signal?.aborted ? 'aborted' : timedOut ? 'timeout' : errorCode(err),
      errorMessage: (err as Error).message?.slice(0, 500),
      latencyMs: Math.round(performance.now() - started),
    };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onStop);
  }
}

