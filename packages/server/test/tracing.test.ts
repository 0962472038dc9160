/**
 * OpenTelemetry traces, end to end: an in-process OTLP/HTTP collector (a node:http server taking POST /v1/traces),
 * and `cashwire start` (the built CLI: the API process and its delivery worker's child process) pointed at it by the
 * environment. An API request (with an incoming traceparent) writes an event; the event keeps the request span's
 * traceparent; the worker's `webhook.attempt` span links to it. With tracing off nothing is exported and the event's
 * trace_context is null, and the SDK is not even loaded. The span helpers are also checked in this process, by
 * themselves (the link, the sampling that follows the link, the protobuf encoding).
 * Needs the build: `npx tsc -b packages/webhooks packages/server`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { trace } from '@opentelemetry/api';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestDatabase, freePort, userBody } from './helpers.js';
import { startReceiver } from './receiver.js';
import {
  currentTraceparent, flushTelemetry, initTelemetry, parseTraceparent, shutdownTelemetry, traceAttempt, tracingConfig, tracingEnabled,
} from '../src/telemetry.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist');
const CLI = path.join(DIST, 'cli.js');
const KEY = 'sk_sandbox_tracing_test_fixed_key';

// ---------------------------------------------------------------------------------------------------------------
// A collector

interface ExportedSpan {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP's enum: 2 SERVER, 3 CLIENT. */
  kind: number;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
  status: { code?: number; message?: string };
}

type AnyValue = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value: AnyValue };

const value = (v: AnyValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue;
const attrs = (list: KeyValue[] | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));
/** OTLP/JSON ids are hex; tolerate base64 too. */
const hex = (id: string | undefined) => (!id ? '' : /^[0-9a-f]+$/.test(id) ? id : Buffer.from(id, 'base64').toString('hex'));

