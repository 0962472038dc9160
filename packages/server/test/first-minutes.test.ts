/**
 * The first five minutes (issue 15, item 6) and the CLI's own rate-limit budget (item 7): the landing page at `/`, the
 * API reference at `/docs` served from this server, one `info` line per failed attempt, the `start` banner and its
 * logs (JSON when stdout is not a TTY, pino-pretty with LOG_PRETTY=1), and CLI requests counted apart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { remote, RemoteError } from '../src/cli/remote.js';
import { createWorker } from '../src/delivery/worker.js';
import { updateSettings } from '../src/payments/operators/operators.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'packages/server/bin/cashwire.js');

describe('GET / and the API reference', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s?.stop());

  it('/ is an HTML page linking the API reference, the OpenAPI document, health, readiness, metrics and the dashboard', async () => {
    const r = await fetch(`${s.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await r.text();
    for (const href of ['/docs', '/openapi.json', '/healthz', '/readyz', '/metrics', '/dashboard']) expect(html).toContain(`href="${href}"`);
    expect(html).toContain(`export CW=${s.running.deps.config.publicUrl}`);
    expect(html).toContain('/keys/verify');
    expect(html).toContain('npx cashwire operator list');
    // No script, nothing from elsewhere.
    expect(html).not.toMatch(/<script|https?:\/\/(?!localhost|127\.0\.0\.1)[a-z]/i);
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('every other unknown path still answers the JSON 404', async () => {
    for (const p of ['/nope', '/index.html', '/docs-nope', '/docs/static/no-such-file.js']) {
      const r = await fetch(s.url + p);
      expect(r.status, p).toBe(404);
      expect((await r.json()).error.code, p).toBe('route_not_found');
    }
    const post = await fetch(`${s.url}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(404);
    expect((await post.json()).error.code).toBe('route_not_found');
  });

  it('/docs serves Swagger UI and its assets from this server, over the same OpenAPI document as /openapi.json', async () => {
    const page = await fetch(`${s.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toMatch(/https?:/);
    const html = await page.text();
    expect(html).toContain('Cashwire API reference');
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(3);
    for (const a of assets) {
      expect(a, 'no CDN').not.toMatch(/^(https?:)?\/\//);
      const r = await fetch(new URL(a, `${s.url}/docs`));
      expect(r.status, a).toBe(200);
      expect((await r.arrayBuffer()).byteLength, a).toBeGreaterThan(0); // read: an unread body keeps its connection busy
    }
    const doc = await (await fetch(`${s.url}/openapi.json`)).json();
    expect(await (await fetch(`${s.url}/docs/json`)).json()).toEqual(doc);
    // The reference's own routes are not in the API's document.
    expect(Object.keys(doc.paths).filter((p) => p === '/' || p.startsWith('/docs'))).toEqual([]);
    expect(doc.paths['/intent'].post).toBeDefined();
  });

  it("Swagger UI's index.html redirects to /docs/, with a query string too (no redirect to itself)", async () => {
    for (const q of ['', '?x=1', '?__proto__=x&s=1&s=2']) {
      const r = await fetch(`${s.url}/docs/static/index.html${q}`, { redirect: 'manual' });
      expect(r.status, q).toBe(302);
      expect(r.headers.get('location'), q).toBe('/docs/');
    }
    const slash = await fetch(`${s.url}/docs/`);
    expect(slash.status).toBe(200);
    expect(await slash.text()).toContain('./static/swagger-ui-bundle.js');
  });
});

describe("the CLI's rate-limit budget (X-Cashwire-Client: cli)", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ rateLimits: { create: 1000, read: 3, cli: 2 } });
  });
  afterAll(() => s?.stop());
  /** The CLI's own client (cli/remote.ts), as every remote command uses it. */
  const cliCall = async (key: string) => {
    try {
      await remote({ apiUrl: s.url, apiKey: key }).request('POST', '/keys/verify');
      return 200;
    } catch (err) {
      if (err instanceof RemoteError) return err.status;
      throw err;
    }
  };

  it('the CLI using up its budget does not 429 the backend', async () => {
    const op = await newOperator(s);
    const backend = client(s.url, op.sandbox);
    expect(await cliCall(op.sandbox)).toBe(200);
    expect(await cliCall(op.sandbox)).toBe(200);
    expect(await cliCall(op.sandbox)).toBe(429);
    for (let i = 0; i < 3; i++) {
      const r = await backend.post('/keys/verify');
      expect(r.status).toBe(200);
      expect(r.headers.get('x-ratelimit-limit')).toBe('3');
      expect(r.headers.get('x-ratelimit-remaining')).toBe(String(2 - i));
    }
    expect((await backend.post('/keys/verify')).status).toBe(429);
  });

  it('the backend using up its budget does not 429 the CLI, and the CLI budget covers create requests too', async () => {
    const op = await newOperator(s);
    const backend = client(s.url, op.sandbox);
    for (let i = 0; i < 3; i++) expect((await backend.post('/keys/verify')).status).toBe(200);
    expect((await backend.post('/keys/verify')).status).toBe(429);
    const r = await fetch(`${s.url}/keys/verify`, { method: 'POST', headers: { authorization: `Bearer ${op.sandbox}`, 'x-cashwire-client': 'cli' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-ratelimit-limit')).toBe('2');
    expect(r.headers.get('x-ratelimit-remaining')).toBe('1');
    // A create request of the CLI counts in the CLI's budget, not the create one.
    const created = await fetch(`${s.url}/user`, { method: 'POST', headers: { authorization: `Bearer ${op.sandbox}`, 'x-cashwire-client': 'cli', 'content-type': 'application/json' }, body: '{}' });
    expect(created.status).toBe(400);
    expect(created.headers.get('x-ratelimit-limit')).toBe('2');
    expect(await cliCall(op.sandbox)).toBe(429);
    const counts = await s.running.deps.db.query<{ class: string; n: number }>(
      `SELECT class, sum(count)::int AS n FROM rate_counters c JOIN api_keys k ON k.id = c.key_id WHERE k.operator_id = $1 GROUP BY class ORDER BY class`, [op.id]);
    expect(counts.rows).toEqual([{ class: 'cli', n: 2 }, { class: 'read', n: 3 }]);
  });

  it('rate_limits.cli is an operator setting, shown with its default in GET /operator/settings', async () => {
    const op = await newOperator(s);
    const api = client(s.url, op.sandbox);
    expect((await api.get('/operator/settings')).body.rate_limits).toEqual({ create: 1000, read: 3, cli: 2 });
    const bad = await api.call('PATCH', '/operator/settings', { rate_limits: { cli: 0 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('out_of_range');
    const set = await api.call('PATCH', '/operator/settings', { rate_limits: { cli: 5 } });
    expect(set.status).toBe(200);
    expect(set.body.rate_limits).toEqual({ create: 1000, read: 3, cli: 5 });
    const other = await newOperator(s);
    await updateSettings(s.running.deps, other.id, { rate_limits: { cli: 1 } });
    expect(await cliCall(other.sandbox)).toBe(200);
    expect(await cliCall(other.sandbox)).toBe(429);
    for (let i = 0; i < 5; i++) expect(await cliCall(op.sandbox)).toBe(200);
    expect(await cliCall(op.sandbox)).toBe(429);
  });

  it('defaults to 1000 an hour without any setting', async () => {
    const t = await startTestServer({ rateLimits: { create: 10, read: 10 } });
    try {
      const op = await newOperator(t);
      const r = await fetch(`${t.url}/keys/verify`, { method: 'POST', headers: { authorization: `Bearer ${op.sandbox}`, 'x-cashwire-client': 'cli' } });
      expect(r.headers.get('x-ratelimit-limit')).toBe('1000');
      expect((await client(t.url, op.sandbox).get('/operator/settings')).body.rate_limits.cli).toBe(1000);
    } finally {
      await t.stop();
    }
  });
});

describe('one info line per failed attempt', () => {
  let s: TestServer;
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    s = await startTestServer();
    rx = await startReceiver(() => ({ status: 500, body: 'boom' }));
  });
  afterAll(async () => {
    await rx?.close();
    await s?.stop();
  });

  it('logs the event type, delivery, host, status, attempt and next retry at info', async () => {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
        done();
      },
    });
    const d = s.running.deps;
    const w = createWorker(
      { db: d.db, clock: s.clock, ids: d.ids, log: pino({ level: 'info' }, sink), random: () => 0.5, secrets: d.secrets, metrics: d.metrics },
      { connectTimeoutMs: 300, totalTimeoutMs: 600, leaseMs: 2_000, pollMs: 0, listen: false, drainMs: 300, connectionString: s.running.database.url },
    );
    try {
      const api = client(s.url, (await newOperator(s)).sandbox);
      const userId = await newUser(api);
      const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: `${rx.url}/hook` });
      await w.tick();
      expect(rx.received).toHaveLength(1);
      const failed = lines.filter((l) => l.msg.includes('failed'));
      expect(failed).toHaveLength(1);
      const l = failed[0]!;
      expect(l.level).toBe(30); // info
      expect(l).toMatchObject({ type: 'intent.approved', host: new URL(rx.url).host, status: 500, attempt: 1, next: 'retry' });
      expect(l.delivery).toMatch(/\S/);
      expect(l.retry_at).toBe(new Date(s.clock.now().getTime() + 60_000).toISOString()); // the sandbox's first retry
      expect(l.msg).toBe(`attempt 1 of intent.approved ${l.delivery} to ${new URL(rx.url).host} failed: 500; next retry at ${l.retry_at}`);
      expect(intent.id).toBeDefined();
    } finally {
      await w.stop();
    }
  });
});

