/**
 * The delivery worker of `cashwire start`, in a child process of its own (`cashwire worker`): the API and delivery
 * each get their own event loop, so a request that holds the API's CPU does not stop webhooks, and a burst of
 * deliveries does not slow the API. The child shares the database (the parent's embedded PostgreSQL, or
 * DATABASE_URL) and the secret key. A child that exits unexpectedly is started again (1 s, doubling to 30 s); a
 * child left behind by a parent that died exits by itself (it watches its parent's pid).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';

export const CLI_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli.js');

export interface Supervisor {
  /** The running child's pid, if one runs. */
  readonly pid: number | undefined;
  /** How many times a child was started. */
  readonly starts: number;
  /** SIGTERM to the child, then waits for it (its drain included); SIGKILL after `graceMs`. */
  stop(graceMs: number): Promise<void>;
}

export function superviseWorker(o: { databaseUrl: string; secretKey: string; log: Logger; env?: NodeJS.ProcessEnv }): Supervisor {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopping = false;
  let starts = 0;
  let backoff = 1_000;
  let restartTimer: NodeJS.Timeout | undefined;

  function launch() {
    if (stopping) return;
    starts++;
    const startedAt = Date.now();
    const c = spawn(process.execPath, [CLI_PATH, 'worker'], {
      env: { ...(o.env ?? process.env), DATABASE_URL: o.databaseUrl, CASHWIRE_SECRET_KEY: o.secretKey, CASHWIRE_PARENT_PID: String(process.pid) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child = c;
    exited = new Promise((resolve) => {
      let gone = false;
      // 'exit' after a run; 'error' alone when the process could not be started at all (then no 'exit' follows).
      const ended = (why: Record<string, unknown>) => {
        if (gone) return;
        gone = true;
        if (child === c) child = undefined;
        resolve();
        if (stopping) return;
        // Ran a while: the next failure starts the backoff again.
        if (Date.now() - startedAt > 60_000) backoff = 1_000;
        o.log.error({ ...why, restartInMs: backoff }, 'the delivery worker process exited; starting it again');
        restartTimer = setTimeout(launch, backoff);
        backoff = Math.min(backoff * 2, 30_000);
      };
      c.once('exit', (code, signal) => ended({ code, signal }));
      c.once('error', (err) => ended({ err: err.message }));
    });
  }

  launch();
  return {
    get pid() {
      return child?.pid;
    },
    get starts() {
      return starts;
    },
    async stop(graceMs) {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const c = child;
      if (!c) return;
      c.kill('SIGTERM');
      const killer = setTimeout(() => c.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * In a worker started by a supervisor: exit when the parent is gone (a parent killed with SIGKILL cannot stop its
 * child), so that no worker is left behind sending webhooks for a server that no longer runs.
 */
export function watchParent(log: Logger, onOrphaned: () => void): void {
  const parent = Number(process.env.CASHWIRE_PARENT_PID);
  if (!parent) return;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      log.warn({ parent }, 'the Cashwire process that started this worker is gone; stopping');
      onOrphaned();
    }
  }, 1_000);
  timer.unref();
}