async function startCollector() {
  const spans: ExportedSpan[] = [];
  const requests: { contentType: string; body: Buffer }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const contentType = String(req.headers['content-type'] ?? '');
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      requests.push({ contentType, body });
      if (contentType.startsWith('application/json')) {
        const doc = JSON.parse(body.toString('utf8')) as {
          resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { scope?: { name?: string }; spans?: any[] }[] }[];
        };
        for (const rs of doc.resourceSpans ?? []) {
          const service = String(attrs(rs.resource?.attributes)['service.name']);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                service,
                scope: ss.scope?.name ?? '',
                traceId: hex(s.traceId),
                spanId: hex(s.spanId),
                parentSpanId: hex(s.parentSpanId),
                name: s.name,
                kind: s.kind,
                attributes: attrs(s.attributes),
                links: (s.links ?? []).map((l: { traceId: string; spanId: string }) => ({ traceId: hex(l.traceId), spanId: hex(l.spanId) })),
                status: s.status ?? {},
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    spans,
    requests,
    clear() {
      spans.length = 0;
      requests.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------

let collector: Awaited<ReturnType<typeof startCollector>>;
let rx: Awaited<ReturnType<typeof startReceiver>>;
const children: ChildProcess[] = [];

beforeAll(async () => {
  collector = await startCollector();
  // The registered endpoint answers 500 (a failed attempt); the payment's own webhook_url answers 200.
  rx = await startReceiver((r) => (r.path.startsWith('/endpoint') ? { status: 500, body: 'no' } : { status: 200, body: 'ok' }));
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await rx?.close();
  await collector?.close();
});
afterEach(() => collector.clear());

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The environment of the test process without any OTEL_* or CASHWIRE_TRACING of its own. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_') && k !== 'CASHWIRE_TRACING'));
}

/**
 * `cashwire start` with `env` on a new database; a user, a registered endpoint (subscribed to intent.approved), and
 * two authorizations: one with its own webhook_url (sent with `traceparent`), one fanned out to the endpoint. Waits for
 * both webhooks, then stops Cashwire with SIGTERM (which flushes both processes' spans) and returns what was written.
 */
async function scenario(env: NodeJS.ProcessEnv, traceparent: string) {
  const db = await createTestDatabase();
  const port = await freePort();
  let stderr = '';
  const child = spawn(process.execPath, [CLI, 'start'], {
    env: {
      ...cleanEnv(), DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', CASHWIRE_SANDBOX_API_KEY: KEY, LOG_LEVEL: 'warn',
      CASHWIRE_RATE_LIMIT_CREATE: '1000000', CASHWIRE_RATE_LIMIT_READ: '1000000', CASHWIRE_POLL_MS: '100',
      CASHWIRE_SANDBOX_SETTLE_DELAY_MS: '3600000', ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const base = `http://127.0.0.1:${port}`;
  const api = client(base, KEY);
  const pool = new pg.Client({ connectionString: db.url });
  try {
    await until('the API and its sandbox key', async () => (await fetch(`${base}/webhook/endpoints`, { headers: { authorization: `Bearer ${KEY}` } }).catch(() => undefined))?.status === 200);
    const ep = await api.post('/webhook/endpoints', { url: `${rx.url}/endpoint`, events: ['intent.approved'] });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    const user = (await api.post('/user', userBody())).body.id;
    const token = async () => (await api.post('/token', { user_id: user, type: 'card_only' })).body.token as string;
    const own = await api.post('/authorize', {
      amount: 1234, currency: 'USD', direction: 'cash_in', token: await token(), webhook_url: `${rx.url}/own`, webhook_secret: 'whsec_tracing_test_0123456789abcdef',
    }, { traceparent });
    expect(own.status, JSON.stringify(own.body)).toBe(200);
    const fanned = await api.post('/authorize', { amount: 4321, currency: 'USD', direction: 'cash_in', token: await token() });
    expect(fanned.status, JSON.stringify(fanned.body)).toBe(200);
    await until('both webhooks', () => rx.received.some((r) => r.path === '/own') && rx.received.some((r) => r.path === '/endpoint'));
    child.kill('SIGTERM');
    await exited;
    await pool.connect();
    const events = await pool.query<{ id: string; intent_id: string; type: string; trace_context: string | null }>(
      'SELECT id, intent_id, type, trace_context FROM events WHERE intent_id = ANY ($1) ORDER BY created_at', [[own.body.id, fanned.body.id]]);
    const deliveries = await pool.query<{ id: string; event_id: string; endpoint_id: string | null }>('SELECT id, event_id, endpoint_id FROM deliveries');
    return { ownIntent: own.body.id as string, fannedIntent: fanned.body.id as string, endpointId: ep.body.id as string, events: events.rows, deliveries: deliveries.rows, stderr };
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- stderr of cashwire start ---\n${stderr.slice(-4000)}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await pool.end().catch(() => {});
    await db.drop();
    rx.received.length = 0;
  }
}

const INCOMING_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const INCOMING_SPAN = '00f067aa0ba902b7';
const INCOMING = `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01`;

describe('tracing on: cashwire start with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  it('a request is a server span; its event keeps the traceparent; each attempt is a webhook.attempt span linked to the request', async () => {
    const r = await scenario({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' }, INCOMING);
    const spans = collector.spans;
    const ctx = `${spans.length} spans exported: ${JSON.stringify(spans.map((s) => [s.service, s.name, s.traceId.slice(0, 8)]))}\n${r.stderr.slice(-2000)}`;

    // The API request: a SERVER span of cashwire-api, the child of the incoming traceparent.
    const server = spans.find((s) => s.name === 'POST /authorize' && s.traceId === INCOMING_TRACE);
    expect(server, ctx).toBeDefined();
    expect(server).toMatchObject({
      service: 'cashwire-api', kind: 2, parentSpanId: INCOMING_SPAN,
      attributes: { 'http.request.method': 'POST', 'url.path': '/authorize', 'http.route': '/authorize', 'http.response.status_code': 200 },
    });
    // Every request of the scenario is a span of its own trace (the others had no traceparent).
    const authorizes = spans.filter((s) => s.name === 'POST /authorize');
    expect(authorizes).toHaveLength(2);
    expect(spans.filter((s) => s.name === 'POST /user' && s.kind === 2)).toHaveLength(1);

    // The events: the request span's traceparent, as written in the request's transaction.
    const ownEvent = r.events.find((e) => e.intent_id === r.ownIntent)!;
    expect(ownEvent.type).toBe('intent.approved');
    expect(ownEvent.trace_context).toBe(`00-${INCOMING_TRACE}-${server!.spanId}-01`);
    const fannedServer = authorizes.find((s) => s !== server)!;
    const fannedEvent = r.events.find((e) => e.intent_id === r.fannedIntent)!;
    expect(fannedEvent.trace_context).toBe(`00-${fannedServer.traceId}-${fannedServer.spanId}-01`);

    // The attempts: CLIENT spans of cashwire-worker, each the root of its own trace, linked to the request's span.
    // (The link needs the claim to carry events.trace_context; until it does, `links` is empty here.)
    const attempts = spans.filter((s) => s.name === 'webhook.attempt');
    const ownDelivery = r.deliveries.find((d) => d.event_id === ownEvent.id)!;
    const ownAttempt = attempts.find((s) => s.attributes['cashwire.delivery.id'] === ownDelivery.id);
    expect(ownAttempt, ctx).toBeDefined();
    expect(ownAttempt).toMatchObject({
      service: 'cashwire-worker', kind: 3, parentSpanId: '',
      attributes: {
        'cashwire.event.id': ownEvent.id, 'cashwire.event.type': 'intent.approved', 'cashwire.delivery.attempt': 1, 'cashwire.environment': 'sandbox',
        'server.address': '127.0.0.1', 'server.port': Number(new URL(rx.url).port), 'http.request.method': 'POST',
        'http.response.status_code': 200, 'cashwire.attempt.outcome': 'succeeded',
      },
    });
    expect(ownAttempt!.attributes['cashwire.endpoint.id']).toBeUndefined();
    expect(ownAttempt!.traceId).not.toBe(INCOMING_TRACE);
    expect(ownAttempt!.links, 'the attempt links to the request span (needs Claimed.trace_context from claim())').toEqual([{ traceId: INCOMING_TRACE, spanId: server!.spanId }]);

    // The registered endpoint's delivery: its endpoint id, and a failed attempt (500).
    const fannedDelivery = r.deliveries.find((d) => d.event_id === fannedEvent.id)!;
    expect(fannedDelivery.endpoint_id).toBe(r.endpointId);
    const fannedAttempt = attempts.find((s) => s.attributes['cashwire.delivery.id'] === fannedDelivery.id && s.attributes['cashwire.delivery.attempt'] === 1);
    expect(fannedAttempt, ctx).toBeDefined();
    expect(fannedAttempt).toMatchObject({
      service: 'cashwire-worker', kind: 3,
      attributes: { 'cashwire.endpoint.id': r.endpointId, 'cashwire.event.id': fannedEvent.id, 'http.response.status_code': 500, 'error.type': '500', 'cashwire.attempt.outcome': 'failed' },
      status: { code: 2 },
    });
    expect(fannedAttempt!.links).toEqual([{ traceId: fannedServer.traceId, spanId: fannedServer.spanId }]);
  }, 90_000);
});

describe('tracing off', () => {
  it('CASHWIRE_TRACING=off (even with an endpoint set): nothing is exported, events.trace_context is null', async () => {
    const r = await scenario({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100', CASHWIRE_TRACING: 'off' }, INCOMING);
    expect(r.events.length).toBeGreaterThanOrEqual(2);
    for (const e of r.events) expect(e.trace_context).toBeNull();
    expect(collector.requests).toHaveLength(0);
  }, 90_000);

  it('without any setting, the SDK is not loaded at all (only the no-op API), and no traceparent is given', () => {
    const probe = (env: NodeJS.ProcessEnv) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { createRequire } from 'node:module';
      const t = await import(${JSON.stringify(path.join(DIST, 'telemetry.js'))});
      const on = await t.initTelemetry('api');
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('@opentelemetry/sdk-trace')).length;
      console.log(JSON.stringify({ on, loaded, traceparent: t.currentTraceparent() }));
      await t.shutdownTelemetry();`], { env, encoding: 'utf8' })) as { on: boolean; loaded: number; traceparent: string | null };
    expect(probe(cleanEnv())).toEqual({ on: false, loaded: 0, traceparent: null });
    // The contrast: asked for, it is loaded.
    const on = probe({ ...cleanEnv(), CASHWIRE_TRACING: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces` });
    expect(on.on).toBe(true);
    expect(on.loaded).toBeGreaterThan(0);
  });

  it('which settings turn it on', () => {
    expect(tracingConfig({}).enabled).toBe(false);
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).enabled).toBe(true);
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }).enabled).toBe(true);
    expect(tracingConfig({ CASHWIRE_TRACING: 'otlp' }).enabled).toBe(true);
    expect(tracingConfig({ CASHWIRE_TRACING: 'off', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).enabled).toBe(false);
    expect(tracingConfig({ OTEL_SDK_DISABLED: 'true', CASHWIRE_TRACING: 'otlp' }).enabled).toBe(false);
    expect(tracingConfig({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).enabled).toBe(false);
    expect(() => tracingConfig({ CASHWIRE_TRACING: 'jaeger' })).toThrow(/CASHWIRE_TRACING/);
    expect(tracingConfig({ CASHWIRE_TRACING: 'otlp' }).protocol).toBe('http/protobuf');
    expect(tracingConfig({ CASHWIRE_TRACING: 'otlp', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }).protocol).toBe('http/json');
  });
});

