/**
 * Deliveries through an egress proxy (CASHWIRE_EGRESS_PROXY), all real HTTP: a real CONNECT proxy that records what
 * it is asked to open, a real receiver, a real TLS server, real workers. The SSRF guard applies to the destination
 * (checked here, the tunnel pinned to the checked address), never to the proxy; failures of the proxy are failed
 * attempts (`proxy_error`), retried like any other.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { verify } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import type { WorkerOptions } from '../src/delivery/worker.js';
import type { LookupFn } from '../src/security/ssrf.js';
import { workerOptions } from '../src/server.js';
import { client, freePort, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

const SECRET = 'whk_egress_secret_0123456789abcdefghijklmnopqr';
const PUBLIC_IP = '203.0.113.10'; // TEST-NET-3: public as far as the SSRF guard goes, routed by the test proxy below

/** The test's DNS for production names (the API's check at registration and the worker's at send). */
const names = new Map<string, string>();
const resolver: LookupFn = (host, options, cb) => {
  const address = names.get(host);
  if (!address) return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), '', 4);
  const family = net.isIP(address);
  return options.all ? cb(null, [{ address, family }]) : cb(null, address, family);
};

interface Connect { target: string; authorization: string | undefined }

/**
 * A real CONNECT proxy on 127.0.0.1. It records every CONNECT; `answer` may refuse one with a status or leave it
 * hanging; otherwise it opens the tunnel, with `route` as its own view of the network (where an address or name
 * really is), and pipes bytes both ways: TLS inside the tunnel is between the worker and the destination.
 */
