/**
 * `cashwire stats` run as a child process (`node packages/server/bin/cashwire.js stats …`) against a test server whose
 * attempt log and queue samples are written straight into the database (as stats.test.ts does), so that every number
 * the command prints is known: the summary, the table of the buckets that have something, --json, --endpoint, errors.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.js';
import { renderStats } from '../src/cli/stats.js';
import { deliveryStats, sampleQueue } from '../src/delivery/stats.js';
import { client, newOperator, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/cashwire.js', import.meta.url));

interface Run { code: number; stdout: string; stderr: string }

function run(args: string[], env: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve) => {
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
    execFile(process.execPath, [BIN, ...args], { env: childEnv, cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const NOW = Date.UTC(2026, 0, 15, 12, 0, 30); // the 1h window's buckets are 11:01 .. 12:00
const at = (hh: number, mm: number, ss = 0) => new Date(Date.UTC(2026, 0, 15, hh, mm, ss));
let s: TestServer;
let keys: Keys;
let api: Api;
let ep1: string;
let ep2: string;
let n = 0;
const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
  run(['stats', ...args], { CASHWIRE_API_URL: s.url, CASHWIRE_API_KEY: keys.sandbox, DATABASE_URL: undefined, ...env });

const q = (sql: string, params: unknown[] = []) => s.running.deps.db.query(sql, params);

async function endpoint(env: 'sandbox' | 'production'): Promise<string> {
  const id = `ep_clistats${++n}`;
  await q(`INSERT INTO endpoints (operator_id, environment, id, url, events, format, payload_version, secret, status, created_at, updated_at)
           VALUES ($1, $2, $3, $4, '{*}', 'pushcash', '2024-05', 'sealed', 'enabled', $5, $5)`, [keys.id, env, id, `https://hooks.example/${id}`, new Date(NOW)]);
  return id;
}

/** A delivery (with its event) to an endpoint, or to a payment's own URL when none is given. */
async function delivery(env: 'sandbox' | 'production', opts: { endpointId?: string; status?: string; due?: Date } = {}): Promise<string> {
  const id = `dlv_clistats${++n}`;
  const ev = `evt_clistats${n}`;
  await q(`INSERT INTO events (operator_id, environment, id, type, data, created_at) VALUES ($1, $2, $3, 'intent.approved', '{}', $4)`, [keys.id, env, ev, new Date(NOW - 3_600_000)]);
  const url = opts.endpointId ? `https://hooks.example/${opts.endpointId}` : 'https://shop.example/hook';
  await q(`INSERT INTO deliveries (operator_id, id, environment, event_id, endpoint_id, lane, url, format, payload_version, status, next_attempt_at, created_at)
           VALUES ($1, $2, $3, $4, $5, cw_lane($5, $3, $6), $6, 'pushcash', '2024-05', $7, $8, $9)`,
  [keys.id, id, env, ev, opts.endpointId ?? null, url, opts.status ?? 'succeeded', opts.due ?? new Date(NOW), new Date(NOW - 3_600_000)]);
  return id;
}

async function attempts(deliveryId: string, list: Array<[Date, string, number]>): Promise<void> {
  let k = 0;
  for (const [started, outcome, latencyMs] of list) {
    await q(`INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, outcome) VALUES ($1, $2, $3, 'w1', $4, $5, $6)`,
      [keys.id, deliveryId, ++k, started, latencyMs, outcome]);
  }
}

