import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import pino from 'pino';
import { loadConfig, type Config } from '../src/config.js';
import { ManualClock, type Clock } from '../src/clock.js';
import { createOperator } from '../src/payments/operators/operators.js';
import { start, type Running } from '../src/server.js';
import { createWorker, type DeliveryWorker, type WorkerOptions } from '../src/delivery/worker.js';
import type { LookupFn } from '../src/security/ssrf.js';

// One sealing key for the test process and the Cashwire processes it spawns, so they read each other's secrets.
process.env.CASHWIRE_SECRET_KEY ??= 'a3f1c0ffee5eed0ddba11c0de0f00d1e5ca1ab1eb01dfaceb00cdeadbeef0001';

/** The machine's PostgreSQL (trust auth); each test file gets a database of its own. */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `cw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestServer {
  running: Running;
  url: string;
  clock: ManualClock;
  stop(): Promise<void>;
}

export async function startTestServer(
  overrides: Partial<Config> = {},
  clock: Clock = new ManualClock(new Date()),
  opts: { worker?: boolean | Partial<WorkerOptions>; resolver?: LookupFn } = {},
): Promise<TestServer> {
  const database = await createTestDatabase();
  const config: Config = {
    ...loadConfig({}),
    databaseUrl: database.url,
    port: 0,
    host: '127.0.0.1',
    rateLimits: { create: 1_000_000, read: 1_000_000 },
    ...overrides,
  };
  const running = await start({ config, clock, log: pino({ level: 'silent' }), jobs: false, worker: opts.worker ?? false, resolver: opts.resolver });
  return {
    running,
    url: running.url,
    clock: clock as ManualClock,
    async stop() {
      await running.stop();
      await database.drop();
    },
  };
}

export interface Keys { id: string; sandbox: string; production: string }

export async function newOperator(s: TestServer, name = 'Acme Casino'): Promise<Keys> {
  const op = await createOperator(s.running.deps, name);
  return { id: op.id, sandbox: op.sandbox_key, production: op.production_key };
}

export interface Res<T = any> { status: number; body: T; headers: Headers }

/** A small client: JSON in, JSON out, the key as a bearer token. */
export function client(base: string, key?: string) {
  async function call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res<T>> {
    const res = await fetch(base + path, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }
  return {
    get: <T = any>(path: string, headers?: Record<string, string>) => call<T>('GET', path, undefined, headers),
    post: <T = any>(path: string, body?: unknown, headers?: Record<string, string>) => call<T>('POST', path, body ?? {}, headers),
    call,
  };
}

export function userBody(overrides: Record<string, unknown> = {}) {
  return {
    name: { first: 'Ada', last: 'Lovelace' },
    email: 'ada@example.com',
    phone_number: '+12125550123',
    address: { address_line_1: '1 Main St', locality: 'Albany', administrative_area: 'NY', postal_code: '12207', country: 'US' },
    date_of_birth: '1990-12-10',
    government_id: { type: 'drivers_license', last4: '1234', state: 'NY' },
    identity_verified: true,
    ...overrides,
  };
}

export type Api = ReturnType<typeof client>;

export async function newUser(api: Api, overrides: Record<string, unknown> = {}): Promise<string> {
  const r = await api.post('/user', userBody(overrides));
  if (r.status !== 200) throw new Error(`user create failed: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/** Creates an intent and decides it through the hosted page's decision endpoint, as the end user's click would. */
export async function payThroughPage(s: TestServer, api: Api, body: Record<string, unknown>, action: 'approve' | 'cancel' | 'decline' = 'approve') {
  const created = await api.post('/intent', { currency: 'USD', ...body });
  if (created.status !== 200) throw new Error(`intent create failed: ${JSON.stringify(created.body)}`);
  const url = new URL(created.body.url);
  const r = await client(s.url).post(`${url.pathname}/decision`, { s: url.searchParams.get('s'), action });
  return { intent: created.body, decision: r };
}

/**
 * Delivery workers for tests: driven by tick() and the test server's clock, with no jitter (random 0.5: delays are
 * exactly the schedule's), started with no LISTEN and no polling unless asked. `reset()` (for afterEach) stops them and
 * closes whatever a test left queued, so nothing leaks into the next test.
 */
export function testWorkers(s: TestServer, defaults: Partial<WorkerOptions> & { resolver?: LookupFn } = {}) {
  const workers: DeliveryWorker[] = [];
  return {
    make(o: Partial<WorkerOptions> = {}): DeliveryWorker {
      const { resolver, ...options } = defaults;
      const d = s.running.deps;
      const w = createWorker(
        { db: d.db, clock: s.clock, ids: d.ids, log: pino({ level: 'silent' }), random: () => 0.5, secrets: d.secrets, metrics: d.metrics, resolver },
        { connectTimeoutMs: 300, totalTimeoutMs: 600, leaseMs: 2_000, pollMs: 0, listen: false, drainMs: 300, connectionString: s.running.database.url, ...options, ...o },
      );
      workers.push(w);
      return w;
    },
    async reset(rx?: { setResponder(r: (r: unknown) => { status: number; body?: string }): void; received: unknown[] }): Promise<void> {
      await Promise.all(workers.splice(0).map((w) => w.stop()));
      await s.running.deps.db.query("UPDATE deliveries SET status = 'expired' WHERE status = 'pending'");
      // Each test starts with healthy origins: a per-payment URL's circuit (its lane's) is not carried over.
      await s.running.deps.db.query("UPDATE delivery_lanes SET circuit_state = 'closed', circuit_retry_at = NULL, consecutive_failures = 0, failing_since = NULL");
      rx?.setResponder(() => ({ status: 200, body: 'ok' }));
      if (rx) rx.received.length = 0;
    },
  };
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = (srv.address() as net.AddressInfo);
      srv.close(() => resolve(port));
    });
  });
}
