#!/usr/bin/env node
// `npm run bench`: runs every benchmark in bench/ (each *.js file but this one and files starting with `_`),
// one after another in its own process, then prints one markdown table of all their rows.
// `node bench/run.js intent` runs only the named benchmarks.
// A benchmark reports by writing JSON ({ bench, machine, rows }) to the file named by BENCH_RESULT_FILE.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A table cell: numbers with thousands separators, a dash for what a benchmark does not measure. */
const cell = (v) => (typeof v === 'number' ? v.toLocaleString('en-US') : v == null ? '–' : String(v));

const HERE = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const benches = readdirSync(HERE)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
  .filter((f) => only.length === 0 || only.includes(f) || only.includes(f.replace(/\.js$/, '')))
  .sort();

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cashwire-bench-'));
const results = [];
const failed = [];
try {
  for (const file of benches) {
    const out = path.join(tmp, `${file}.json`);
    console.log(`\n## ${file}\n`);
    const started = Date.now();
    const code = await new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(HERE, file)], { stdio: 'inherit', env: { ...process.env, BENCH_RESULT_FILE: out } });
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
    });
    console.log(`\n(${file}: ${((Date.now() - started) / 1000).toFixed(0)} s, exit ${code})`);
    if (code !== 0) failed.push(file);
    try {
      results.push(JSON.parse(readFileSync(out, 'utf8')));
    } catch {
      if (code === 0) failed.push(`${file} (wrote no results)`);
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

if (results.length) {
  const m = results[0].machine;
  console.log('\n# Cashwire benchmarks\n');
  console.log(`- CPU: ${m.cpu}, nproc ${m.nproc}, ${m.memoryGiB} GiB RAM, ${m.kernel}`);
  console.log(`- Node.js ${m.node}`);
  console.log(`- ${m.postgres}`);
  if (m.code) console.log(`- Cashwire ${m.code}`);
  if (m.busyBefore !== undefined) console.log(`- rest of the machine busy before the run: ${m.busyBefore}% of all cores`);
  console.log('');
  console.log('| bench | benchmark | req/s | p50 ms | p99 ms | non-2xx | errors | requests |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    for (const row of r.rows) {
      console.log(`| ${r.bench} | ${row.title} | ${cell(row.rps)} | ${cell(row.p50)} | ${cell(row.p99)} | ${cell(row.non2xx)} | ${cell(row.errors)} | ${cell(row.total)} |`);
    }
  }
}
const withCpu = results.flatMap((r) => r.rows.filter((row) => row.cpu).map((row) => ({ bench: r.bench, ...row })));
if (withCpu.length) {
  console.log('\nCPU time per request (all parties share the same cores):\n');
  console.log('| bench | benchmark | server µs/req | postgres µs/req | load generator µs/req | kernel irq µs/req | rest of machine busy | idle |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of withCpu) console.log(`| ${r.bench} | ${r.title} | ${r.cpu.serverUs} | ${r.cpu.pgUs} | ${r.cpu.loadgenUs} | ${r.cpu.irqUs} | ${r.cpu.othersPct}% | ${r.cpu.idlePct}% |`);
}
if (benches.length === 0) console.log('no benchmarks matched');
if (failed.length) {
  console.error(`\nFAILED: ${failed.join(', ')}`);
  process.exit(1);
}
