/**
 * `cashwire listen --forward-to <url>`: reads the operator's event stream (GET /events/stream, server-sent events)
 * and forwards each event to a local receiver, signed with the CLI's secret for the format (GET /cli/secret: kept by
 * Cashwire per operator, environment and format, so it is the same across restarts). One event at a time, in order;
 * each forward prints one line and is recorded as an attempt of a delivery to the destination `cli`
 * (POST /cli/deliveries), which the engine never retries. After a disconnect it reconnects with backoff (at most 5 s)
 * and resumes after the last event it forwarded (`Last-Event-ID`), so nothing is lost or repeated.
 *
 * Failure injection (`--status`, `--latency`, `--fail-rate`): the CLI does not call the receiver; it waits the
 * latency and answers the forward itself, as if the receiver had, and records that answer.
 */
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { FORMATS, PAYLOAD_VERSIONS, signHeaders, type Format, type PayloadVersion } from '@cashwire/webhooks';
import { remote, RemoteError, withRemote, CLI_VERSION, type Remote, type RemoteOptions } from './remote.js';

// ---------------------------------------------------------------------------------------------------------------
// Server-sent events

export interface SseMessage {
  /** The last event id the stream set (it carries over to later messages, as the spec says); '' if none. */
  id: string;
  /** `event:` field, 'message' when absent. */
  event: string;
  data: string;
}

/**
 * A parser of the `text/event-stream` format (WHATWG HTML, "Server-sent events"): feed it decoded text in chunks of
 * any size; it calls `onMessage` for each dispatched message and `onComment` for each comment line (`: ping`). Lines
 * end with CRLF, LF or CR, a CRLF may be split across chunks; one space after the colon is dropped; `data` lines are
 * joined with LF; a message without data is not dispatched; an `id` containing NUL is ignored.
 */
