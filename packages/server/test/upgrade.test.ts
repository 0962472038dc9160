/**
 * The upgrade: a database made by the Cashwire of commit 4f662b3 (migrations 001..005; test/fixtures/main-005.sql,
 * made by test/fixtures/make-main-005.mjs), with deliveries queued in every state, is migrated by today's code when it
 * starts, and every one of those deliveries still goes out: once, signed with the secrets the old code sealed.
 *
 * Only the old schema is touched directly (the URLs are repointed at this test's receiver before the new code
 * migrates); everything after that goes through start(), the worker's tick() and the public API.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { verify } from '@cashwire/webhooks';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import type { DeliveryWorker } from '../src/delivery/worker.js';
import { start, type Running } from '../src/server.js';
import { client, createTestDatabase, testWorkers, type Api, type TestServer } from './helpers.js';
import { startReceiver, type Received } from './receiver.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MIGRATIONS = path.resolve(HERE, '../migrations');

type Destination = 'A' | 'B' | 'C' | 'P';
interface FixtureDelivery {
  id: string;
  event_id: string;
  event_type: string;
  intent_id: string | null;
  destination: Destination;
  format: 'pushcash' | 'standard';
  attempts: number;
  state: 'held' | 'pending_after_failed_attempt' | 'pending_never_attempted' | 'per_payment_pending';
}
interface Fixture {
  secret_key: string;
  migrations: string[];
  operator: { id: string; sandbox_key: string };
  endpoints: Record<'A' | 'B' | 'C', { id: string; format: 'pushcash' | 'standard'; url: string; secret: string }>;
  per_payment: { intent_id: string; url: string; webhook_secret: string };
  intents: { failed_once: string; fanout: string[]; per_payment: string };
  deliveries: FixtureDelivery[];
  attempts: { delivery_id: string; attempt: number; status_code: number | null; outcome: string }[];
}

const fixture: Fixture = JSON.parse(readFileSync(path.join(HERE, 'fixtures/main-005.json'), 'utf8'));
const dump = readFileSync(path.join(HERE, 'fixtures/main-005.sql'), 'utf8');
const OLD_MIGRATIONS = ['001_init.sql', '002_deliveries.sql', '003_endpoints.sql', '004_sendcash.sql', '005_queue_tuning.sql'];

const sent = fixture.deliveries.filter((d) => d.state !== 'held');
const held = fixture.deliveries.filter((d) => d.state === 'held');
const failedOnce = fixture.deliveries.find((d) => d.state === 'pending_after_failed_attempt')!;
const eventIds = [...new Set(fixture.deliveries.map((d) => d.event_id))];

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let running: Running | undefined;
let clock: ManualClock;
let api: Api;
let worker: DeliveryWorker;
let beforeMigration: string[];

/** The secret a destination verifies with, as the operator holds it. */
function secretOf(d: Destination): string {
  return d === 'P' ? fixture.per_payment.webhook_secret : fixture.endpoints[d].secret;
}
const eventIdOf = (r: Received) => (r.headers['webhook-id'] ?? r.headers['x-webhook-id']) as string | undefined;
const at = (d: Destination, eventId: string) => rx.received.filter((r) => r.path === `/${d}` && eventIdOf(r) === eventId);

/** What a receiver would do with the request: verify it with the receiver SDK, at the time it was sent. */
async function verifyReceived(d: FixtureDelivery, r: Received) {
  const event = await verify(d.format, { body: r.body, headers: r.headers, secrets: [secretOf(d.destination)], now: clock.now() });
  expect(event.type).toBe(d.event_type);
  if (d.intent_id) expect((JSON.parse(r.body) as { data: { id: string } }).data.id).toBe(d.intent_id);
}

async function event(id: string) {
  const r = await api.get(`/events/${id}`);
  expect(r.status).toBe(200);
  return r.body as { id: string; type: string; deliveries: { id: string; url: string; status: string; attempts: number; attempt_log: { attempt: number; status_code: number | null; outcome: string }[] }[] };
}

/** The fixture delivery as the API shows it: the one of its event that goes to its destination's URL. */
async function shown(d: FixtureDelivery) {
  const e = await event(d.event_id);
  const matches = e.deliveries.filter((x) => x.url === `${rx.url}/${d.destination}`);
  expect(matches, `${d.event_type} ${d.event_id} to ${d.destination}`).toHaveLength(1);
  return matches[0]!;
}

beforeAll(async () => {
  // The key that sealed the dump's secrets (the one test/helpers.ts uses).
  process.env.CASHWIRE_SECRET_KEY = fixture.secret_key;
  database = await createTestDatabase();
  rx = await startReceiver();
  const c = new pg.Client({ connectionString: database.url });
  await c.connect();
  try {
    await c.query(dump);
    beforeMigration = (await c.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).rows.map((r) => r.name);
    // Repoint the old rows at this test's receiver, on the OLD schema, before the new code migrates it.
    for (const [name, e] of Object.entries(fixture.endpoints)) {
      await c.query('UPDATE endpoints SET url = $3 WHERE operator_id = $1 AND id = $2', [fixture.operator.id, e.id, `${rx.url}/${name}`]);
      await c.query('UPDATE deliveries SET url = $3 WHERE operator_id = $1 AND endpoint_id = $2', [fixture.operator.id, e.id, `${rx.url}/${name}`]);
    }
    await c.query('UPDATE deliveries SET url = $3 WHERE operator_id = $1 AND endpoint_id IS NULL AND url = $2', [fixture.operator.id, fixture.per_payment.url, `${rx.url}/P`]);
    await c.query('UPDATE intents SET webhook_url = $3 WHERE operator_id = $1 AND webhook_url = $2', [fixture.operator.id, fixture.per_payment.url, `${rx.url}/P`]);
  } finally {
    await c.end();
  }

  // The upgrade under test: start() migrates the old database.
  clock = new ManualClock(new Date('2026-11-30T12:05:00.000Z'));
  running = await start({
    config: { ...loadConfig({}), databaseUrl: database.url, port: 0, host: '127.0.0.1', rateLimits: { create: 1_000_000, read: 1_000_000 } },
    clock,
    log: pino({ level: 'silent' }),
    jobs: false,
    worker: false,
  });
  api = client(running.url, fixture.operator.sandbox_key);
  const s: TestServer = { running, url: running.url, clock, stop: () => running!.stop() };
  worker = testWorkers(s).make();
}, 30_000);