describe('npm start: the banner and the logs', () => {
  let s: TestServer;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });
  afterAll(() => s?.stop());

  /** Starts `cashwire start` on the test database; resolves with its stdout once the banner is out. */
  function start(extraEnv: Record<string, string>): Promise<string> {
    const child = spawn(process.execPath, [bin, 'start'], {
      env: { ...process.env, DATABASE_URL: s.running.database.url, PORT: '0', HOST: '127.0.0.1', CASHWIRE_WORKER_MODE: 'inline', LOG_LEVEL: 'info', LOG_PRETTY: '', NO_COLOR: '1', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`no banner in 30 s: ${out} ${err}`)), 30_000);
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('Try it:') && /key create/.test(out)) {
          clearTimeout(timer);
          setTimeout(() => resolve(out), 200); // the logs written around it
        }
      });
      child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`start exited ${code}: ${out} ${err}`));
      });
    });
  }

  it('says how to list operators, make a new key and where the API reference is; logs JSON when stdout is not a TTY', async () => {
    const out = await start({});
    expect(out).toContain('npx cashwire operator list');
    expect(out).toContain('npx cashwire key create <operator id>');
    expect(out).toMatch(/API reference: http:\/\/127\.0\.0\.1:\d+\/docs /);
    expect(out).toMatch(/Dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard /);
    const listening = out.split('\n').find((l) => l.includes('Server listening'))!;
    expect(JSON.parse(listening)).toMatchObject({ level: 30, msg: expect.stringContaining('Server listening') });
  });

  it('LOG_PRETTY=1 makes the logs human-readable (pino-pretty), with a time of day rather than epoch milliseconds', async () => {
    const out = await start({ LOG_PRETTY: '1' });
    const listening = out.split('\n').find((l) => l.includes('Server listening'))!;
    expect(() => JSON.parse(listening)).toThrow();
    expect(listening).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO/);
    expect(listening).not.toMatch(/"time":\d{13}/);
  });
});