export function sseParser(on: { onMessage(m: SseMessage): void; onComment?(text: string): void; onRetry?(ms: number): void }) {
  let buf = '';
  let data: string[] = [];
  let event = '';
  let lastId = '';
  let afterCR = false;
  const line = (l: string) => {
    if (l === '') {
      if (data.length > 0) on.onMessage({ id: lastId, event: event || 'message', data: data.join('\n') });
      data = [];
      event = '';
      return;
    }
    if (l.charCodeAt(0) === 58 /* : */) {
      on.onComment?.(l.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id') {
      if (!value.includes('\u0000')) lastId = value;
    } else if (field === 'retry') {
      if (/^[0-9]+$/.test(value)) on.onRetry?.(Number(value));
    }
  };
  return {
    feed(chunk: string): void {
      let s = chunk;
      if (afterCR && s.charCodeAt(0) === 10) s = s.slice(1);
      afterCR = false;
      let start = 0;
      for (let i = 0; i < s.length; i++) {
        const ch = s.charCodeAt(i);
        if (ch !== 10 && ch !== 13) continue;
        line(buf + s.slice(start, i));
        buf = '';
        if (ch === 13) {
          if (i + 1 === s.length) afterCR = true;
          else if (s.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      buf += s.slice(start);
    },
    /** The id a reconnection resumes from (`Last-Event-ID`). */
    get lastEventId() {
      return lastId;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Options

/** `2s`, `500ms`, `1.5s`, `1m`, or a number of milliseconds. */
export function parseDuration(value: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m)?\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('must be a duration such as 2s, 500ms or 1m (a bare number is milliseconds)');
  const n = Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1);
  if (n > 600_000) throw new InvalidArgumentError('must be at most 10 minutes');
  return Math.round(n);
}
function parseStatus(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 100 || n > 599) throw new InvalidArgumentError('must be an HTTP status code (100-599)');
  return n;
}
function parseRate(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}
function parseTypes(value: string): string[] {
  const types = value.split(',').map((t) => t.trim()).filter(Boolean);
  if (types.length === 0) throw new InvalidArgumentError('must name at least one event type, comma-separated');
  return types;
}
function parseUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be an absolute http(s) URL, e.g. http://localhost:3000/webhooks');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError('must be an http or https URL');
  return value;
}

/** A small seedable PRNG (mulberry32) for --fail-rate, so a test can fix the outcomes (CASHWIRE_LISTEN_SEED). */
export function seededRandom(seed: string | undefined): () => number {
  if (seed === undefined || seed === '') return Math.random;
  let h = 1779033703 ^ seed.length;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 3432918353), (h = (h << 13) | (h >>> 19));
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ListenOptions extends RemoteOptions {
  forwardTo: string;
  events?: string[];
  format: Format;
  payloadVersion?: PayloadVersion;
  fromStart?: boolean;
  status?: number;
  latency?: number;
  failRate?: number;
  timeout: number;
}

// ---------------------------------------------------------------------------------------------------------------
// The command

/** An event as the stream and the feed send it. */
interface StreamItem {
  id: string;
  type: string;
  intent_id: string | null;
  created_at: string;
  payload: string;
}

interface Outcome {
  status_code: number | null;
  error: string | null;
  latency_ms: number;
  simulated: boolean;
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const warn = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

function hhmmss(d = new Date()): string {
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** The engine's error codes for an attempt that got no answer. */
function errorCode(err: unknown): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError') return 'timeout';
  const code = e?.cause?.code ?? e?.code;
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'connection_reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns_error';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') return 'timeout';
  return 'network_error';
}

const HOW_TO_VERIFY: Record<Format, string> = {
  standard: 'Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256(key of the whsec_ secret, "{id}.{timestamp}.{body}")>',
  pushcash: 'X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>',
  sendcash: 'X-Transfers-Signature: <hex HMAC-SHA256(secret, raw body)>',
};

/** How long the stream may stay silent (no event, no `: ping`, sent every 15 s) before the CLI reconnects. */
const IDLE_MS = 45_000;
const MAX_BACKOFF_MS = 5_000;

export async function listen(o: ListenOptions): Promise<void> {
  const api = remote(o);
  const injecting = o.status !== undefined || o.latency !== undefined || o.failRate !== undefined;
  const random = seededRandom(process.env.CASHWIRE_LISTEN_SEED);
  const { secret } = await api.request<{ format: Format; secret: string }>('GET', `/cli/secret?format=${o.format}`);

  const stop = new AbortController();
  let signals = 0;
  const onSignal = () => {
    if (signals++ > 0) process.exit(130);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Where to start: after the newest event there is now (old events are not replayed), or with --from-start at the
  // beginning of the feed.
  let after: string | undefined;
  if (!o.fromStart) {
    const newest = await api.request<{ data: { id: string }[] }>('GET', '/events?limit=1');
    after = newest.data[0]?.id;
  }

  out(`Ready. Forwarding ${o.format} webhooks to ${o.forwardTo}. Signing secret: ${secret}`);
  out(`Verify each request with this secret: ${HOW_TO_VERIFY[o.format]} (or verify('${o.format}', …) from @cashwire/webhooks).` +
    (injecting ? ` Failure injection is on: the receiver is not called; the CLI answers${o.status ? ` ${o.status}` : ' 200'}` +
      `${o.latency !== undefined ? ` after ${o.latency} ms` : ''}${o.failRate !== undefined ? `, 500 at a rate of ${o.failRate}` : ''}.` : '') +
    ' Ctrl-C to stop.');

  const forwarded = new Set<string>();
  const recent: string[] = [];
  const remember = (id: string) => {
    forwarded.add(id);
    recent.push(id);
    if (recent.length > 10_000) forwarded.delete(recent.shift()!);
  };

  const handle = async (item: StreamItem) => {
    if (forwarded.has(item.id)) return; // never twice, whatever the stream sends
    const outcome = injecting ? await simulate(o, random, stop.signal) : await forward(o, secret, item);
    if (!outcome) return; // stopped while waiting the injected latency: neither answered nor recorded
    remember(item.id);
    after = item.id;
    out(`${hhmmss()}  ${item.type.padEnd(24)}  ${String(outcome.status_code ?? outcome.error).padEnd(5)}  ${`${outcome.latency_ms} ms`.padStart(8)}  ${item.id}${outcome.simulated ? '  (simulated)' : ''}`);
    await record(api, o, item, outcome);
  };

  const query = (extra: Record<string, string | undefined>) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...extra, types: o.events?.join(','), payload_version: o.payloadVersion })) if (v) q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
  };

  // --from-start: the feed, page by page, up to now; then the stream from there.
  if (o.fromStart) {
    for (;;) {
      if (stop.signal.aborted) break;
      const page = await api.request<{ data: StreamItem[]; next_after: string | null }>('GET', `/events/feed${query({ after, limit: '100' })}`);
      for (const item of page.data) {
        if (stop.signal.aborted) break;
        await handle(item);
      }
      if (page.data.length === 0 || !page.next_after) break;
      after = page.next_after;
    }
  }

  let backoff = 250;
  let connections = 0;
  while (!stop.signal.aborted) {
    const attempt = new AbortController();
    const abortAttempt = () => attempt.abort();
    stop.signal.addEventListener('abort', abortAttempt, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => attempt.abort(new Error('the stream was silent for 45 s')), IDLE_MS);
    };
    let reason = 'the stream ended';
    try {
      touch();
      const res = await api.fetch(`/events/stream${query({ after })}`, {
        headers: { accept: 'text/event-stream', ...(after ? { 'last-event-id': after } : {}) },
        signal: attempt.signal,
      });
      if (!res.ok) {
        const text = await res.text().catch(() => '');
        let code = `http_${res.status}`;
        let message = text.slice(0, 200);
        try {
          const e = JSON.parse(text).error;
          code = e?.code ?? code;
          message = e?.message ?? message;
        } catch {
          /* not JSON */
        }
        // Refusals that a retry cannot fix end the command.
        if (res.status === 401 || res.status === 403 || res.status === 404 || res.status === 400) throw new RemoteError(res.status, code, message);
        throw new Error(`the stream answered ${res.status} ${code}: ${message}`);
      }
      if (connections++ > 0) out(`${hhmmss()}  Reconnected; resuming after ${after ?? 'the start'}.`);
      backoff = 250;
      const decoder = new TextDecoder();
      // Events are handled one at a time, in order: the parser queues them, the loop below forwards them.
      const queue: SseMessage[] = [];
      const parser = sseParser({ onMessage: (m) => queue.push(m) });
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        touch();
        parser.feed(decoder.decode(value, { stream: true }));
        while (queue.length > 0) {
          const m = queue.shift()!;
          let item: StreamItem;
          try {
            item = JSON.parse(m.data) as StreamItem;
          } catch {
            warn(`cashwire listen: skipped a stream message that is not JSON (id ${m.id || 'none'})`);
            continue;
          }
          if (!item.id) item.id = m.id;
          clearTimeout(idle); // a slow receiver is not a silent stream
          await handle(item);
          touch();
        }
      }
    } catch (err) {
      if (err instanceof RemoteError) {
        stop.signal.removeEventListener('abort', abortAttempt);
        clearTimeout(idle);
        throw err.status === 404 && err.code === 'route_not_found'
          ? new Error(`this Cashwire has no event stream (GET /events/stream): ${err.message}`)
          : new Error(`the event stream refused: ${err.code}: ${err.message}`);
      }
      reason = attempt.signal.reason instanceof Error ? attempt.signal.reason.message : (err as Error).message;
    } finally {
      clearTimeout(idle);
      stop.signal.removeEventListener('abort', abortAttempt);
    }
    if (stop.signal.aborted) break;
    out(`${hhmmss()}  Disconnected (${reason}); reconnecting in ${(backoff / 1000).toFixed(backoff < 1000 ? 2 : 0)} s…`);
    await sleep(backoff, stop.signal);
    backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
  }
  out(`${hhmmss()}  Stopped.${after ? ` Last event forwarded or skipped: ${after}.` : ''}`);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

