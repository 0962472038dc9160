import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';
import { client, newOperator, newUser, startTestServer, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
let s: TestServer;
let rx: Awaited<ReturnType<typeof startReceiver>>;
const children: ChildProcess[] = [];

beforeAll(async () => {
  s = await startTestServer({}, systemClock);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await rx?.close();
  await s?.stop();
});

function startWorker(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...process.env, DATABASE_URL: s.running.database.url, LOG_LEVEL: 'info', CASHWIRE_WORKER_BATCH: '10', CASHWIRE_WORKER_CONCURRENCY: '20' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('delivery worker running')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${out}`)));
  });
}

describe('several worker processes on one database', () => {
  it('share the work, and no attempt is sent twice at once', async () => {
    // Each request is held 30 ms, so both workers have claims in flight at the same time.
    let concurrentSameEvent = 0;
    const inFlight = new Set<string>();
    rx = await startReceiver(async (r) => {
      const id = r.headers['x-webhook-id'] as string;
      if (inFlight.has(id)) concurrentSameEvent++;
      inFlight.add(id);
      await new Promise((res) => setTimeout(res, 30));
      inFlight.delete(id);
      return { status: 200 };
    });
    await Promise.all([startWorker(), startWorker()]);
    const api = client(s.url, (await newOperator(s)).sandbox);
    const userId = await newUser(api);
    const N = 300;
    // Events straight through the API: each authorize commits an intent.approved event with its delivery.
    for (let i = 0; i < N; i += 25) {
      await Promise.all(Array.from({ length: Math.min(25, N - i) }, async () => {
        const token = (await api.post('/token', { user_id: userId, type: 'card_only' })).body.token;
        const r = await api.post('/authorize', { amount: 100, currency: 'USD', direction: 'cash_in', token, webhook_url: `${rx.url}/hook` });
        expect(r.status).toBe(200);
      }));
    }
    await expect.poll(async () => {
      const { rows } = await s.running.deps.db.query("SELECT count(*)::int AS n FROM deliveries WHERE status = 'succeeded'");
      return rows[0].n;
    }, { timeout: 60_000, interval: 100 }).toBe(N);
    const ids = rx.received.map((r) => r.headers['x-webhook-id']);
    expect(new Set(ids).size).toBe(N);
    expect(ids).toHaveLength(N); // every 2xx was recorded before a lease ran out: nothing sent twice
    expect(concurrentSameEvent).toBe(0);
    const { rows } = await s.running.deps.db.query('SELECT worker, count(*)::int AS n FROM delivery_attempts GROUP BY worker');
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r.n).toBeGreaterThan(0);
  });
});
