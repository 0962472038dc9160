// temporary diagnostic (not part of the bench): samples pg_stat_activity of cw_bench_* databases
import pg from 'pg';
const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
await c.connect();
const end = Date.now() + Number(process.argv[2] ?? 60) * 1000;
const tally = new Map(); let samples = 0; let phaseMarks = [];
while (Date.now() < end) {
  const { rows } = await c.query(`SELECT coalesce(wait_event_type,'CPU') || ':' || coalesce(wait_event,'-') AS w, state, regexp_replace(left(query, 60), '\\s+', ' ', 'g') AS q
     FROM pg_stat_activity WHERE datname LIKE 'cw_bench_%' AND pid <> pg_backend_pid()`);
  if (rows.length) samples++;
  for (const r of rows) { const k = `${r.w} | ${r.state} | ${r.state === 'active' ? r.q : ''}`; tally.set(k, (tally.get(k) ?? 0) + 1); }
  await new Promise((r) => setTimeout(r, 20));
}
console.log('samples', samples);
for (const [k, n] of [...tally].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((n / samples).toFixed(2).padStart(6), k);
await c.end();
