/**
 * `cashwire listen --forward-to` (issue 15, item 3), run as a child process against a test server: the printed
 * secret verifies what the local receiver gets (pushcash and standard), one line per forward, each forward an attempt
 * of a delivery to the destination `cli` in GET /events/{id} (never retried by the engine), failure injection, a
 * disconnect that loses and repeats nothing, and the secret kept across runs. Also the two server routes it uses
 * (GET /cli/secret, POST /cli/deliveries) and the SSE parser.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { verify } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseDuration, seededRandom, sseParser, type SseMessage } from '../src/cli/listen.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'packages/server/bin/cashwire.js');

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Listener {
  proc: ChildProcess;
  lines: string[];
  stderr: () => string;
  secret: string;
  /** SIGINT, then the exit code. */
  stop(): Promise<number | null>;
}

const running: ChildProcess[] = [];

async function listen(s: TestServer, key: string, args: string[], env: Record<string, string> = {}): Promise<Listener> {
  const proc = spawn(process.execPath, [bin, 'listen', ...args], {
    env: { ...process.env, CASHWIRE_API_URL: s.url, CASHWIRE_API_KEY: key, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(proc);
  const lines: string[] = [];
  let buf = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const ready = await Promise.race([
    // The Ready line, and the line after it (how to verify): both printed before the stream is read.
    until('the Ready line', () => lines.some((l) => l.startsWith('Verify each request')) && lines.find((l) => l.startsWith('Ready.')), 20_000),
    exited.then((code) => {
      throw new Error(`listen exited (${code}) before it was ready: ${err}`);
    }),
  ]);
  const secret = /Signing secret: (\S+)$/.exec(ready)![1]!;
  return {
    proc, lines, secret, stderr: () => err,
    async stop() {
      proc.kill('SIGINT');
      return exited;
    },
  };
}

/** A line a forward printed: `HH:MM:SS  <type>  <status>  <latency> ms  <event id>[  (simulated)]`. */
const FORWARD_LINE = /^(\d\d:\d\d:\d\d)\s+(\S+)\s+(\S+)\s+(\d+) ms\s+(evt_\S+)(\s+\(simulated\))?$/;
const forwards = (l: Listener) => l.lines.map((x) => FORWARD_LINE.exec(x)).filter((m): m is RegExpExecArray => m !== null);

describe('cashwire listen', () => {
  let s: TestServer;
  let keys: Keys;
  let api: Api;
  let user: string;
  let rx: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    s = await startTestServer();
    keys = await newOperator(s);
    api = client(s.url, keys.sandbox);
    user = await newUser(api);
    rx = await startReceiver();
  });
  afterEach(async () => {
    for (const p of running.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
    rx.received.length = 0;
  });
  afterAll(async () => {
    await rx?.close();
    await s?.stop();
  });

  /** An approved deposit: one intent.approved event. Returns the event id. */
  async function approvedEvent(amount = 1000): Promise<string> {
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: user, amount });
    const r = await api.get(`/events?intent_id=${intent.id}&type=intent.approved`);
    expect(r.body.data).toHaveLength(1);
    return r.body.data[0].id;
  }

  it('pushcash (the default): prints the secret, forwards each new event signed with it, prints a line, records the attempt (destination cli); old events are not replayed', async () => {
    const old = await approvedEvent();
    const l = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/hooks`]);
    expect(l.secret).toMatch(/^whsk_/);
    expect(l.lines[0]).toBe(`Ready. Forwarding pushcash webhooks to ${rx.url}/hooks. Signing secret: ${l.secret}`);
    expect(l.lines[1]).toContain('X-Webhook-Signature: sha256=');

    const id = await approvedEvent(1234);
    const got = await until('the forward', () => rx.received.find((r) => r.headers['x-webhook-id'] === id));
    expect(got.path).toBe('/hooks');
    const event = await verify('pushcash', { body: got.body, headers: got.headers as Record<string, string>, secrets: l.secret });
    expect(event.type).toBe('intent.approved');
    expect(JSON.parse(got.body).data.amount).toBe(1234);
    // Another secret does not verify it: the signature is the printed secret's.
    await expect(verify('pushcash', { body: got.body, headers: got.headers as Record<string, string>, secrets: 'whsk_other' })).rejects.toThrow();

    const line = await until('the printed line', () => forwards(l).find((m) => m[5] === id));
    expect(line[2]).toBe('intent.approved');
    expect(line[3]).toBe('200');
    expect(line[6]).toBeUndefined();

    const ev = await until('the recorded attempt', async () => {
      const r = await api.get(`/events/${id}`);
      return r.body.deliveries?.length ? r.body : undefined;
    });
    expect(ev.deliveries).toHaveLength(1);
    const d = ev.deliveries[0];
    expect(d).toMatchObject({ endpoint_id: null, url: `${rx.url}/hooks`, format: 'pushcash', status: 'succeeded', attempts: 1, last_status: 200, next_attempt_at: null });
    expect(d.attempt_log).toHaveLength(1);
    expect(d.attempt_log[0]).toMatchObject({ attempt: 1, status_code: 200, outcome: 'succeeded', error_code: null });
    expect(d.attempt_log[0].latency_ms).toBe(Number(line[4]));

    // The event made before listen started was not forwarded.
    expect(rx.received.some((r) => r.headers['x-webhook-id'] === old)).toBe(false);
    expect(await l.stop()).toBe(0);
    expect(l.lines.at(-1)).toMatch(/Stopped\./);
  });

  it('standard: a whsec_ secret, Standard Webhooks headers that verify with it; the secret is the same on the next run and from GET /cli/secret', async () => {
    const first = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/std`, '--format', 'standard']);
    expect(first.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const id = await approvedEvent();
    const got = await until('the forward', () => rx.received.find((r) => r.headers['webhook-id'] === id));
    expect(got.headers['webhook-signature']).toMatch(/^v1,/);
    const event = await verify('standard', { body: got.body, headers: got.headers as Record<string, string>, secrets: first.secret });
    expect(event.type).toBe('intent.approved');
    await first.stop();

    const second = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/std`, '--format', 'standard']);
    expect(second.secret).toBe(first.secret);
    await second.stop();
    expect((await api.get('/cli/secret?format=standard')).body).toEqual({ format: 'standard', secret: first.secret });
    // Per format: pushcash's is another secret.
    expect((await api.get('/cli/secret?format=pushcash')).body.secret).not.toBe(first.secret);
  });

  it('listen + `cashwire trigger intent.approved`: the receiver verifies the forward with the printed secret', async () => {
    const l = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/trigger`, '--format', 'standard']);
    const trig = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [bin, 'trigger', 'intent.approved', '--json'], {
        env: { ...process.env, CASHWIRE_API_URL: s.url, CASHWIRE_API_KEY: keys.sandbox }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      p.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      p.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      p.on('exit', (code) => resolve({ code, out, err }));
    });
    expect(trig.code, trig.err).toBe(0);
    const id = JSON.parse(trig.out).event_id as string;
    const got = await until('the forward', () => rx.received.find((r) => r.headers['webhook-id'] === id));
    const event = await verify('standard', { body: got.body, headers: got.headers as Record<string, string>, secrets: l.secret });
    expect(event.type).toBe('intent.approved');
    await until('the printed line', () => forwards(l).find((m) => m[5] === id && m[3] === '200'));
    await l.stop();
  });

  it('--events: only those types are forwarded', async () => {
    const l = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/only`, '--events', 'intent.declined']);
    await approvedEvent();
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: user, amount: 500 }, 'decline');
    const declined = (await api.get(`/events?intent_id=${intent.id}&type=intent.declined`)).body.data[0].id;
    await until('the declined forward', () => rx.received.find((r) => r.headers['x-webhook-id'] === declined));
    await l.stop();
    expect(rx.received.map((r) => JSON.parse(r.body).type)).toEqual(['intent.declined']);
  });

  it('--status 500: the receiver is not called; a failed attempt is recorded, never retried by the engine', async () => {
    const l = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/never`, '--status', '500']);
    expect(l.lines[1]).toContain('Failure injection is on');
    const id = await approvedEvent();
    const line = await until('the printed line', () => forwards(l).find((m) => m[5] === id));
    expect(line[3]).toBe('500');
    expect(line[6]).toBeDefined();
    const ev = await until('the recorded attempt', async () => {
      const r = await api.get(`/events/${id}`);
      return r.body.deliveries?.length ? r.body : undefined;
    });
    expect(ev.deliveries[0]).toMatchObject({ url: `${rx.url}/never`, status: 'failed', last_status: 500, attempts: 1 });
    expect(ev.deliveries[0].attempt_log).toMatchObject([{ attempt: 1, status_code: 500, outcome: 'failed' }]);
    expect(rx.received).toHaveLength(0);
    await l.stop();

    // A worker, even an hour later, leaves it alone: not pending, so never claimed.
    const workers = testWorkers(s);
    const w = workers.make();
    s.clock.advance(3_600_000);
    await w.tick();
    await workers.reset();
    const after = (await api.get(`/events/${id}`)).body;
    expect(after.deliveries).toHaveLength(1);
    expect(after.deliveries[0].attempt_log).toHaveLength(1);
    expect(rx.received).toHaveLength(0);
  });

  it('--latency and --fail-rate: answered by the CLI after the latency; 500 at the rate (seeded)', async () => {
    const l = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/never`, '--latency', '300ms', '--fail-rate', '1'], { CASHWIRE_LISTEN_SEED: 'x' });
    const id = await approvedEvent();
    const line = await until('the printed line', () => forwards(l).find((m) => m[5] === id));
    expect(line[3]).toBe('500');
    expect(Number(line[4])).toBeGreaterThanOrEqual(290);
    await l.stop();
    const l2 = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/never`, '--fail-rate', '0']);
    const id2 = await approvedEvent();
    const line2 = await until('the printed line', () => forwards(l2).find((m) => m[5] === id2));
    expect(line2[3]).toBe('200');
    await l2.stop();
    expect(rx.received).toHaveLength(0);
  });

  it('a receiver that is down: the attempt is recorded with its error code', async () => {
    const dead = await startReceiver();
    const url = `${dead.url}/gone`;
    await dead.close();
    const l = await listen(s, keys.sandbox, ['--forward-to', url]);
    const id = await approvedEvent();
    const line = await until('the printed line', () => forwards(l).find((m) => m[5] === id));
    expect(line[3]).toBe('connection_refused');
    const ev = await until('the recorded attempt', async () => {
      const r = await api.get(`/events/${id}`);
      return r.body.deliveries?.length ? r.body : undefined;
    });
    expect(ev.deliveries[0]).toMatchObject({ status: 'failed', last_status: null, last_error: 'connection_refused' });
    await l.stop();
  });

  it('--timeout: a receiver that does not answer in time is a timeout', async () => {
    const slow = await startReceiver(() => ({ status: 200, hang: true }));
    const l = await listen(s, keys.sandbox, ['--forward-to', `${slow.url}/slow`, '--timeout', '300ms']);
    const id = await approvedEvent();
    const line = await until('the printed line', () => forwards(l).find((m) => m[5] === id));
    expect(line[3]).toBe('timeout');
    expect(Number(line[4])).toBeGreaterThanOrEqual(290);
    expect(slow.received).toHaveLength(1);
    const ev = await until('the recorded attempt', async () => {
      const r = await api.get(`/events/${id}`);
      return r.body.deliveries?.length ? r.body : undefined;
    });
    expect(ev.deliveries[0]).toMatchObject({ status: 'failed', last_error: 'timeout' });
    await l.stop();
    await slow.close();
  });

  it('a disconnect: it reconnects and resumes after the last event it forwarded; every event exactly once, in order', async () => {
    const l = await listen(s, keys.sandbox, ['--forward-to', `${rx.url}/order`]);
    const ids: string[] = [];
    ids.push(await approvedEvent(101));
    await until('the first forward', () => rx.received.length === 1);
    for (let round = 0; round < 3; round++) {
      s.running.app!.server.closeAllConnections();
      // Events made while it is disconnected (it waits at least 250 ms before reconnecting); the test's own pooled
      // connections were closed too, so it waits to see the close first.
      await until('the disconnect', () => l.lines.filter((x) => x.includes('Disconnected (')).length > round);
      await new Promise((r) => setTimeout(r, 20));
      ids.push(await approvedEvent(200 + round));
      ids.push(await approvedEvent(300 + round));
      await until(`round ${round}`, () => rx.received.length >= ids.length && forwards(l).length >= ids.length);
    }
    await new Promise((r) => setTimeout(r, 600)); // a repeat would show within a poll or two
    expect(rx.received.map((r) => r.headers['x-webhook-id'])).toEqual(ids);
    expect(forwards(l).map((m) => m[5])).toEqual(ids);
    expect(l.lines.filter((x) => /Reconnected; resuming after evt_/.test(x)).length).toBeGreaterThanOrEqual(3);
    expect(l.lines.some((x) => /Disconnected \(/.test(x))).toBe(true);
    // Every forward is in the attempt log once.
    for (const id of ids) {
      const ev = await until(`the attempt of ${id}`, async () => {
        const r = await api.get(`/events/${id}`);
        return r.body.deliveries?.length ? r.body : undefined;
      });
      expect(ev.deliveries).toHaveLength(1);
    }
    await l.stop();
  });

  it('--from-start forwards the events made before, then the new ones', async () => {
    const other = await newOperator(s, 'From Start');
    const oapi = client(s.url, other.sandbox);
    const ouser = await newUser(oapi);
    const before = (await payThroughPage(s, oapi, { direction: 'cash_in', user_id: ouser, amount: 700 })).intent.id;
    const l = await listen(s, other.sandbox, ['--forward-to', `${rx.url}/all`, '--from-start']);
    await until('the old event', () => rx.received.length >= 1);
    await payThroughPage(s, oapi, { direction: 'cash_in', user_id: ouser, amount: 800 });
    await until('the new event', () => rx.received.length >= 2);
    await l.stop();
    const bodies = rx.received.map((r) => JSON.parse(r.body));
    expect(bodies[0].data.id ?? bodies[0].data.intent_id).toBe(before);
    expect(bodies.map((b) => b.data.amount)).toEqual([700, 800]);
  });

  it('bad flags are refused before anything starts', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const p = spawn(process.execPath, [bin, 'listen', ...args], { env: { ...process.env, CASHWIRE_API_URL: s.url, CASHWIRE_API_KEY: keys.sandbox }, stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        p.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
        p.on('exit', (code) => resolve({ code, err }));
      });
    expect((await run([])).err).toMatch(/--forward-to/);
    expect((await run(['--forward-to', 'localhost:3000'])).err).toMatch(/http or https/);
    expect((await run(['--forward-to', 'not a url'])).err).toMatch(/absolute http/);
    expect((await run(['--forward-to', 'http://x', '--format', 'nope'])).err).toMatch(/pushcash/);
    expect((await run(['--forward-to', 'http://x', '--fail-rate', '2'])).err).toMatch(/0 to 1/);
    expect((await run(['--forward-to', 'http://x', '--latency', 'soon'])).err).toMatch(/duration/);
    expect((await run(['--forward-to', 'http://x', '--status', '42'])).err).toMatch(/status code/);
    const unknown = await run(['--forward-to', 'http://x', '--events', 'intent.nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/unknown_event_type/);
  });
});

