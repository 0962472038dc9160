// Helpers the benchmarks share. The leading underscore keeps bench/run.js from running this file as a benchmark.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function machineInfo(pgVersion) {
  let nproc;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    nproc = os.availableParallelism();
  }
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    /* not Linux */
  }
  let code = 'unknown';
  try {
    const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    code = git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'packages') ? ' + uncommitted changes in packages/' : '');
  } catch {
    /* not a git checkout */
  }
  return { nproc, cpu, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, postgres: pgVersion, kernel: `${os.type()} ${os.release()}`, code };
}

export function procTicks(pid) {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** Keeps the last 8 KiB a child wrote, for error messages. */
export function capture(child) {
  let out = '';
  const keep = (d) => {
    out = (out + d).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => out;
}

export function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A request to a child process over its IPC channel (`{...msg, id}`), answered by a message with the same id. */
let rpcSeq = 0;
export function rpc(child, msg) {
  return new Promise((resolve, reject) => {
    const id = ++rpcSeq;
    const onMsg = (m) => {
      if (m?.id !== id) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code) => reject(new Error(`receivers exited (${code}) during ${msg.cmd}`));
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.send({ ...msg, id });
  });
}

/** Whether the benchmark file `self` is the script node was started with (not imported by another benchmark). */
export function isEntry(self) {
  return Boolean(process.argv[1]) && path.resolve(process.argv[1]) === self;
}

/**
 * A benchmark's command-line run: `main()` returns `{ problems }`; an exception or any problem exits 1 with the
 * reasons, so that bench/run.js (and a shell) see a failed benchmark as failed.
 */
export async function runEntry(main) {
  let result;
  try {
    result = await main();
  } catch (err) {
    console.error(err?.stack ?? err);
    process.exit(1);
  }
  if (result.problems.length) {
    console.error(`\nBENCHMARK FAILED:\n  ${result.problems.join('\n  ')}`);
    process.exit(1);
  }
}