afterAll(async () => {
  await worker?.stop();
  await running?.stop();
  await rx?.close();
  await database?.drop();
}, 30_000);

// Short: a hang (a tick that never ends) fails here in seconds, not at the suite's minute.
describe('upgrading a database made by main at 4f662b3', { timeout: 20_000 }, () => {
  it('applies the new migrations and only those, on top of the five old ones', async () => {
    expect(beforeMigration).toEqual(OLD_MIGRATIONS);
    expect(fixture.migrations).toEqual(OLD_MIGRATIONS);
    const present = readdirSync(MIGRATIONS).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
    const { rows } = await running!.deps.db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
    const names = rows.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining([...OLD_MIGRATIONS, ...present]));
    expect(new Set(names).size).toBe(names.length);
  });

  it("keeps the old data readable through the API: the old key, the events, the failed attempt's log", async () => {
    expect((await api.get(`/intent/${fixture.intents.per_payment}`)).body).toMatchObject({ id: fixture.intents.per_payment, status: 'approved' });
    const listed = await api.get('/events?limit=100');
    expect(listed.status).toBe(200);
    expect((listed.body.data as { id: string }[]).map((e) => e.id)).toEqual(expect.arrayContaining(eventIds));
    const d = await shown(failedOnce);
    expect(d.status).toBe('pending');
    expect(d.attempt_log).toEqual([expect.objectContaining({ attempt: 1, status_code: 500, outcome: 'retry' })]);
    expect(rx.received).toHaveLength(0);
  });

  it('sends every pending delivery once, signed with the old secrets; the failed one gets its attempt 2', async () => {
    // 12:05: past the failed attempt's retry time (12:01, the sandbox schedule's 1 minute).
    await worker.tick();
    for (const d of sent) {
      const got = at(d.destination, d.event_id);
      expect(got, `${d.event_type} ${d.event_id} to ${d.destination}`).toHaveLength(1);
      await verifyReceived(d, got[0]!);
    }
    for (const d of held) expect(at(d.destination, d.event_id), `held ${d.event_type} to C`).toHaveLength(0);
    expect(rx.received.filter((r) => r.path === '/C')).toHaveLength(0);

    // Later still: nothing is sent again, and the disabled endpoint's deliveries stay held.
    const before = rx.received.length;
    clock.advance(15 * 60_000);
    await worker.tick();
    expect(rx.received.length).toBe(before);

    for (const d of sent) {
      const x = await shown(d);
      expect(x.status, `${d.event_type} to ${d.destination}`).toBe('succeeded');
      expect(x.attempt_log.at(-1)).toMatchObject({ attempt: d.attempts + 1, outcome: 'succeeded', status_code: 200 });
    }
    const retried = await shown(failedOnce);
    expect(retried.attempts).toBe(2);
    expect(retried.attempt_log).toEqual([
      expect.objectContaining({ attempt: 1, status_code: 500, outcome: 'retry' }),
      expect.objectContaining({ attempt: 2, status_code: 200, outcome: 'succeeded' }),
    ]);
    for (const d of held) {
      const x = await shown(d);
      expect(x.status).not.toBe('succeeded');
      expect(x.attempt_log).toHaveLength(0);
    }
  });

  it('sends the held deliveries once the disabled endpoint is enabled', async () => {
    const enabled = await api.post(`/webhook/endpoints/${fixture.endpoints.C.id}/enable`);
    expect(enabled.status).toBe(200);
    expect(enabled.body.status).toBe('enabled');
    await worker.tick();
    for (const d of held) {
      const got = at('C', d.event_id);
      expect(got, `held ${d.event_type} ${d.event_id} to C`).toHaveLength(1);
      await verifyReceived(d, got[0]!);
      expect((await shown(d)).status).toBe('succeeded');
    }

    // In the end: every delivery of every old event succeeded, each (destination, event) was received once.
    for (const id of eventIds) {
      for (const x of (await event(id)).deliveries) expect(x.status, `${id} to ${x.url}`).toBe('succeeded');
    }
    const pending = await api.get('/events?limit=100&delivery_status=pending');
    expect((pending.body.data as { id: string }[]).filter((e) => eventIds.includes(e.id))).toEqual([]);
    const pairs = rx.received.map((r) => `${r.path} ${eventIdOf(r)}`);
    expect(new Set(pairs).size).toBe(pairs.length);
    for (const d of fixture.deliveries) expect(at(d.destination, d.event_id)).toHaveLength(1);
  });
});
