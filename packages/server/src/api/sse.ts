/**
 * A server-sent events stream (text/event-stream) whose body is written by a polling loop: GET /events/stream
 * (routes/feed.ts) and the dashboard's live list (routes/dashboard/events-list.ts).
 *
 * The stream ends when the client goes away (the response's close: not the request's, which may close once its empty
 * body has been read; or already gone when the stream is made, while the handler was still awaiting), when the loop
 * returns or throws, and when the server closes: each plugin that opens streams
 * makes one registry with {@link sseStreams}, whose preClose hook ends every open stream, so that closing never waits
 * for a client. Writes respect backpressure; `: ping` comments go out every `pingMs` so that proxies and clients see a
 * live stream. No connection is held between the loop's polls.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';

export interface SseStream {
  /** Writes a chunk (whole `field: value` lines ending in a blank line); waits while the client is not reading. */
  write(chunk: string): Promise<void>;
  /** Whether the stream has ended. */
  readonly closed: boolean;
  /** Waits `ms`, or less if the stream ends meanwhile. */
  sleep(ms: number): Promise<void>;
}

export type SseRegistry = Set<() => void>;

/** The open streams of a plugin; all of them end when the server closes. */
export function sseStreams(app: FastifyInstance): SseRegistry {
  const open: SseRegistry = new Set();
  app.addHook('preClose', (done) => {
    for (const end of open) end();
    done();
  });
  return open;
}

/**
 * Answers `reply` with a stream that `loop` writes; the loop's error ends the stream (`onError` is told, unless the
 * client had gone already).
 */
export function sendSse(
  reply: FastifyReply,
  open: SseRegistry,
  opts: { pingMs: number; onError?: (err: unknown) => void },
  loop: (s: SseStream) => Promise<void>,
): FastifyReply {
  const out = new PassThrough();
  let closed = false;
  let wake: (() => void) | undefined;
  const end = () => {
    if (closed) return;
    closed = true;
    open.delete(end);
    clearInterval(ping);
    wake?.();
    out.end();
  };
  open.add(end);
  const stream: SseStream = {
    get closed() {
      return closed;
    },
    async write(chunk) {
      if (closed) return;
      if (!out.write(chunk)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          out.once('drain', resolve);
        });
        wake = undefined;
      }
    },
    async sleep(ms) {
      if (closed) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, ms).unref();
      });
      wake = undefined;
    },
  };
  const ping = setInterval(() => void stream.write(': ping\n\n'), opts.pingMs);
  ping.unref();
  reply.raw.on('close', end);
  // The body's close too: Fastify destroys it when the response cannot be written (the client went away).
  out.on('close', end);
  // A client that left while the handler was still awaiting (its session, its cursor) closed the response before the
  // listener above existed: that close will not come again, and the loop would poll until the server stops.
  const socket = reply.raw.socket;
  if (reply.raw.destroyed || reply.raw.writableEnded || !socket || socket.destroyed) end();
  if (!closed) {
    loop(stream).then(end, (err: unknown) => {
      if (!closed) opts.onError?.(err);
      end();
    });
  }
  return reply
    .status(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache, no-transform')
    .header('x-accel-buffering', 'no')
    // The connection ends with the stream: a server that is closing has no idle socket left to wait for.
    .header('connection', 'close')
    .send(out);
}