/** Failure injection: no call to the receiver; the CLI waits the latency and answers as the receiver would have. */
async function simulate(o: ListenOptions, random: () => number, signal: AbortSignal): Promise<Outcome | null> {
  const t0 = performance.now();
  if (o.latency) await sleep(o.latency, signal);
  if (signal.aborted) return null;
  const fail = o.failRate !== undefined && random() < o.failRate;
  return { status_code: fail ? 500 : (o.status ?? 200), error: null, latency_ms: Math.round(performance.now() - t0), simulated: true };
}

/** POSTs the event's body to the receiver, signed for the format, with a timeout. The status line alone decides. */
async function forward(o: ListenOptions, secret: string, item: StreamItem): Promise<Outcome> {
  const signed = await signHeaders({ format: o.format, id: item.id, body: item.payload, secrets: [secret], timestamp: new Date() });
  const t0 = performance.now();
  try {
    const res = await fetch(o.forwardTo, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': `Cashwire-CLI/${CLI_VERSION} (listen)`, ...signed },
      body: item.payload,
      signal: AbortSignal.timeout(o.timeout),
      redirect: 'manual',
    });
    const latency_ms = Math.round(performance.now() - t0);
    await res.body?.cancel().catch(() => {});
    return { status_code: res.status, error: null, latency_ms, simulated: false };
  } catch (err) {
    return { status_code: null, error: errorCode(err), latency_ms: Math.round(performance.now() - t0), simulated: false };
  }
}

