import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** Written as is: a string as UTF-8, a Buffer byte for byte. */
  body?: string | Buffer;
  /** Never answers. */
  hang?: boolean;
  /** The status line and headers at once, then the body one byte every `everyMs`. */
  trickle?: { bytes: Buffer; everyMs: number };
}

export type Responder = (req: Received) => Answer | Promise<Answer>;

/**
 * A responder that answers 200 after `ms`, and records the most requests to `path` it had in flight at once
 * (`peak`); requests to other paths are answered 200 at once.
 */
export function inFlightPeak(path: string, ms: number): { responder: Responder; readonly peak: number } {
  let now = 0;
  let peak = 0;
  return {
    get peak() {
      return peak;
    },
    responder: async (r) => {
      if (r.path !== path) return { status: 200 };
      peak = Math.max(peak, ++now);
      await new Promise((res) => setTimeout(res, ms));
      now--;
      return { status: 200 };
    },
  };
}

/** A real HTTP receiver on 127.0.0.1: records every request and answers as `respond` says. */
export async function startReceiver(respond: Responder = () => ({ status: 200, body: 'ok' })) {
  const received: Received[] = [];
  const hanging = new Set<http.ServerResponse>();
  let responder = respond;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const r: Received = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      received.push(r);
      const answer = await responder(r);
      if (answer.hang) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      res.writeHead(answer.status, answer.headers);
      if (answer.trickle) {
        const { bytes, everyMs } = answer.trickle;
        res.flushHeaders();
        let i = 0;
        const timer = setInterval(() => {
          if (i >= bytes.length) {
            clearInterval(timer);
            res.end();
            return;
          }
          res.write(bytes.subarray(i, ++i));
        }, everyMs);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.end(answer.body ?? '');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    setResponder(r: Responder) {
      responder = r;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
