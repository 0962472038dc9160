/**
 * The CLI's remote commands on events and registered endpoints: `events list|get|resend`, `endpoints
 * list|create|rotate|disable|enable`. A table (one line per item) by default, the API's JSON with --json.
 */
import { EVENT_TYPES, SENDCASH_EVENT_TYPES } from '@cashwire/webhooks';
import { InvalidArgumentError, type Command } from 'commander';
import { print, remote, withRemote, type RemoteOptions } from './remote.js';
import { dash, table } from './table.js';
import { register as registerStats } from './stats.js';

interface Out extends RemoteOptions { json?: boolean }

const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed', 'expired', 'dead'];
const FORMATS = ['pushcash', 'standard', 'sendcash'];
const PAYLOAD_VERSIONS = ['2024-05', '2023-01'];

function oneOf(values: string[], what: string) {
  return (v: string) => {
    if (!values.includes(v)) throw new InvalidArgumentError(`${what} must be one of ${values.join(', ')}`);
    return v;
  };
}
function limit(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new InvalidArgumentError('must be an integer from 1 to 100');
  return n;
}
function graceSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a number of seconds (0 or more)');
  return n;
}
function eventList(v: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError('name at least one event type, or "*"');
  return list;
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

// ---------------------------------------------------------------------------------------------------------------
// events

function eventRows(events: any[]): string {
  if (events.length === 0) return 'No events.\n';
  return table(events.map((e) => [e.created_at, e.id, e.type, dash(e.intent_id)]), ['CREATED', 'ID', 'TYPE', 'INTENT']);
}

function eventDetail(e: any): string {
  const lines = [`${e.id}  ${e.type}`, `  created   ${e.created_at}`];
  if (e.intent_id) lines.push(`  intent    ${e.intent_id}`);
  lines.push(`  data      ${JSON.stringify(e.data)}`);
  const deliveries: any[] = e.deliveries ?? [];
  if (deliveries.length === 0) lines.push('  deliveries: none');
  for (const d of deliveries) {
    const dest = d.endpoint_id ? `${d.endpoint_id} ${d.url}` : d.url;
    const next = d.status === 'pending' ? (d.held ? ', held' : d.next_attempt_at ? `, next ${d.next_attempt_at}` : '') : '';
    lines.push(`  delivery ${d.id} → ${dest} (${d.format}): ${d.status}, ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}${next}${d.last_error ? `, last error ${d.last_error}` : ''}`);
    for (const a of d.attempt_log ?? []) {
      const answer = a.status_code !== null ? `HTTP ${a.status_code}` : dash(a.error_code);
      lines.push(`    #${a.attempt}  ${a.started_at}  ${answer}  ${a.latency_ms} ms  ${dash(a.outcome)}${a.response ? `  ${JSON.stringify(a.response.slice(0, 80))}` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function registerEvents(program: Command): void {
  const events = program.command('events').description('list, inspect and resend events (uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)');
  withRemote(
    events
      .command('list')
      .description('list events, newest first (GET /events; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)')
      .option('--type <type>', `an event type (${[...EVENT_TYPES, ...SENDCASH_EVENT_TYPES].slice(0, 3).join(', ')}, …)`)
      .option('--intent <id>', "an intent's events")
      .option('--status <status>', `events with a delivery in this status: ${DELIVERY_STATUSES.join(', ')}`, oneOf(DELIVERY_STATUSES, '--status'))
      .option('--limit <n>', 'at most n events (1–100, default 25)', limit)
      .option('--cursor <cursor>', 'the next page: the next_cursor of the previous one')
      .option('--json', 'print JSON'),
  ).action(async (o: Out & { type?: string; intent?: string; status?: string; limit?: number; cursor?: string }) => {
    const qs = new URLSearchParams();
    if (o.type) qs.set('type', o.type);
    if (o.intent) qs.set('intent_id', o.intent);
    if (o.status) qs.set('delivery_status', o.status);
    if (o.limit) qs.set('limit', String(o.limit));
    if (o.cursor) qs.set('cursor', o.cursor);
    const page = await remote(o).request<{ data: any[]; next_cursor: string | null }>('GET', `/events${qs.size ? `?${qs}` : ''}`);
    if (o.json) return print(page);
    process.stdout.write(eventRows(page.data));
    if (page.next_cursor) process.stdout.write(`More: --cursor ${page.next_cursor}\n`);
  });
  withRemote(
    events
      .command('get <id>')
      .description('one event with its deliveries and their attempts (GET /events/{id}; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)')
      .option('--json', 'print JSON'),
  ).action(async (id: string, o: Out) => {
    const e = await remote(o).request('GET', `/events/${enc(id)}`);
    if (o.json) return print(e);
    process.stdout.write(eventDetail(e));
  });
  withRemote(
    events
      .command('resend <id>')
      .description('deliver an event again to its destinations, same event id (POST /events/{id}/resend; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)')
      .option('--json', 'print JSON'),
  ).action(async (id: string, o: Out) => {
    const e = await remote(o).request('POST', `/events/${enc(id)}/resend`);
    if (o.json) return print(e);
    const r = e.resend ?? { created: 0, pulled: 0 };
    process.stdout.write(`Resent ${e.id}: ${r.created} new deliver${r.created === 1 ? 'y' : 'ies'}, ${r.pulled} pending made due now\n`);
    process.stdout.write(eventDetail(e));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// endpoints

function endpointRows(endpoints: any[]): string {
  if (endpoints.length === 0) return 'No endpoints.\n';
  return table(
    endpoints.map((e) => [e.id, e.status === 'disabled' && e.disabled_reason ? `disabled (${e.disabled_reason})` : e.status, e.format, e.payload_version, e.events.join(','), e.url]),
    ['ID', 'STATUS', 'FORMAT', 'VERSION', 'EVENTS', 'URL'],
  );
}

function registerEndpoints(program: Command): void {
  const endpoints = program.command('endpoints').description('manage registered webhook endpoints (uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)');
  withRemote(
    endpoints.command('list').description('list the endpoints (GET /webhook/endpoints; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)').option('--json', 'print JSON'),
  ).action(async (o: Out) => {
    const page = await remote(o).request<{ data: any[] }>('GET', '/webhook/endpoints');
    if (o.json) return print(page);
    process.stdout.write(endpointRows(page.data));
  });
  withRemote(
    endpoints
      .command('create <url>')
      .description('register an endpoint; prints its secret, shown once (POST /webhook/endpoints; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)')
      .option('--events <types>', 'comma-separated event types, or "*" for all (default "*")', eventList)
      .option('--format <format>', `${FORMATS.join(', ')} (default pushcash)`, oneOf(FORMATS, '--format'))
      .option('--payload-version <version>', `${PAYLOAD_VERSIONS.join(' or ')} (default: the operator's)`, oneOf(PAYLOAD_VERSIONS, '--payload-version'))
      .option('--description <text>', 'a label')
      .option('--json', 'print JSON'),
  ).action(async (url: string, o: Out & { events?: string[]; format?: string; payloadVersion?: string; description?: string }) => {
    const e = await remote(o).request('POST', '/webhook/endpoints', {
      url, events: o.events ?? ['*'],
      ...(o.format ? { format: o.format } : {}), ...(o.payloadVersion ? { payload_version: o.payloadVersion } : {}), ...(o.description ? { description: o.description } : {}),
    });
    if (o.json) return print(e);
    process.stdout.write(endpointRows([e]));
    process.stdout.write(`Secret (shown once, keep it): ${e.secret}\n`);
  });
  withRemote(
    endpoints
      .command('rotate <id>')
      .description("rotate an endpoint's secret; the old one stays valid for the grace period (POST /webhook/endpoints/{id}/rotate; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)")
      .option('--grace-period <seconds>', 'how long the old secret stays valid (default 86400)', graceSeconds)
      .option('--json', 'print JSON'),
  ).action(async (id: string, o: Out & { gracePeriod?: number }) => {
    const e = await remote(o).request('POST', `/webhook/endpoints/${enc(id)}/rotate`, o.gracePeriod !== undefined ? { grace_period_s: o.gracePeriod } : {});
    if (o.json) return print(e);
    process.stdout.write(`Rotated ${e.id}. New secret (shown once, keep it): ${e.secret}\n`);
  });
  for (const action of ['disable', 'enable'] as const) {
    withRemote(
      endpoints
        .command(`${action} <id>`)
        .description(action === 'disable'
          ? 'disable an endpoint: its deliveries are held, not lost (POST /webhook/endpoints/{id}/disable; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)'
          : 'enable an endpoint: held deliveries are sent (POST /webhook/endpoints/{id}/enable; uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY)')
        .option('--json', 'print JSON'),
    ).action(async (id: string, o: Out) => {
      const e = await remote(o).request('POST', `/webhook/endpoints/${enc(id)}/${action}`);
      if (o.json) return print(e);
      process.stdout.write(endpointRows([e]));
    });
  }
}

export function register(program: Command): void {
  registerEvents(program);
  registerEndpoints(program);
  registerStats(program);
}