describe('GET /cli/secret and POST /cli/deliveries', () => {
  let s: TestServer;
  let keys: Keys;
  let api: Api;
  beforeAll(async () => {
    s = await startTestServer();
    keys = await newOperator(s);
    api = client(s.url, keys.sandbox);
  });
  afterAll(() => s?.stop());

  it('one secret per operator, environment and format, made once even by concurrent first calls; sealed at rest', async () => {
    const all = await Promise.all(Array.from({ length: 8 }, () => api.get('/cli/secret?format=sendcash')));
    expect(new Set(all.map((r) => r.status))).toEqual(new Set([200]));
    expect(new Set(all.map((r) => r.body.secret)).size).toBe(1);
    expect(all[0]!.body.secret).toMatch(/^[0-9a-f]{64}$/);
    const prod = await client(s.url, keys.production).get('/cli/secret?format=sendcash');
    expect(prod.body.secret).not.toBe(all[0]!.body.secret);
    const other = await newOperator(s, 'Other');
    expect((await client(s.url, other.sandbox).get('/cli/secret?format=sendcash')).body.secret).not.toBe(all[0]!.body.secret);
    expect((await api.get('/cli/secret')).body.format).toBe('pushcash');
    const { rows } = await s.running.deps.db.query('SELECT secret FROM cli_secrets WHERE operator_id = $1', [keys.id]);
    for (const r of rows) expect(r.secret).toMatch(/^enc:v1:/);
  });

  it('a resend of the event does not make the engine deliver to a listen\'s forward-to URL', async () => {
    const user = await newUser(api);
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: user, amount: 100 });
    const id = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0].id;
    expect((await api.post('/cli/deliveries', { event_id: id, url: 'http://localhost:3000/webhooks', status_code: 500, latency_ms: 3 })).status).toBe(201);
    // The intent has no webhook_url and the operator no endpoint: the CLI's record is its only delivery, and it is not
    // the engine's to resend.
    expect((await api.post(`/events/${id}/resend`)).status).toBeLessThan(500);
    const { rows } = await s.running.deps.db.query("SELECT count(*)::int AS n FROM deliveries WHERE operator_id = $1 AND event_id = $2 AND lane IS DISTINCT FROM 'cli'", [keys.id, id]);
    expect(rows[0].n).toBe(0);
  });

  it('refuses bad input with the error shape, never a 500', async () => {
    expect((await api.get('/cli/secret?format=nope')).body.error.code).toBe('invalid_value');
    expect((await client(s.url).get('/cli/secret')).status).toBe(401);
    const user = await newUser(api);
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: user, amount: 100 });
    const id = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0].id;
    const ok = { event_id: id, url: 'http://localhost:3000/webhooks', status_code: 204, latency_ms: 5 };
    const r = await api.post('/cli/deliveries', ok);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ destination: 'cli', status: 'succeeded', format: 'pushcash', status_code: 204 });
    const cases: [Record<string, unknown>, number, string][] = [
      [{ ...ok, url: 'localhost:3000' }, 400, 'invalid_url'],
      [{ ...ok, url: 'ftp://x/y' }, 400, 'invalid_url'],
      [{ ...ok, status_code: undefined }, 400, 'missing_field'],
      [{ ...ok, status_code: 99 }, 400, 'out_of_range'],
      [{ ...ok, latency_ms: -1 }, 400, 'out_of_range'],
      [{ ...ok, format: 'nope' }, 400, 'invalid_value'],
      [{ ...ok, event_id: 'evt_nope' }, 404, 'event_not_found'],
    ];
    for (const [body, status, code] of cases) {
      const x = await api.post('/cli/deliveries', body);
      expect([x.status, x.body.error?.code], JSON.stringify(body)).toEqual([status, code]);
    }
    // Another operator's event, and this operator's event with the production key: not found.
    const other = await newOperator(s, 'Nosy');
    expect((await client(s.url, other.sandbox).post('/cli/deliveries', ok)).body.error.code).toBe('event_not_found');
    expect((await client(s.url, keys.production).post('/cli/deliveries', ok)).body.error.code).toBe('event_not_found');
    // forward_id: the same request again (the CLI retrying after a lost answer) records nothing more.
    const once = { ...ok, status_code: 503, forward_id: 'fwd_abcdefgh' };
    const first = await api.post('/cli/deliveries', once);
    const again = await api.post('/cli/deliveries', once);
    expect([first.status, first.body.replayed, again.status, again.body.replayed]).toEqual([201, false, 201, true]);
    expect(again.body.id).toBe(first.body.id);
    expect((await api.post('/cli/deliveries', { ...once, forward_id: 'bad id!!!' })).body.error.code).toBe('invalid_format');
    const byId = (await api.get(`/events/${id}`)).body.deliveries.filter((d: { id: string }) => d.id === first.body.id);
    expect(byId).toHaveLength(1);
    expect(byId[0].attempt_log).toHaveLength(1);
    await s.running.deps.db.query('DELETE FROM delivery_attempts WHERE delivery_id = $1', [first.body.id]);
    await s.running.deps.db.query('DELETE FROM deliveries WHERE id = $1', [first.body.id]);
    // An error instead of a status: failed.
    const e = await api.post('/cli/deliveries', { ...ok, status_code: null, error: 'timeout' });
    expect(e.body).toMatchObject({ status: 'failed', error: 'timeout' });
    const ev = (await api.get(`/events/${id}`)).body;
    expect(ev.deliveries.map((d: { status: string }) => d.status).sort()).toEqual(['failed', 'succeeded']);
    const failed = ev.deliveries.find((d: { status: string }) => d.status === 'failed');
    expect(failed.attempt_log[0]).toMatchObject({ status_code: null, error_code: 'timeout', outcome: 'failed' });
  });
});