beforeAll(async () => {
  s = await startTestServer({}, new ManualClock(NOW));
  keys = await newOperator(s, 'Stats Casino');
  api = client(s.url, keys.sandbox);
  ep1 = await endpoint('sandbox');
  ep2 = await endpoint('sandbox');
  const prod = await endpoint('production');
  await attempts(await delivery('sandbox', { endpointId: ep1 }), [[at(11, 58, 10), 'retry', 300], [at(11, 58, 40), 'succeeded', 20]]);
  await attempts(await delivery('sandbox', { endpointId: ep1 }), [[at(12, 0, 5), 'failed', 50]]);
  await attempts(await delivery('sandbox', { endpointId: ep2 }), [[at(11, 30, 0), 'succeeded', 40], [at(11, 30, 20), 'succeeded', 900]]);
  await attempts(await delivery('sandbox', { endpointId: ep2 }), [[at(11, 30, 30), 'expired', 10]]);
  await attempts(await delivery('sandbox'), [[at(11, 45, 0), 'held', 5]]); // a payment's own webhook_url
  await attempts(await delivery('sandbox'), [[at(10, 30, 0), 'succeeded', 7]]); // before the 1h window, inside 6h
  await attempts(await delivery('production', { endpointId: prod }), [[at(11, 58, 0), 'failed', 8000]]); // another environment
  // The queue at 12:00: one delivery of ep1 due, one of ep2 waiting for its retry.
  await delivery('sandbox', { endpointId: ep1, status: 'pending', due: new Date(NOW - 5000) });
  await delivery('sandbox', { endpointId: ep2, status: 'pending', due: new Date(NOW + 600_000) });
  expect((await sampleQueue(s.running.deps.db, s.clock.now())).wrote).toBe(true);
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

/** The table's lines (after the header). */
const rowsOf = (stdout: string) => stdout.slice(stdout.indexOf('TIME (UTC)')).trim().split('\n').slice(1);

describe('cashwire stats', () => {
  it('prints the summary of the window and one line per bucket with attempts or a queue sample, in 100 columns', async () => {
    const r = await cli([]);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^Delivery stats, all deliveries, last 1h: 2026-01-15 11:01 to 2026-01-15 12:01 UTC$/m);
    expect(out).toMatch(/^ {2}attempts {5}7 \(succeeded 3, retry 1, failed 1, expired 1, held 1\)$/m);
    expect(out).toMatch(/^ {2}worst p99 {4}900 ms at 2026-01-15 11:30$/m);
    expect(out).toMatch(/^ {2}max pending {2}2 at 2026-01-15 12:00 \(due 1\)$/m);
    expect(out).toContain("4 of the window's 60 buckets of 1 min had attempts or a queue sample; the others are left out.");
    expect(out).toMatch(/^TIME \(UTC\)\s+SUCCEEDED\s+RETRY\s+FAILED\s+EXPIRED\s+HELD\s+P50 MS\s+P99 MS\s+PENDING\s+DUE$/m);
    //               time               succ retry fail exp held p50 p99 pending due
    const expected = [
      ['2026-01-15 11:30', '2', '0', '0', '1', '0', '40', '900', '-', '-'],
      ['2026-01-15 11:45', '0', '0', '0', '0', '1', '5', '5', '-', '-'],
      ['2026-01-15 11:58', '1', '1', '0', '0', '0', '20', '300', '-', '-'],
      ['2026-01-15 12:00', '0', '0', '1', '0', '0', '50', '50', '2', '1'],
    ];
    expect(rowsOf(out).map((l) => l.split(/ {2,}/))).toEqual(expected);
    for (const line of out.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
  }, 30_000);

  it('--json prints the API answer as is; --window asks for that window', async () => {
    for (const window of ['1h', '6h', '24h'] as const) {
      const r = await cli(['--json', ...(window === '1h' ? [] : ['--window', window])]);
      expect(r.code, r.stderr).toBe(0);
      const answer = await api.get(`/webhook/stats?window=${window}`);
      expect(answer.status).toBe(200);
      expect(JSON.parse(r.stdout)).toEqual(answer.body);
      expect(answer.body.window).toBe(window);
    }
    // The attempt of 10:30 is in 6h, not in 1h.
    expect(JSON.parse((await cli(['--json'])).stdout).totals.attempts).toBe(7);
    expect(JSON.parse((await cli(['--json', '--window', '6h'])).stdout).totals.attempts).toBe(8);
    const six = await cli(['--window', '6h']);
    expect(six.stdout).toMatch(/^ {2}attempts {5}8 \(succeeded 4, /m);
    expect(six.stdout).toContain("of the window's 72 buckets of 5 min");
    expect(six.stdout).toMatch(/^2026-01-15 10:30\s+1\s+0\s+0\s+0\s+0\s+7\s+7\s+-\s+-$/m);
  }, 30_000);

  it('--endpoint narrows to one endpoint: its attempts and its queue sample', async () => {
    const r = await cli(['--endpoint', ep2]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Delivery stats, endpoint ${ep2}, last 1h:`, 'm'));
    expect(r.stdout).toMatch(/^ {2}attempts {5}3 \(succeeded 2, retry 0, failed 0, expired 1, held 0\)$/m);
    expect(r.stdout).toMatch(/^ {2}max pending {2}1 at 2026-01-15 12:00 \(due 0\)$/m);
    expect(rowsOf(r.stdout).map((l) => l.split(/ {2,}/))).toEqual([
      ['2026-01-15 11:30', '2', '0', '0', '1', '0', '40', '900', '-', '-'],
      ['2026-01-15 12:00', '0', '0', '0', '0', '0', '-', '-', '1', '0'],
    ]);
    const j = await cli(['--endpoint', ep1, '--json']);
    expect(JSON.parse(j.stdout)).toEqual((await api.get(`/webhook/stats?endpoint_id=${ep1}`)).body);
    expect(JSON.parse(j.stdout)).toMatchObject({ endpoint: ep1, totals: { attempts: 3 } });
  }, 30_000);

  it('an unknown endpoint and a bad key: "cashwire: <code>: <message>" on one line, exit 1', async () => {
    const unknown = await cli(['--endpoint', 'ep_nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^cashwire: endpoint_not_found: \S.*\n$/);
    // An endpoint of the production environment is unknown to a sandbox key.
    const prodOnly = (await q(`SELECT id FROM endpoints WHERE operator_id = $1 AND environment = 'production'`, [keys.id])).rows[0].id;
    expect((await cli(['--endpoint', prodOnly])).stderr).toMatch(/^cashwire: endpoint_not_found: /);

    const badKey = await cli(['--api-key', 'sk_sandbox_not_a_key']);
    expect(badKey.code).toBe(1);
    expect(badKey.stdout).toBe('');
    expect(badKey.stderr).toMatch(/^cashwire: unauthorized: \S.*\n$/);
  }, 30_000);

  it('refuses a bad --window before any request', async () => {
    // Nothing listens at port 9: a request would say "cannot reach".
    for (const w of ['2h', '1H', '']) {
      const r = await cli(['--window', w], { CASHWIRE_API_URL: 'http://127.0.0.1:9' });
      expect(r.code, w).toBe(1);
      expect(r.stderr, w).toMatch(/error: option '--window <window>' argument '.*' is invalid\. --window must be one of 1h, 6h, 24h/);
      expect(r.stderr, w).not.toContain('cannot reach');
      expect(r.stdout, w).toBe('');
    }
    const help = await cli(['--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/uses --api-url\/--api-key or CASHWIRE_API_URL\/CASHWIRE_API_KEY/);
  }, 30_000);

  it('says so when the window has neither attempts nor queue samples', async () => {
    const st = await deliveryStats(s.running.deps.db, { operatorId: keys.id, environment: 'sandbox' }, '1h', new Date(NOW + 86_400_000));
    const out = renderStats(st);
    expect(out).toContain("No attempts and no queue samples in the window's 60 buckets of 1 min.");
    expect(out).toMatch(/^ {2}attempts {5}0 \(succeeded 0, /m);
    expect(out).toMatch(/^ {2}worst p99 {4}- \(no attempts\)$/m);
    expect(out).toMatch(/^ {2}max pending {2}- \(the queue was not sampled\)$/m);
    expect(out).not.toContain('TIME (UTC)');
  });
});