describe('the span helpers, in this process', () => {
  const saved = { ...process.env };
  afterEach(async () => {
    while (tracingEnabled()) await shutdownTelemetry();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  const subject = (traceContext: string | null | undefined) => ({
    id: 'dlv_1', operator_id: 'op_1', environment: 'sandbox', url: 'https://hooks.example.com:8443/in?token=secret', attempts: 3,
    endpoint_id: 'we_1', event: { id: 'evt_1', type: 'intent.approved' }, trace_context: traceContext,
  });

  it('traceAttempt links to the traceparent it is given, follows its sampled flag, and records faults', async () => {
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${collector.url}/v1/traces`;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    // A ratio sampler that keeps nothing by itself: only the linked, sampled request can keep an attempt.
    process.env.OTEL_TRACES_SAMPLER = 'traceidratio';
    process.env.OTEL_TRACES_SAMPLER_ARG = '0';
    expect(await initTelemetry('worker')).toBe(true);
    // A request's span, as the API has one while it writes events.
    const sampled = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
    const unsampled = `00-${'c'.repeat(32)}-${'d'.repeat(16)}-00`;
    expect(parseTraceparent(sampled)).toMatchObject({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 });
    expect(parseTraceparent('00-' + '0'.repeat(32) + '-' + 'b'.repeat(16) + '-01')).toBeUndefined();
    expect(parseTraceparent('garbage')).toBeUndefined();
    expect(currentTraceparent()).toBeNull();

    expect(await traceAttempt(subject(sampled), async (span) => {
      span.sent({ status: 204 });
      return 'done';
    })).toBe('done');
    await traceAttempt({ ...subject(sampled), id: 'dlv_2' }, async (span) => span.fault(new Error('cannot open the secret')));
    await traceAttempt({ ...subject(unsampled), id: 'dlv_3' }, async (span) => span.sent({ status: 200 }));
    await traceAttempt({ ...subject(null), id: 'dlv_4' }, async (span) => span.sent({ status: 200 }));
    await expect(traceAttempt({ ...subject(sampled), id: 'dlv_5' }, async () => {
      throw new Error('boom');
    })).rejects.toThrow('boom');
    await flushTelemetry();
    await until('the spans', () => collector.spans.length >= 3);

    const byDelivery = (id: string) => collector.spans.find((s) => s.attributes['cashwire.delivery.id'] === id);
    expect(byDelivery('dlv_1')).toMatchObject({
      service: 'cashwire-worker', name: 'webhook.attempt', kind: 3, parentSpanId: '', links: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) }],
      attributes: {
        'cashwire.delivery.attempt': 3, 'cashwire.event.id': 'evt_1', 'cashwire.event.type': 'intent.approved', 'cashwire.endpoint.id': 'we_1',
        'cashwire.operator.id': 'op_1', 'server.address': 'hooks.example.com', 'server.port': 8443, 'http.response.status_code': 204,
        'cashwire.attempt.outcome': 'succeeded',
      },
    });
    // Never the URL's path or query.
    expect(JSON.stringify(byDelivery('dlv_1'))).not.toContain('token=secret');
    expect(byDelivery('dlv_2')).toMatchObject({ attributes: { 'cashwire.attempt.outcome': 'fault', 'error.type': 'worker_fault' }, status: { code: 2 } });
    expect(byDelivery('dlv_5')).toMatchObject({ status: { code: 2 } });
    // Not sampled: linked to an unsampled request, or (ratio 0) to none.
    expect(byDelivery('dlv_3')).toBeUndefined();
    expect(byDelivery('dlv_4')).toBeUndefined();
  });

  it('currentTraceparent names the active span', async () => {
    process.env.CASHWIRE_TRACING = 'otlp';
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${collector.url}/v1/traces`;
    expect(await initTelemetry('api')).toBe(true);
    const tracer = trace.getTracer('test');
    const [tp, sc] = tracer.startActiveSpan('request', (span) => {
      const r = [currentTraceparent(), span.spanContext()] as const;
      span.end();
      return r;
    });
    expect(tp).toBe(`00-${sc.traceId}-${sc.spanId}-01`);
    expect(currentTraceparent()).toBeNull();
  });

  it('exports OTLP/HTTP protobuf by default (the OTLP default), with OTEL_SERVICE_NAME respected', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url;
    process.env.OTEL_SERVICE_NAME = 'cashwire-worker-eu';
    expect(await initTelemetry('worker')).toBe(true);
    await traceAttempt(subject(`00-${'e'.repeat(32)}-${'f'.repeat(16)}-01`), async (span) => span.sent({ status: 200 }));
    await shutdownTelemetry(); // flushes
    expect(collector.requests.length).toBeGreaterThan(0);
    const req = collector.requests[0]!;
    expect(req.contentType).toBe('application/x-protobuf');
    // Protobuf strings are their UTF-8 bytes, ids their raw bytes: the span, the service and the link are in there.
    for (const needle of [Buffer.from('webhook.attempt'), Buffer.from('cashwire-worker-eu'), Buffer.from('e'.repeat(32), 'hex'), Buffer.from('f'.repeat(16), 'hex')]) {
      expect(req.body.includes(needle), needle.toString('hex')).toBe(true);
    }
  });
});
