/**
 * api/sse.ts, the server-sent events stream of GET /events/stream and the dashboard's live list: its polling loop ends
 * when the client goes away, also when the client left while the handler was still awaiting (its session lookup, its
 * cursor) before the stream existed. That close came only once, before anything listened for it, and the loop went on
 * polling until the server stopped: one leaked poller per impatient client.
 */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { sendSse, sseStreams } from '../src/api/sse.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A server whose one route waits `awaitMs` (a session lookup), then streams; it counts the loop's polls. */
async function server(awaitMs: number) {
  app = Fastify();
  const open = sseStreams(app);
  const seen = { polls: 0, ended: 0 };
  app.get('/stream', async (_req, reply) => {
    await new Promise((r) => setTimeout(r, awaitMs));
    return sendSse(reply, open, { pingMs: 60_000 }, async (s) => {
      while (!s.closed) {
        seen.polls++;
        await s.write(`data: ${seen.polls}\n\n`);
        await s.sleep(20);
      }
      seen.ended++;
    });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, seen, open };
}

/** Opens the stream and drops the connection after `dropMs`; resolves with what arrived before that. */
function openAndDrop(port: number, dropMs: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const req = request({ host: '127.0.0.1', port, path: '/stream', agent: false }, (res) => res.on('data', (c: Buffer) => (got += c)));
    req.on('error', () => {});
    req.end();
    setTimeout(() => {
      req.destroy();
      resolve(got);
    }, dropMs);
  });
}

const waitFor = async (f: () => boolean, ms = 3_000) => {
  const until = Date.now() + ms;
  while (!f() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  return f();
};

describe('sendSse', () => {
  it('ends its loop when the client leaves during the stream', async () => {
    const { port, seen, open } = await server(0);
    const got = await openAndDrop(port, 150);
    expect(got).toContain('data: 1');
    expect(await waitFor(() => seen.ended === 1)).toBe(true);
    const polls = seen.polls;
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.polls).toBe(polls);
    expect(open.size).toBe(0);
  });

  it('never starts polling for a client that left before the stream was made', async () => {
    const { port, seen, open } = await server(300);
    await openAndDrop(port, 50);
    // The handler's wait ends at 300 ms; give the loop time to run if it (wrongly) started.
    await new Promise((r) => setTimeout(r, 600));
    expect(seen.polls).toBeLessThanOrEqual(1);
    expect(await waitFor(() => open.size === 0, 500)).toBe(true);
    const polls = seen.polls;
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.polls).toBe(polls);
  });

  it('ends every open stream when the server closes', async () => {
    const { port, seen, open } = await server(0);
    const req = request({ host: '127.0.0.1', port, path: '/stream', agent: false }, () => {});
    req.on('error', () => {});
    req.end();
    expect(await waitFor(() => open.size === 1)).toBe(true);
    await app!.close();
    app = undefined;
    expect(open.size).toBe(0);
    expect(await waitFor(() => seen.ended === 1)).toBe(true);
    req.destroy();
  });
});
