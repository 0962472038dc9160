/** Every adapter driven for real: Express and node:http on port 0 through fetch, Fastify through inject, Fetch handlers with Request objects. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  expressHandler, fastifyHandler, fetchHandler, memoryStore, nodeHandler, type WebhookEvent, type WebhookHandlerOptions,
} from '../src/index.js';
import { SECRET, T0, WHSEC, approved, signedBody, signedRequest } from './fixtures.js';

type Reply = { status: number; contentType: string | null; json: Record<string, unknown> };
type Post = (body: string | Buffer, headers: Record<string, string>) => Promise<Reply>;
type Options = WebhookHandlerOptions<undefined>;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
}

async function viaFetch(url: string, body: string | Buffer, headers: Record<string, string>): Promise<Reply> {
  const res = await fetch(url, { method: 'POST', body, headers });
  return { status: res.status, contentType: res.headers.get('content-type'), json: await res.json() };
}

const harnesses: Record<string, (o: Options) => Promise<Post>> = {
  async express(o) {
    const app = express();
    app.post('/webhooks', express.raw({ type: 'application/json' }), expressHandler(o));
    const url = await listen(http.createServer(app));
    return (body, headers) => viaFetch(url, body, headers);
  },
  async fastify(o) {
    const app = Fastify();
    await app.register(async (scope) => {
      scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
      scope.post('/webhooks', fastifyHandler(o));
    });
    closers.push(() => app.close());
    return async (body, headers) => {
      const res = await app.inject({ method: 'POST', url: '/webhooks', payload: body, headers });
      return { status: res.statusCode, contentType: String(res.headers['content-type']), json: res.json() };
    };
  },
  async 'node:http'(o) {
    const url = await listen(http.createServer(nodeHandler(o)));
    return (body, headers) => viaFetch(url, body, headers);
  },
  async fetch(o) {
    const handle = fetchHandler(o);
    return async (body, headers) => {
      const res = await handle(new Request('https://merchant.example/webhooks', { method: 'POST', body, headers }));
      return { status: res.status, contentType: res.headers.get('content-type'), json: await res.json() };
    };
  },
};

describe.each(Object.keys(harnesses))('%s adapter', (name) => {
  const start = harnesses[name]!;

  it('200 once, 200 duplicate without a second call, 401 on signature or time, 400 on content, 500 when the handler fails', async () => {
    const seen: WebhookEvent[] = [];
    let failNext = false;
    let now = T0.getTime();
    const post = await start({
      format: 'pushcash', secrets: [SECRET], store: memoryStore(), now: () => now, onError: () => {},
      onEvent(event) {
        if (failNext) {
          failNext = false;
          throw new Error('database down');
        }
        seen.push(event);
      },
    });
    const ok = await signedRequest('pushcash', approved);

    expect(await post(ok.body, ok.headers)).toEqual({ status: 200, contentType: 'application/json; charset=utf-8', json: { received: true } });
    expect(seen.map((e) => [e.type, e.version, e.data])).toEqual([['intent.approved', '2024-05', expect.objectContaining({ tag: 'txn_12345' })]]);
    expect((await post(ok.body, ok.headers)).json).toEqual({ received: true, duplicate: true });
    expect(seen).toHaveLength(1);

    const refused = async (body: string, headers: Record<string, string>) => {
      const r = await post(body, headers);
      return [r.status, r.json.error];
    };
    expect(await refused(ok.body.replace('5025', '1'), ok.headers)).toEqual([401, 'bad_signature']);
    expect(await refused(ok.body, { 'content-type': 'application/json' })).toEqual([401, 'missing_header']);
    now = T0.getTime() + 11 * 60_000;
    expect(await refused(ok.body, ok.headers)).toEqual([401, 'stale_timestamp']);
    now = T0.getTime();
    const notJson = await signedBody('pushcash', '{"type":');
    expect(await refused(notJson.body, notJson.headers)).toEqual([400, 'malformed_json']);
    const unknown = await signedBody('pushcash', JSON.stringify({ type: 'user.kyc_review', data: {}, timestamp: T0.toISOString() }));
    expect(await refused(unknown.body, unknown.headers)).toEqual([400, 'unknown_type']);

    // a failed handler records nothing: the redelivery is processed, not taken for a duplicate
    const next = await signedRequest('pushcash', { ...approved, type: 'intent.settled' } as typeof approved);
    failNext = true;
    expect(await refused(next.body, next.headers)).toEqual([500, 'handler_failed']);
    expect((await post(next.body, next.headers)).json).toEqual({ received: true });
    expect(seen.map((e) => e.type)).toEqual(['intent.approved', 'intent.settled']);
  });

  it('standard format without a store: every delivery reaches the handler, bytes intact', async () => {
    const ids: string[] = [];
    const post = await start({ format: 'standard', secrets: [WHSEC], now: () => T0, onEvent: (e) => void ids.push(e.id) });
    const req = await signedBody('standard', JSON.stringify({ type: 'endpoint.recovered', data: { endpoint_id: 'ep_ü', url: 'https://x', at: 'now' }, timestamp: 'x' }), {}, 'evt_é');
    expect((await post(Buffer.from(req.body), req.headers)).status).toBe(200);
    expect((await post(req.body, req.headers)).status).toBe(200);
    expect(ids).toEqual(['evt_é', 'evt_é']);
  });
});

describe('adapter misconfiguration', () => {
  const o: Options = { format: 'sendcash', secrets: SECRET, onEvent: () => {} };

  it('express after express.json(): 500 raw_body_unavailable, naming the fix', async () => {
    const app = express();
    app.post('/webhooks', express.json(), expressHandler(o));
    const url = await listen(http.createServer(app));
    const req = await signedRequest('sendcash', approved);
    const r = await viaFetch(url, req.body, req.headers);
    expect(r.status).toBe(500);
    expect(r.json).toMatchObject({ error: 'raw_body_unavailable', message: expect.stringContaining('express.raw') });
  });

  it('express with no body parser reads the stream itself', async () => {
    const app = express();
    app.post('/webhooks', expressHandler(o));
    const url = await listen(http.createServer(app));
    const req = await signedRequest('sendcash', approved);
    expect((await viaFetch(url, req.body, req.headers)).status).toBe(200);
  });

  it("fastify with its default JSON parser: 500 raw_body_unavailable, naming the fix", async () => {
    const app = Fastify();
    app.post('/webhooks', fastifyHandler(o));
    closers.push(() => app.close());
    const req = await signedRequest('sendcash', approved);
    const res = await app.inject({ method: 'POST', url: '/webhooks', payload: req.body, headers: req.headers });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ error: 'raw_body_unavailable', message: expect.stringContaining('parseAs') });
  });

  it('node:http refuses a body over maxBodyBytes with 413', async () => {
    const url = await listen(http.createServer(nodeHandler({ ...o, maxBodyBytes: 100 })));
    const req = await signedBody('sendcash', JSON.stringify({ type: 'intent.approved', pad: 'x'.repeat(3_000_000) }));
    const r = await viaFetch(url, req.body, req.headers);
    expect([r.status, r.json.error]).toEqual([413, 'body_too_large']);
  });
});
