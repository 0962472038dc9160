/**
 * The `npm start` path as a user runs it: `cashwire start` with no DATABASE_URL, so the embedded PostgreSQL
 * runs in the data folder. Real child processes: first start, clean shutdown, restart, a crash of the whole
 * process tree, a crash of node alone (orphaned postmaster), and the operator/key CLI on the same folder.
 * Needs the build: `npx tsc -b packages/webhooks packages/server`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, userBody } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
const KEY = 'sk_sandbox_embedded_start_test_fixed_key';

interface Proc {
  child: ChildProcess;
  pid: number;
  out: string;
  err: string;
  /** Resolves on the process's exit. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stdout and stderr are closed too (all output read). */
  closed: Promise<void>;
}

const procs: Proc[] = [];
let dataDir = '';
let pgPort = 0;
let apiPort = 0;
let base = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** Runs the CLI in a process group of its own (so that a test can kill the whole tree), DATABASE_URL unset. */
function cli(args: string[], extraEnv: Record<string, string> = {}): Proc {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CASHWIRE_DATA_DIR: dataDir,
    CASHWIRE_PG_PORT: String(pgPort),
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    CASHWIRE_SANDBOX_API_KEY: KEY,
    ...extraEnv,
  };
  delete env.DATABASE_URL;
  delete env.LOG_LEVEL;
  if (extraEnv.LOG_LEVEL) env.LOG_LEVEL = extraEnv.LOG_LEVEL;
  const child = spawn(process.execPath, [CLI, ...args], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = {
    child,
    pid: child.pid!,
    out: '',
    err: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    closed: new Promise((resolve) => child.once('close', () => resolve())),
  };
  child.stdout!.on('data', (c: Buffer) => (p.out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (p.err += c.toString()));
  procs.push(p);
  return p;
}

function describeProc(p: Proc): string {
  return `\n--- stdout ---\n${p.out.slice(-3000)}\n--- stderr ---\n${p.err.slice(-3000)}`;
}

/** Resolves with the value of `fn` once it is truthy; a bounded number of tries. */
async function waitFor<T>(what: string, fn: () => T | Promise<T>, tries = 300, everyMs = 100): Promise<NonNullable<T>> {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The exit of `p`, failing (instead of hanging) if it does not come within a bounded wait. */
async function exitOf(p: Proc, what: string) {
  const r = await Promise.race([p.exited, sleep(30_000).then(() => undefined)]);
  if (!r) throw new Error(`${what}: process ${p.pid} did not exit${describeProc(p)}`);
  await Promise.race([p.closed, sleep(5_000)]);
  return r;
}

/** Runs a one-shot CLI command to the end; returns its exit code and output. */
async function runCli(args: string[]) {
  const p = cli(args);
  const r = await exitOf(p, `cashwire ${args.join(' ')}`);
  return { code: r.code, out: p.out, err: p.err };
}

async function http(method: string, url: string, key?: string, body?: unknown) {
  const res = await fetch(base + url, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

/** Starts `cashwire start`; resolves once /healthz answers 200 and the banner is printed. */
async function startServer(extraEnv: Record<string, string> = {}): Promise<Proc & { startMs: number }> {
  const t0 = Date.now();
  const p = cli(['start'], extraEnv);
  await waitFor('GET /healthz 200', async () => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`cashwire start exited early (${p.child.exitCode ?? p.child.signalCode})${describeProc(p)}`);
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }, 600, 100);
  await waitFor('the start banner', () => p.out.includes('Try it:'), 100, 50);
  return Object.assign(p, { startMs: Date.now() - t0 });
}

/** The postmaster's pid, from its lock file; undefined when there is no lock file. */
function postmasterPid(): number | undefined {
  const file = path.join(dataDir, 'pg', 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** A clean stop: postgres stopped, its lock file removed, the pid gone. */
async function expectPostgresStopped(pid: number) {
  await waitFor(`postmaster ${pid} to be gone`, () => !alive(pid), 100, 100);
  expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
}

let userId = '';
let crashUserId = '';

describe('npm start: embedded PostgreSQL lifecycle (real processes)', () => {
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -b packages/webhooks packages/server)`);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cashwire-embedded-'));
    await chmod(dataDir, 0o755); // the postgres OS user must reach <dataDir>/pg
    pgPort = await freePort();
    apiPort = await freePort();
    while (apiPort === pgPort) apiPort = await freePort();
    base = `http://127.0.0.1:${apiPort}`;
  });

  afterAll(async () => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        await Promise.race([p.exited, sleep(5_000)]);
      }
    }
    const pid = dataDir ? postmasterPid() : undefined;
    if (pid && alive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres')) {
      process.kill(pid, 'SIGQUIT'); // a postmaster a failed test left behind
      await waitFor('the leftover postmaster to exit', () => !alive(pid), 100, 100).catch(() => {});
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true, maxRetries: 5 });
  });

  it('first start on an empty folder: healthy, prints the key and a curl line, the key works, writes work', async () => {
    const s = await startServer();
    console.info(`cold start (initdb + migrations) until /healthz 200: ${s.startMs} ms`);
    expect(s.out).toContain(`A sandbox operator was created`);
    expect(s.out).toContain(`\n  ${KEY}\n`);
    expect(s.out).toContain(`curl -s -X POST http://localhost:${apiPort}/keys/verify -H "Authorization: Bearer ${KEY}"`);
    // stdout holds pino's JSON lines and the banner, never PostgreSQL's own log.
    expect(s.out).not.toMatch(/database system is ready|LOG: {2}/);
    for (const line of s.out.split('\n').filter((l) => l.startsWith('{'))) expect(() => JSON.parse(line)).not.toThrow();

    const verify = await http('POST', '/keys/verify', KEY);
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ name: 'Sandbox Operator', environment: 'sandbox' });

    const created = await http('POST', '/user', KEY, userBody());
    expect(created.status).toBe(200);
    userId = created.body.id;
    expect(userId).toBeTruthy();

    // 2. Clean shutdown: SIGTERM to node alone (what docker stop / systemd send).
    const pgPid = postmasterPid()!;
    expect(alive(pgPid)).toBe(true);
    process.kill(s.pid, 'SIGTERM');
    const exit = await exitOf(s, 'SIGTERM');
    expect(exit, describeProc(s)).toEqual({ code: 0, signal: null });
    expect(s.out).toContain('"msg":"shutting down"');
    await expectPostgresStopped(pgPid);
  });

  it('restart keeps the data; Ctrl-C (SIGINT to the whole process group) also stops cleanly', async () => {
    const s = await startServer();
    expect(s.out).not.toContain('A sandbox operator was created'); // not the first start any more
    expect(s.out).toContain(`Bearer ${KEY}`);
    const got = await http('GET', `/user/${userId}`, KEY);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: userId, email: 'ada@example.com' });

    const pgPid = postmasterPid()!;
    process.kill(-s.pid, 'SIGINT'); // the terminal's Ctrl-C reaches node and postgres at once
    const exit = await exitOf(s, 'SIGINT');
    expect(exit, describeProc(s)).toEqual({ code: 0, signal: null });
    await expectPostgresStopped(pgPid);
  });

  it('crash of the whole process tree (SIGKILL to the group): the next start recovers, data intact', async () => {
    const s = await startServer();
    const created = await http('POST', '/user', KEY, userBody({ email: 'crash@example.com' }));
    expect(created.status).toBe(200);
    crashUserId = created.body.id;

    const pgPid = postmasterPid()!;
    expect(alive(pgPid)).toBe(true);
    process.kill(-s.pid, 'SIGKILL');
    expect(await exitOf(s, 'SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    await waitFor(`postmaster ${pgPid} to die`, () => !alive(pgPid), 100, 50);
    expect(postmasterPid()).toBe(pgPid); // the stale lock file is left behind

    const again = await startServer({ LOG_LEVEL: 'debug' }); // debug: PostgreSQL's own lines show the recovery
    console.info(`start after a crash (crash recovery) until /healthz 200: ${again.startMs} ms`);
    expect(again.out).toMatch(/not properly shut down; automatic recovery in progress/);
    expect((await http('GET', `/user/${userId}`, KEY)).status).toBe(200);
    const crashUser = await http('GET', `/user/${crashUserId}`, KEY);
    expect(crashUser.status).toBe(200); // committed before the crash, so it survived it
    expect(crashUser.body.email).toBe('crash@example.com');
    expect((await http('POST', '/user', KEY, userBody({ email: 'after-crash@example.com' }))).status).toBe(200);

    const newPid = postmasterPid()!;
    process.kill(again.pid, 'SIGTERM');
    expect(await exitOf(again, 'SIGTERM after recovery')).toEqual({ code: 0, signal: null });
    await expectPostgresStopped(newPid);
  });

  it('node alone SIGKILLed: the orphaned postmaster survives; the next start stops it and starts cleanly', async () => {
    const s = await startServer();
    const pgPid = postmasterPid()!;
    expect(parentOf(pgPid)).toBe(s.pid);
    process.kill(s.pid, 'SIGKILL');
    expect(await exitOf(s, 'SIGKILL node')).toEqual({ code: null, signal: 'SIGKILL' });

    // The orphan keeps running, even when it writes to its stderr whose reader is gone (a failed login logs).
    await waitFor('the postmaster to be reparented', () => alive(pgPid) && parentOf(pgPid) !== s.pid, 50, 50);
    const bad = new pg.Client({ connectionString: `postgres://postgres:wrong@127.0.0.1:${pgPort}/postgres`, connectionTimeoutMillis: 5_000 });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);
    await bad.end().catch(() => {});
    await sleep(200);
    expect(alive(pgPid)).toBe(true);

    const again = await startServer();
    const newPid = postmasterPid()!;
    expect(newPid).not.toBe(pgPid);
    expect(alive(pgPid)).toBe(false); // the orphan was stopped, not left beside the new one
    expect(parentOf(newPid)).toBe(again.pid);
    expect((await http('GET', `/user/${userId}`, KEY)).status).toBe(200);
    expect((await http('GET', `/user/${crashUserId}`, KEY)).status).toBe(200);
    expect((await http('POST', '/user', KEY, userBody({ email: 'after-orphan@example.com' }))).status).toBe(200);

    process.kill(again.pid, 'SIGTERM');
    expect(await exitOf(again, 'SIGTERM after orphan')).toEqual({ code: 0, signal: null });
    await expectPostgresStopped(newPid);
  });

  it('operator and key CLI on the same folder (server stopped, then running)', async () => {
    // No server: the CLI starts the embedded PostgreSQL itself and stops it again.
    const made = await runCli(['operator', 'create', 'Embedded Casino']);
    expect(made.code, made.err).toBe(0);
    const op = JSON.parse(made.out); // stdout is the JSON and nothing else
    expect(op).toMatchObject({ id: expect.stringMatching(/^op_/), name: 'Embedded Casino' });
    expect(op.sandbox_key).toMatch(/^sk_sandbox_/);
    expect(op.production_key).toMatch(/^sk_production_/);
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    const k = await runCli(['key', 'create', op.id, '--env', 'production', '--name', 'ci']);
    expect(k.code, k.err).toBe(0);
    const newKey = JSON.parse(k.out);
    expect(newKey).toMatchObject({ id: expect.stringMatching(/^key_/), operator_id: op.id, environment: 'production', name: 'ci' });
    expect(newKey.key).toMatch(/^sk_production_/);

    const s = await startServer();
    const prod = await http('POST', '/keys/verify', op.production_key);
    expect(prod.status).toBe(200);
    expect(prod.body).toEqual({ name: 'Embedded Casino', environment: 'production' });
    expect((await http('POST', '/keys/verify', op.sandbox_key)).body).toEqual({ name: 'Embedded Casino', environment: 'sandbox' });
    expect((await http('POST', '/keys/verify', newKey.key)).status).toBe(200);

    // While the server runs, the CLI uses the server's PostgreSQL and leaves it running.
    const pgPid = postmasterPid()!;
    const list = await runCli(['key', 'list', op.id]);
    expect(list.code, list.err).toBe(0);
    const keys = JSON.parse(list.out) as Array<Record<string, unknown>>;
    expect(keys.map((x) => x.id)).toContain(newKey.id);
    expect(keys).toHaveLength(3);
    for (const x of keys) {
      expect(x).not.toHaveProperty('key');
      expect(x).not.toHaveProperty('key_hash');
      expect(x.revoked_at).toBeNull();
    }

    const revoked = await runCli(['key', 'revoke', newKey.id]);
    expect(revoked.code, revoked.err).toBe(0);
    expect(JSON.parse(revoked.out)).toEqual({ revoked: newKey.id });
    expect(postmasterPid()).toBe(pgPid);
    expect(alive(pgPid)).toBe(true);
    expect((await http('GET', '/healthz')).status).toBe(200);

    const refused = await http('POST', '/keys/verify', newKey.key);
    expect(refused.status).toBe(401);
    expect((await http('POST', '/keys/verify', op.production_key)).status).toBe(200);

    const again = await runCli(['key', 'revoke', newKey.id]);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`no active key ${newKey.id}`);

    const listed = JSON.parse((await runCli(['key', 'list', op.id])).out) as Array<Record<string, unknown>>;
    expect(listed.find((x) => x.id === newKey.id)!.revoked_at).not.toBeNull();

    process.kill(s.pid, 'SIGTERM');
    expect(await exitOf(s, 'SIGTERM')).toEqual({ code: 0, signal: null });
    await expectPostgresStopped(pgPid);
  });
});
