/**
 * `cashwire stats`: the dashboard charts' numbers in a terminal (GET /webhook/stats). A summary of the window (attempts
 * per outcome, the worst bucket's p99, the deepest queue sample), then one line per bucket that has an attempt or a
 * queue sample; the API's JSON with --json.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { isWindow, OUTCOMES, WINDOWS, type DeliveryStats, type WindowName } from '../delivery/stats.js';
import { print, remote, withRemote, type RemoteOptions } from './remote.js';
import { dash, table } from './table.js';

interface StatsOptions extends RemoteOptions { window: WindowName; endpoint?: string; json?: boolean }

const WINDOW_NAMES = Object.keys(WINDOWS) as WindowName[];

// Checked by commander while parsing, so a bad window is refused before any request is made.
function windowName(v: string): WindowName {
  if (!isWindow(v)) throw new InvalidArgumentError(`--window must be one of ${WINDOW_NAMES.join(', ')}`);
  return v;
}

/** `2026-01-15 11:01`: a 24 h window spans two dates, so the date is always shown. */
const utc = (iso: string) => iso.slice(0, 16).replace('T', ' ');
const span = (seconds: number) => (seconds % 3600 === 0 ? `${seconds / 3600} h` : seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`);

/** The index of the largest non-null value of a series (the first one on a tie), or -1 when there is none. */
function argMax(series: (number | null)[]): number {
  let best = -1;
  series.forEach((v, i) => {
    if (v !== null && (best < 0 || v > series[best]!)) best = i;
  });
  return best;
}

/** The terminal rendering of a stats answer: summary lines, then the table of the buckets that have something. */
export function renderStats(st: DeliveryStats): string {
  const n = st.buckets.length;
  const scope = st.endpoint === 'all' ? 'all deliveries' : `endpoint ${st.endpoint}`;
  const lines = [`Delivery stats, ${scope}, last ${st.window}: ${utc(st.from)} to ${utc(st.to)} UTC`];
  const sum = (o: (typeof OUTCOMES)[number]) => st.attempts[o].reduce((a, b) => a + b, 0);
  lines.push(`  attempts     ${st.totals.attempts} (${OUTCOMES.map((o) => `${o} ${sum(o)}`).join(', ')})`);
  const worst = argMax(st.latency.p99);
  lines.push(`  worst p99    ${worst < 0 ? '- (no attempts)' : `${st.latency.p99[worst]} ms at ${utc(st.buckets[worst]!)}`}`);
  const deepest = argMax(st.queue.pending);
  lines.push(`  max pending  ${deepest < 0 ? '- (the queue was not sampled)' : `${st.queue.pending[deepest]} at ${utc(st.buckets[deepest]!)} (due ${dash(st.queue.due[deepest])})`}`);

  const shown: number[] = [];
  for (let i = 0; i < n; i++) {
    if (OUTCOMES.some((o) => st.attempts[o][i]! > 0) || st.queue.pending[i] !== null) shown.push(i);
  }
  const buckets = `${n} buckets of ${span(st.bucket_seconds)}`;
  if (shown.length === 0) {
    lines.push('', `No attempts and no queue samples in the window's ${buckets}.`);
    return `${lines.join('\n')}\n`;
  }
  lines.push('', `${shown.length} of the window's ${buckets} had attempts or a queue sample; the others are left out.`, '');
  const rows = shown.map((i) => [
    utc(st.buckets[i]!), ...OUTCOMES.map((o) => String(st.attempts[o][i])),
    dash(st.latency.p50[i]), dash(st.latency.p99[i]), dash(st.queue.pending[i]), dash(st.queue.due[i]),
  ]);
  const header = ['TIME (UTC)', ...OUTCOMES.map((o) => o.toUpperCase()), 'P50 MS', 'P99 MS', 'PENDING', 'DUE'];
  return `${lines.join('\n')}\n${table(rows, header)}`;
}

export function register(program: Command): void {
  withRemote(
    program
      .command('stats')
      .description('delivery statistics of a window ending now: attempts by outcome, latency p50/p99, queue depth (GET /webhook/stats; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)')
      .option('--window <window>', `${WINDOW_NAMES.join(', ')} (1-, 5- or 15-minute buckets)`, windowName, '1h' as WindowName)
      .option('--endpoint <id>', "one endpoint's deliveries (default: all)")
      .option('--json', 'print JSON'),
  ).action(async (o: StatsOptions) => {
    const qs = new URLSearchParams({ window: o.window });
    if (o.endpoint !== undefined) qs.set('endpoint_id', o.endpoint);
    const st = await remote(o).request<DeliveryStats>('GET', `/webhook/stats?${qs}`);
    if (o.json) return print(st);
    process.stdout.write(renderStats(st));
  });
}