/** Records the outcome as an attempt of the delivery to `cli`; a failure to record is said, and does not stop listening. */
async function record(api: Remote, o: ListenOptions, item: StreamItem, r: Outcome): Promise<void> {
  const body = {
    event_id: item.id, url: o.forwardTo, format: o.format, ...(o.payloadVersion ? { payload_version: o.payloadVersion } : {}),
    status_code: r.status_code, error: r.error, latency_ms: r.latency_ms,
    // The same id on each retry of this request: an answer lost on the way back does not record the forward twice.
    forward_id: randomBytes(12).toString('base64url'),
  };
  for (let i = 0; ; i++) {
    try {
      await api.request('POST', '/cli/deliveries', body);
      return;
    } catch (err) {
      const retryable = !(err instanceof RemoteError) || err.status === 429 || err.status >= 500;
      if (!retryable || i >= 2) {
        warn(`cashwire listen: could not record the forward of ${item.id} in the attempt log: ${(err as Error).message}`);
        return;
      }
      await sleep(500 * (i + 1));
    }
  }
}

export function register(program: Command): void {
  withRemote(
    program
      .command('listen')
      .description('forward the events of your operator to a local URL as they happen, signed with a secret Cashwire keeps for the CLI; each forward is recorded in the attempt log (destination cli)'),
  )
    .requiredOption('--forward-to <url>', 'where to POST each event, e.g. http://localhost:3000/webhooks', parseUrl)
    .option('--events <types>', 'only these event types, comma-separated (default: all)', parseTypes)
    .addOption(new Option('--format <format>', 'the signature scheme and secret').choices([...FORMATS]).default('pushcash'))
    .addOption(new Option('--payload-version <version>', "the body's payload version (default: the operator's)").choices([...PAYLOAD_VERSIONS]))
    .option('--from-start', 'forward every event of the feed from the first one, then the new ones (default: only events made after listen starts)')
    .option('--status <code>', 'failure injection: do not call the receiver; answer every forward with this status', parseStatus)
    .option('--latency <duration>', 'failure injection: do not call the receiver; answer after this long (2s, 500ms)', parseDuration)
    .option('--fail-rate <p>', 'failure injection: do not call the receiver; answer 500 with this probability (0..1; seed: CASHWIRE_LISTEN_SEED)', parseRate)
    .addOption(new Option('--timeout <duration>', "how long to wait for the receiver's status line").argParser(parseDuration).default(15_000, '15s'))
    .action((opts: ListenOptions) => listen(opts));
}
