/**
 * A raw HTTP/1.1 client for the hostile campaign. node:http `request` sends the path exactly as given (a string of
 * bytes 0x21 to 0xFF, latin1: `%FF` stays `%FF`, `\xff` goes out as the raw byte 0xFF), header values as latin1 bytes,
 * and the body as the Buffer given. fetch would normalise or refuse most of this. Every request has a deadline; a
 * request that gets no answer in time, or whose connection is reset before the answer, comes back as a failure.
 */
import { request, type IncomingHttpHeaders } from 'node:http';

export interface RawRequest {
  method: string;
  /** Path and query string, sent byte for byte (latin1). */
  path: string;
  headers?: Record<string, string | string[]>;
  body?: Buffer;
  /** Send no Host header at all. */
  noHost?: boolean;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json?: unknown;
  ms: number;
}

export type Outcome = { ok: true; res: RawResponse } | { ok: false; error: string; ms: number };

/** The largest answer read; anything beyond is cut (no route of the API answers that much). */
const MAX_ANSWER = 8 * 1024 * 1024;

function finish(status: number, headers: IncomingHttpHeaders, chunks: Buffer[], started: number): RawResponse {
  const body = Buffer.concat(chunks);
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, headers, body, text, json, ms: Date.now() - started };
}

/**
 * Sends one request on a connection of its own (no keep-alive: a connection the server closed after a bad request
 * must not be blamed on the next one). `stream` writes the body in chunks (chunked transfer encoding unless the
 * headers carry a Content-Length), as a client uploading a large file does, without waiting for `100 Continue`.
 */
export function send(base: string, r: RawRequest, opts: { timeoutMs?: number; stream?: { total: number; chunk: number } } = {}): Promise<Outcome> {
  const u = new URL(base);
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const started = Date.now();
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    let sent: ReturnType<typeof request> | undefined;
    let timer: NodeJS.Timeout | undefined;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sent?.destroy(); // a streamed upload the server stopped reading ends here
      resolve(o);
    };
    const headers: Record<string, string | string[]> = { ...(r.headers ?? {}) };
    const has = (name: string) => Object.keys(headers).some((h) => h.toLowerCase() === name);
    if (r.body && !opts.stream && !has('content-length') && !has('transfer-encoding')) headers['content-length'] = String(r.body.length);
    let req: ReturnType<typeof request>;
    try {
      req = sent = request({ host: u.hostname, port: Number(u.port), method: r.method, path: r.path, headers, agent: false, setHost: !r.noHost && !has('host') });
    } catch (err) {
      // The client library refused to send it: a bug of the generator, reported as such.
      done({ ok: false, error: `client refused to send: ${(err as Error).message}`, ms: 0 });
      return;
    }
    timer = setTimeout(() => {
      done({ ok: false, error: `no answer within ${timeoutMs} ms`, ms: Date.now() - started });
    }, timeoutMs);
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      // A server-sent events stream (GET /events/stream) stays open by design: its answer is its status and headers.
      // The connection is closed then (done destroys it), which ends the stream on the server.
      if (/^text\/event-stream/i.test(String(res.headers['content-type'] ?? ''))) {
        done({ ok: true, res: finish(res.statusCode ?? 0, res.headers, [], started) });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_ANSWER) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => done({ ok: true, res: finish(res.statusCode ?? 0, res.headers, chunks, started) }));
      res.on('error', (err) => done({ ok: false, error: `answer cut short (status ${res.statusCode}): ${(err as NodeJS.ErrnoException).code ?? err.message}`, ms: Date.now() - started }));
      res.on('aborted', () => done({ ok: false, error: `answer aborted (status ${res.statusCode})`, ms: Date.now() - started }));
    });
    req.on('error', (err) => {
      // Once the answer has started, a write error (the server stopped reading an oversized body) does not matter.
      if (answered) return;
      done({ ok: false, error: `${(err as NodeJS.ErrnoException).code ?? 'error'} before any answer: ${err.message}`, ms: Date.now() - started });
    });
    if (!opts.stream) {
      req.end(r.body);
      return;
    }
    // Streaming: write until the total is reached, the answer arrives or the connection fails.
    const { total, chunk } = opts.stream;
    const piece = Buffer.alloc(chunk, 0x20);
    let written = 0;
    const pump = () => {
      while (written < total && !answered && !req.destroyed) {
        const n = Math.min(chunk, total - written);
        written += n;
        const first = written === n;
        const buf = first && r.body ? Buffer.concat([r.body, piece]).subarray(0, n) : piece.subarray(0, n);
        if (!req.write(buf)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!req.destroyed && !answered) req.end();
    };
    pump();
  });
}

/** Runs `fns` with at most `limit` in flight, keeping the order of the results. */
export async function inFlight<T>(limit: number, fns: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(fns.length);
  let next = 0;
  const lane = async () => {
    while (next < fns.length) {
      const i = next++;
      out[i] = await fns[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, fns.length) }, lane));
  return out;
}