describe('the SSE parser and the flags', () => {
  it('parses events across chunk boundaries, CRLF, CR, comments, multi-line data, and keeps the last id', () => {
    const got: SseMessage[] = [];
    const comments: string[] = [];
    const p = sseParser({ onMessage: (m) => got.push(m), onComment: (c) => comments.push(c) });
    const text = ': connected\n\nid: evt_1\nevent: intent.approved\ndata: {"a":\ndata:1}\n\nid: evt_2\r\ndata: x\r\n\r\n: ping\r\rdata:y\r\r\nevent: e\nid\n\n';
    for (const ch of text) p.feed(ch); // one character at a time: every split
    expect(comments).toEqual(['connected', 'ping']);
    expect(got).toEqual([
      { id: 'evt_1', event: 'intent.approved', data: '{"a":\n1}' },
      { id: 'evt_2', event: 'message', data: 'x' },
      { id: 'evt_2', event: 'message', data: 'y' },
    ]);
    // `id` with no value resets it; a message without data is not dispatched.
    expect(p.lastEventId).toBe('');
    const q: SseMessage[] = [];
    const p2 = sseParser({ onMessage: (m) => q.push(m) });
    p2.feed(text);
    expect(q).toEqual(got);
  });

  it('durations and the seeded random', () => {
    expect(parseDuration('2s')).toBe(2000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('250')).toBe(250);
    expect(() => parseDuration('2h')).toThrow();
    const a = seededRandom('seed');
    const b = seededRandom('seed');
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});
