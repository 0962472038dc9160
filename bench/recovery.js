#!/usr/bin/env node
// Recovery after an outage: 10 registered endpoints come back at once and their backlog must flush.
//
//   node bench/recovery.js                (after `npm run build`; about 4 minutes with the default 3 runs)
//   import { run } from './recovery.js'; await run()   -> rows (the shape bench/run.js prints)
//
// Each run, in turn:
//   1. Cashwire (bench/fairness.js's scenario with recovery settings): the API and one `cashwire worker` (default
//      settings) as child processes on a throw-away database; 10 sandbox endpoints registered and disabled through
//      the public API, 5,000 events fanned out to each (50,000 held deliveries, written by the production insert path),
//      then `POST /webhook/endpoints/{id}/enable` for all ten at once. The receivers answer 200 at once and verify
//      every signature; the run checks that each delivery arrived once and that the database has all 50,000
//      `succeeded`. Timed from the first enable request to the moment nothing is pending.
//   2. The same 50,000 signed POSTs to 10 receivers from memory through undici (the raw limit), and through a BullMQ
//      queue on the local Redis (bench/delivery.js parts 2 and 3), in the same run, so that the ratios compare
//      like with like.
// Printed: the drain rate, its per-second curve, the peak second, whether the drain has a tail (drain time ≤
// 1.2 × N / peak rate), CPU per delivery of each party, and the ratios to the raw limit and to BullMQ.
//
// Environment:
//   BENCH_RECOVERY_RUNS   runs (default 3)     BENCH_RECOVERY_BACKLOG  held deliveries in all (default 50000)
//   BENCH_PLOT_DIR=<dir>  also write recovery-drain.svg (the curves of every run) there
//   BENCH_RESULT_FILE=<file>  also write { bench, machine, rows } as JSON (bench/run.js reads it)
//   BENCH_ROOT, BENCH_DATABASE_URL, BENCH_REDIS_URL as for bench/fairness.js and bench/delivery.js
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAll as fairnessScenario } from './fairness.js';
import { run as deliveryParts } from './delivery.js';
import { drainSvg } from './_plot.js';
import { isEntry, runEntry } from './_common.js';

const SELF = fileURLToPath(import.meta.url);
const intEnv = (name, fallback) => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};

export const DEFAULTS = {
  runs: intEnv('BENCH_RECOVERY_RUNS', 3),
  backlog: intEnv('BENCH_RECOVERY_BACKLOG', 50_000),
  endpoints: 10,
  plotDir: process.env.BENCH_PLOT_DIR,
  // No tail: the whole drain within 1.2 × N ÷ the peak second's rate.
  tailFactor: 1.2,
};

/** Receipts per second from per-100 ms counts: the sliding one-second window at each 100 ms step. */
export function perSecondCurve(per100ms) {
  const out = [];
  for (let i = 0; i < per100ms.length; i++) {
    let n = 0;
    for (let j = Math.max(0, i - 9); j <= i; j++) n += per100ms[j];
    out.push({ t: (i + 1) / 10, rate: n });
  }
  return out;
}

/** Receipts in each whole second after the release. */
export function wholeSeconds(per100ms) {
  const out = [];
  for (let i = 0; i < per100ms.length; i += 10) out.push(per100ms.slice(i, i + 10).reduce((a, b) => a + b, 0));
  return out;
}