async function startProxy(o: {
  auth?: string;
  answer?: (target: string) => number | 'hang' | undefined;
  route?: (host: string, port: number) => { host: string; port: number };
} = {}) {
  const connects: Connect[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const target = req.url ?? '';
    connects.push({ target, authorization: req.headers['proxy-authorization'] });
    if (o.auth && req.headers['proxy-authorization'] !== `Basic ${Buffer.from(o.auth).toString('base64')}`) {
      socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="egress"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const answer = o.answer?.(target);
    if (answer === 'hang') return;
    if (typeof answer === 'number') {
      socket.end(`HTTP/1.1 ${answer} ${http.STATUS_CODES[answer] ?? 'Refused'}\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const colon = target.lastIndexOf(':');
    const to = (o.route ?? ((host, port) => ({ host: host.replace(/^\[|\]$/g, ''), port })))(target.slice(0, colon), Number(target.slice(colon + 1)));
    const upstream = net.connect(to.port, to.host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      socket.destroy();
    });
    upstream.on('error', () => {
      if (!socket.writableEnded) socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
    });
    socket.on('close', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connects,
    async close() {
      for (const sk of sockets) sk.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let s: TestServer;
let api: Api;
let prod: Api;
let userId: string;
let prodUserId: string;
let harness: ReturnType<typeof testWorkers>;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let rxPort: number;
let proxy: Awaited<ReturnType<typeof startProxy>>;
let tlsServer: tls.Server;
let tlsPort: number;
const sniSeen: (string | undefined)[] = [];
let certDir: string;

beforeAll(async () => {
  s = await startTestServer({}, undefined, { resolver });
  const op = await newOperator(s);
  api = client(s.url, op.sandbox);
  prod = client(s.url, op.production);
  userId = await newUser(api);
  prodUserId = await newUser(prod);
  rx = await startReceiver();
  rxPort = Number(new URL(rx.url).port);

  // A TLS destination with a certificate for its name (self-signed: the worker, trusting only public CAs, refuses it
  // after the handshake has shown which name it asked for).
  certDir = mkdtempSync(path.join(os.tmpdir(), 'cw-egress-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=hooks.public.example', '-addext', 'subjectAltName=DNS:hooks.public.example',
    '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')], { stdio: 'ignore' });
  const context = { key: readFileSync(path.join(certDir, 'key.pem')), cert: readFileSync(path.join(certDir, 'cert.pem')) };
  tlsServer = tls.createServer({
    ...context,
    SNICallback: (name, cb) => {
      sniSeen.push(name);
      cb(null, tls.createSecureContext(context));
    },
  }, (sock) => sock.end());
  tlsServer.on('tlsClientError', () => {});
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  tlsPort = (tlsServer.address() as net.AddressInfo).port;

  proxy = await startProxy({
    // The proxy's own network: localhost is the receiver's address; the "public" address is the TLS server.
    route: (host, port) => (host === PUBLIC_IP && port === 443 ? { host: '127.0.0.1', port: tlsPort } : { host: host === 'localhost' ? '127.0.0.1' : host, port }),
  });
  harness = testWorkers(s, { resolver, connectTimeoutMs: 1_000, totalTimeoutMs: 3_000, leaseMs: 5_000 });
});
afterEach(async () => {
  await harness.reset(rx);
  proxy.connects.length = 0;
  sniSeen.length = 0;
  names.clear();
});
afterAll(async () => {
  await proxy?.close();
  await new Promise<void>((r) => (tlsServer ? tlsServer.close(() => r()) : r()));
  await rx?.close();
  await s?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

function worker(o: Partial<WorkerOptions> = {}) {
  return harness.make(o);
}

/** An approved payment whose webhook goes to `url`; returns its event id. */
async function paymentTo(on: Api, user: string, url: string, amount = 100): Promise<string> {
  const { intent } = await payThroughPage(s, on, { direction: 'cash_in', user_id: user, amount, webhook_url: url, webhook_secret: SECRET });
  return (await on.get(`/events?intent_id=${intent.id}`)).body.data[0].id;
}

async function deliveryOf(on: Api, eventId: string) {
  const r = await on.get(`/events/${eventId}`);
  expect(r.status).toBe(200);
  return r.body.deliveries[0];
}

const at = (p: string) => rx.received.filter((r) => r.path === p);

describe('sandbox deliveries through the egress proxy', () => {
  it('are tunneled with CONNECT to the destination as named; the receiver gets the signed webhook, Host unchanged; the tunnel is reused', async () => {
    const first = await paymentTo(api, userId, `http://localhost:${rxPort}/sandbox`, 101);
    const w = worker({ egressProxy: proxy.url });
    expect(await w.tick()).toBe(1);
    // The sandbox does no lookup of its own: the proxy is asked for the name.
    expect(proxy.connects).toEqual([{ target: `localhost:${rxPort}`, authorization: undefined }]);
    const [r] = at('/sandbox');
    expect(r!.headers.host).toBe(`localhost:${rxPort}`);
    expect(r!.headers['x-webhook-id']).toBe(first);
    const event = await verify('pushcash', { body: r!.body, headers: r!.headers as Record<string, string>, secrets: SECRET, now: s.clock.now() });
    expect(event.type).toBe('intent.approved');
    expect(await deliveryOf(api, first)).toMatchObject({ status: 'succeeded', attempts: 1, last_status: 200 });

    // A second delivery to the same destination goes over the same tunnel (kept alive, like a direct connection).
    const second = await paymentTo(api, userId, `http://localhost:${rxPort}/sandbox`, 102);
    expect(await w.tick()).toBe(1);
    expect(at('/sandbox')).toHaveLength(2);
    expect(proxy.connects).toHaveLength(1);
    expect(await deliveryOf(api, second)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('without the proxy set, deliveries connect directly (the proxy sees nothing)', async () => {
    const ev = await paymentTo(api, userId, `${rx.url}/direct`);
    expect(await worker().tick()).toBe(1);
    expect(at('/direct')).toHaveLength(1);
    expect(proxy.connects).toHaveLength(0);
    expect(await deliveryOf(api, ev)).toMatchObject({ status: 'succeeded' });
  });
});

describe('production deliveries through the egress proxy: the SSRF guard checks the destination', () => {
  it('a name that resolves to a private address at send time is refused before any CONNECT (forbidden_address)', async () => {
    names.set('rebind.example', '198.51.100.7'); // public when the payment is created: accepted
    const ev = await paymentTo(prod, prodUserId, 'https://rebind.example/steal');
    names.set('rebind.example', '10.0.0.7'); // then it rebinds to an internal address
    expect(await worker({ egressProxy: proxy.url }).tick()).toBe(1);
    expect(proxy.connects).toHaveLength(0);
    const d = await deliveryOf(prod, ev);
    expect(d).toMatchObject({ status: 'pending', attempts: 1, last_error: 'forbidden_address' });
    expect(d.attempt_log[0]).toMatchObject({ error_code: 'forbidden_address', status_code: null });
    expect(d.attempt_log[0].response).toContain('10.0.0.7');
  });

  it('a name that resolves to a public address is CONNECTed to that checked address, TLS end to end with SNI the name', async () => {
    names.set('hooks.public.example', PUBLIC_IP);
    const ev = await paymentTo(prod, prodUserId, 'https://hooks.public.example/prod');
    expect(await worker({ egressProxy: proxy.url }).tick()).toBe(1);
    // The proxy is asked for the address this worker checked, not the name (no second lookup it could be rebound in).
    expect(proxy.connects.map((c) => c.target)).toEqual([`${PUBLIC_IP}:443`]);
    // The TLS handshake went through the tunnel to the destination, which was asked for the name.
    expect(sniSeen).toEqual(['hooks.public.example']);
    // The destination's self-signed certificate is refused by the worker itself: proof the proxy did not terminate
    // TLS, and a destination's failure, not the proxy's.
    const d = await deliveryOf(prod, ev);
    expect(d).toMatchObject({ status: 'pending', attempts: 1 });
    expect(d.attempt_log[0].error_code).not.toBe('proxy_error');
    expect(d.attempt_log[0].response).toMatch(/self[- ]signed|certificate/i);
  });

  it('a CONNECT the proxy refuses (502) for a public destination is a proxy_error with its status', async () => {
    names.set('down.public.example', '198.51.100.8');
    const refusing = await startProxy({ answer: () => 502 });
    try {
      const ev = await paymentTo(prod, prodUserId, 'https://down.public.example/x');
      expect(await worker({ egressProxy: refusing.url }).tick()).toBe(1);
      expect(refusing.connects.map((c) => c.target)).toEqual(['198.51.100.8:443']);
      const d = await deliveryOf(prod, ev);
      expect(d).toMatchObject({ status: 'pending', attempts: 1, last_error: 'proxy_error' });
      expect(d.attempt_log[0].response).toContain('answered 502');
    } finally {
      await refusing.close();
    }
  });
});

describe('proxy failures are failed attempts, retried; nothing crashes', () => {
  it('407 without credentials is a proxy_error; retried with them, the delivery lands and the credentials stay with the proxy', async () => {
    const guarded = await startProxy({ auth: 'cashwire:s3cr3t', route: (host, port) => ({ host: host === 'localhost' ? '127.0.0.1' : host, port }) });
    try {
      const ev = await paymentTo(api, userId, `${rx.url}/auth`);
      expect(await worker({ egressProxy: guarded.url }).tick()).toBe(1);
      let d = await deliveryOf(api, ev);
      expect(d).toMatchObject({ status: 'pending', attempts: 1, last_error: 'proxy_error' });
      expect(d.attempt_log[0]).toMatchObject({ error_code: 'proxy_error', status_code: null, outcome: 'retry' });
      expect(d.attempt_log[0].response).toContain('407');
      expect(at('/auth')).toHaveLength(0);
      expect(new Date(d.next_attempt_at).getTime()).toBeGreaterThan(s.clock.now().getTime());

      // The retry, by a worker that has the credentials (percent-encoded in the URL as usual).
      s.clock.set(new Date(d.next_attempt_at));
      expect(await worker({ egressProxy: `http://cashwire:s3cr%33t@127.0.0.1:${guarded.port}` }).tick()).toBe(1);
      d = await deliveryOf(api, ev);
      expect(d).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(guarded.connects.at(-1)!.authorization).toBe(`Basic ${Buffer.from('cashwire:s3cr3t').toString('base64')}`);
      expect(at('/auth')).toHaveLength(1);
      expect(at('/auth')[0]!.headers['proxy-authorization']).toBeUndefined();
    } finally {
      await guarded.close();
    }
  });

  it('a dead proxy (connection refused) is a proxy_error, not the receiver refusing; a proxy that never answers CONNECT is one after the connect timeout', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const ev = await paymentTo(api, userId, `${rx.url}/dead-proxy`);
    expect(await worker({ egressProxy: dead }).tick()).toBe(1);
    let d = await deliveryOf(api, ev);
    expect(d).toMatchObject({ status: 'pending', attempts: 1, last_error: 'proxy_error' });
    expect(d.attempt_log[0].response).toContain('ECONNREFUSED');

    // A proxy that takes the connection and says nothing.
    const silent = net.createServer((sock) => sock.on('error', () => {}));
    const held: net.Socket[] = [];
    silent.on('connection', (sock) => held.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      s.clock.set(new Date(d.next_attempt_at));
      const started = Date.now();
      expect(await worker({ egressProxy: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, connectTimeoutMs: 300 }).tick()).toBe(1);
      expect(Date.now() - started).toBeLessThan(2_500);
      d = await deliveryOf(api, ev);
      expect(d).toMatchObject({ status: 'pending', attempts: 2, last_error: 'proxy_error' });
      expect(d.attempt_log[1].response).toContain('within 300 ms');
    } finally {
      for (const sock of held) sock.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }

    // And the same delivery, retried through a working proxy, lands.
    s.clock.set(new Date(d.next_attempt_at));
    expect(await worker({ egressProxy: proxy.url }).tick()).toBe(1);
    expect(await deliveryOf(api, ev)).toMatchObject({ status: 'succeeded', attempts: 3 });
    expect(at('/dead-proxy')).toHaveLength(1);
  });

  it('a proxy whose rules refuse a destination (403) fails those attempts in the running loop; the other destinations go on', async () => {
    // An egress allowlist: "localhost" is allowed, 127.0.0.1 is not.
    const strict = await startProxy({
      answer: (t) => (t.startsWith('127.0.0.1:') ? 403 : undefined),
      route: (host, port) => ({ host: host === 'localhost' ? '127.0.0.1' : host, port }),
    });
    try {
      const refused = await paymentTo(api, userId, `${rx.url}/refused`);
      const allowed = await paymentTo(api, userId, `http://localhost:${rxPort}/allowed`);
      const w = worker({ egressProxy: strict.url, pollMs: 50 });
      await w.start();
      await expect.poll(async () => (await deliveryOf(api, refused)).attempts, { timeout: 10_000, interval: 50 }).toBe(1);
      await expect.poll(async () => (await deliveryOf(api, allowed)).status, { timeout: 10_000, interval: 50 }).toBe('succeeded');
      // The attempt is counted when it is claimed; its outcome is written a moment later, with the outcome batch.
      await expect.poll(async () => (await deliveryOf(api, refused)).last_error, { timeout: 10_000, interval: 50 }).toBe('proxy_error');
      const d = await deliveryOf(api, refused);
      expect(d).toMatchObject({ status: 'pending', last_error: 'proxy_error' });
      expect(d.attempt_log[0].response).toContain('answered 403 Forbidden to CONNECT 127.0.0.1:');
      expect(at('/refused')).toHaveLength(0);
      expect(at('/allowed')).toHaveLength(1);
      expect(w.stats.faults).toBe(0);
    } finally {
      await strict.close();
    }
  });
});

describe('configuration', () => {
  it('CASHWIRE_EGRESS_PROXY must be an http:// URL; a password in it is never echoed', () => {
    expect(loadConfig({}).worker.egressProxy).toBeUndefined();
    expect(loadConfig({ CASHWIRE_EGRESS_PROXY: '' }).worker.egressProxy).toBeUndefined();
    const ok = loadConfig({ CASHWIRE_EGRESS_PROXY: 'http://user:pass@proxy.internal:3128' });
    expect(ok.worker.egressProxy).toBe('http://user:pass@proxy.internal:3128');
    expect(workerOptions(ok).egressProxy).toBe('http://user:pass@proxy.internal:3128');
    for (const bad of ['https://proxy.internal:3128', 'socks5://proxy.internal:1080', 'proxy.internal:3128', 'not a url']) {
      expect(() => loadConfig({ CASHWIRE_EGRESS_PROXY: bad })).toThrow(/^CASHWIRE_EGRESS_PROXY must be an http:\/\/ URL/);
    }
    let message = '';
    try {
      loadConfig({ CASHWIRE_EGRESS_PROXY: 'https://user:hunter2@proxy.internal:3128' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('CASHWIRE_EGRESS_PROXY');
    expect(message).not.toContain('hunter2');
  });
});
