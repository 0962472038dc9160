/**
 * CLI commands: the sandbox test clock of a running Cashwire (POST /sandbox/clock/advance, GET /sandbox/clock), with
 * a sandbox key (--api-key / CASHWIRE_API_KEY). A line of text by default, the API's JSON with --json; an API error
 * (400 invalid_duration, 403 sandbox_only) is printed by cli.ts as `cashwire: <code>: <message>`, exit 1.
 *
 *   cashwire clock advance 2m      # due retries, settlements and expiries of the operator's sandbox fire as if 2 min passed
 *   cashwire clock show            # how far it has been advanced in all
 */
import type { Command } from 'commander';
import { print, remote, withRemote, type RemoteOptions } from './remote.js';

interface Out extends RemoteOptions { json?: boolean }

/** 5400 → "1h30m"; 120 → "2m"; 45 → "45s". */
export function humanSeconds(total: number): string {
  const parts: string[] = [];
  let rest = total;
  for (const [unit, n] of [['d', 86_400], ['h', 3_600], ['m', 60]] as const) {
    if (rest >= n) {
      parts.push(`${Math.floor(rest / n)}${unit}`);
      rest %= n;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}s`);
  return parts.join('');
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function register(program: Command): void {
  const clock = program
    .command('clock')
    .description("the sandbox test clock of a running Cashwire: move the operator's sandbox forward in time (sandbox keys only)");

  withRemote(
    clock
      .command('advance <duration>')
      .description(
        'advance the sandbox clock: whole seconds ("90") or "90s", "2m", "1h", "1d", "1h30m" (at most 365 days). The operator\'s due ' +
          'retries, settlements and expiries fire as if that time had passed (POST /sandbox/clock/advance); production and other operators are untouched',
      )
      .option('--json', 'print JSON'),
  ).action(async (duration: string, o: Out) => {
    const r = await remote(o).request('POST', '/sandbox/clock/advance', { duration });
    if (o.json) return print(r);
    const m = r.moved;
    process.stdout.write(
      `Advanced the sandbox clock by ${humanSeconds(r.advanced_by_seconds)} (${r.advanced_by_seconds} s); ` +
        `${humanSeconds(r.total_advanced_seconds)} (${r.total_advanced_seconds} s) in all.\n` +
        `Moved: ${plural(m.deliveries, 'delivery', 'deliveries')}, ${plural(m.settlements, 'settlement')}, ${plural(m.widget_sessions, 'widget session')}, ` +
        `${plural(m.tokens, 'token')}, ${plural(m.idempotency_keys, 'idempotency key')}, ${plural(m.circuits, 'circuit')}, ${plural(m.secret_rotations, 'secret rotation')}.\n`,
    );
  });

  withRemote(
    clock.command('show').description("how far this operator's sandbox clock has been advanced in all (GET /sandbox/clock)").option('--json', 'print JSON'),
  ).action(async (o: Out) => {
    const r = await remote(o).request('GET', '/sandbox/clock');
    if (o.json) return print(r);
    process.stdout.write(
      r.advances === 0
        ? 'The sandbox clock has not been advanced.\n'
        : `The sandbox clock is ${humanSeconds(r.total_advanced_seconds)} (${r.total_advanced_seconds} s) ahead in all: ` +
            `${plural(r.advances, 'advance')}, the last at ${r.last_advanced_at}.\n`,
    );
  });
}