async function runAll(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const runs = [];
  const problems = [];
  let machine;
  for (let k = 1; k <= o.runs; k++) {
    log(`run ${k} of ${o.runs}: Cashwire`);
    const c = await fairnessScenario({ backlog: o.backlog, endpoints: o.endpoints, receiverMs: 0, b: 1, gapMs: 0, topology: 'split' });
    machine ??= c.machine;
    problems.push(...c.problems.map((p) => `run ${k}: ${p}`));
    log(`run ${k} of ${o.runs}: raw limit and BullMQ, same deliveries`);
    const base = await deliveryParts({ parts: [2, 3], events: o.backlog });
    const raw = base.find((r) => r.part === 2);
    const bull = base.find((r) => r.part === 3);
    const d = c.drain;
    if (!d?.drained) {
      problems.push(`run ${k}: the backlog did not drain`);
      runs.push({ k, d, raw, bull });
      continue;
    }
    const curve = perSecondCurve(d.per100ms);
    const peak = Math.max(...curve.map((p) => p.rate));
    const rate = Math.round(d.expected / d.drainSecs);
    const noTailLimit = (o.tailFactor * d.expected) / peak;
    runs.push({ k, d, raw, bull, curve, peak, rate, noTailLimit, tail: d.drainSecs > noTailLimit });
    log(`  Cashwire ${rate.toLocaleString('en-US')}/s (drain ${d.drainSecs.toFixed(2)} s, peak second ${peak.toLocaleString('en-US')}/s, no-tail limit ${noTailLimit.toFixed(2)} s: ${d.drainSecs <= noTailLimit ? 'no tail' : 'TAIL'}); raw ${raw.rps.toLocaleString('en-US')}/s; BullMQ ${bull.rps.toLocaleString('en-US')}/s`);
    log(`  per second after the release: ${wholeSeconds(d.per100ms).map((n) => n.toLocaleString('en-US')).join(', ')}`);
    log(`  per 100 ms, first 2 s: ${d.per100ms.slice(0, 20).join(', ')}`);
  }

  const rows = [];
  for (const r of runs) {
    if (!r.curve) continue;
    const cpu = r.d.cpuUsPerDelivery;
    const total = Object.values(cpu).reduce((a, b) => a + b, 0);
    rows.push({
      title: `run ${r.k}: recovery, ${r.d.expected.toLocaleString('en-US')} held deliveries to ${o.endpoints} endpoints released at once (Cashwire, API + 1 worker)`,
      rps: r.rate, p50: null, p99: null, non2xx: r.d.badSignatures, errors: r.d.expected - r.d.succeeded, total: r.d.succeeded,
      detail: `drain ${r.d.drainSecs.toFixed(2)} s (enables answered in ${r.d.releaseMs} ms, first receipt ${r.d.firstMs} ms); peak second ${r.peak.toLocaleString('en-US')}/s; ${r.tail ? 'TAIL' : 'no tail'} (limit ${r.noTailLimit.toFixed(2)} s); ${(r.rate / r.raw.rps).toFixed(2)}× raw, ${(r.rate / r.bull.rps).toFixed(2)}× BullMQ; CPU µs per delivery ${Object.entries(cpu).map(([n, v]) => `${n} ${v}`).join(', ')} (sum ${total}); ${r.d.duplicates} duplicates, ${r.d.reclaims} reclaims`,
      ratioRaw: r.rate / r.raw.rps, ratioBull: r.rate / r.bull.rps, tail: r.tail, cpuUs: cpu, curve: wholeSeconds(r.d.per100ms),
    });
    rows.push({ title: `run ${r.k}: raw limit, same 50,000 signed POSTs from memory (undici)`, rps: r.raw.rps, p50: null, p99: null, non2xx: r.raw.non2xx, errors: r.raw.errors, total: r.raw.total, detail: r.raw.detail });
    rows.push({ title: `run ${r.k}: BullMQ + undici sender, same deliveries`, rps: r.bull.rps, p50: null, p99: null, non2xx: r.bull.non2xx, errors: r.bull.errors, total: r.bull.total, detail: r.bull.detail });
  }
  const ok = runs.filter((r) => r.curve);
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const notes = [];
  if (ok.length) {
    notes.push(`recovery drain ≥ 0.5× the raw limit: ${ok.map((r) => (r.rate / r.raw.rps).toFixed(2)).join(', ')} (median ${med(ok.map((r) => r.rate / r.raw.rps)).toFixed(2)}×)`);
    notes.push(`recovery drain ≥ 1.0× BullMQ (1.5× stretch): ${ok.map((r) => (r.rate / r.bull.rps).toFixed(2)).join(', ')} (median ${med(ok.map((r) => r.rate / r.bull.rps)).toFixed(2)}×)`);
    notes.push(`no tail (drain ≤ ${o.tailFactor} × N ÷ peak second): ${ok.map((r) => `${r.d.drainSecs.toFixed(2)} s vs ${r.noTailLimit.toFixed(2)} s`).join('; ')}`);
  }
  if (o.plotDir && ok.length) {
    mkdirSync(o.plotDir, { recursive: true });
    const file = path.join(o.plotDir, 'recovery-drain.svg');
    writeFileSync(file, await drainSvg(ok.map((r) => ({ name: `run ${r.k}`, curve: r.curve, bull: r.bull.rps, raw: r.raw.rps })), `Recovery: ${ok[0].d.expected.toLocaleString('en-US')} held deliveries to ${o.endpoints} endpoints released at once`));
    notes.push(`plot: ${file}`);
  }
  return { machine, rows, notes, problems };
}

export async function run(options = {}) {
  const out = await runAll(options);
  if (out.problems.length) throw new Error(`recovery benchmark failed:\n  ${out.problems.join('\n  ')}`);
  return out.rows;
}

function log(line) {
  console.log(`[recovery] ${line}`);
}

/** The command-line run: the table, the notes, the result file. */
async function main() {
  const out = await runAll();
  console.log('\n| benchmark | deliveries/s | notes |\n|---|---:|---|');
  for (const r of out.rows) console.log(`| ${r.title} | ${r.rps?.toLocaleString('en-US') ?? '–'} | ${r.detail ?? ''} |`);
  if (out.notes.length) console.log(`\n${out.notes.map((n) => `- ${n}`).join('\n')}`);
  if (process.env.BENCH_RESULT_FILE) {
    writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ bench: 'recovery', machine: out.machine, rows: out.rows.map(({ curve, cpuUs, ...r }) => r) }, null, 2));
  }
  return out;
}

if (isEntry(SELF)) await runEntry(main);
