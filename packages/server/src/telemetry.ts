/**
 * OpenTelemetry traces: off unless asked for (see {@link tracingConfig}), then exported over OTLP/HTTP.
 *
 * What is traced, and how the parts are tied together:
 * - every API request is a SERVER span (`POST /authorize`), the child of an incoming `traceparent` if there is one;
 * - the events a request writes keep that span's W3C `traceparent` in `events.trace_context` (store/events.ts);
 * - each delivery attempt of such an event is a CLIENT span `webhook.attempt`, the root of a trace of its own, with a
 *   span link to the request's span. A link rather than a parent: an attempt may come days after the request (retries,
 *   a resend, an endpoint enabled later), there may be many of them, and each is a unit of work of its own; as a child
 *   it would stretch the request's trace over days and keep it from ever being complete. This is what OpenTelemetry's
 *   messaging conventions do for a consumer of a queue.
 *
 * Sampling: OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG as the SDK reads them (default parentbased_always_on), and
 * an attempt linked to a request follows that request's decision, so a sampled request's attempts are all there.
 *
 * Off, nothing of the SDK is loaded (it is imported dynamically by {@link initTelemetry}), no hook is installed, and
 * each helper returns at its first line; @opentelemetry/api alone is loaded, as a no-op.
 */
import {
  context, diag, DiagLogLevel, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags,
  type Attributes, type Context, type Link, type Span, type SpanContext, type Tracer,
} from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME, ATTR_URL_PATH, ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { Sampler } from '@opentelemetry/sdk-trace-node';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { Logger } from 'pino';

export type TelemetryRole = 'api' | 'worker';

/** The span name of a delivery attempt. */
export const ATTEMPT_SPAN = 'webhook.attempt';

export interface TracingConfig {
  enabled: boolean;
  /** Why, in a few words (logged at start). */
  reason: string;
  /** `http/protobuf` (the OTLP default) or `http/json`. */
  protocol: 'http/protobuf' | 'http/json';
}

const truthy = (v: string | undefined) => v !== undefined && ['true', '1', 'yes'].includes(v.trim().toLowerCase());
const set = (v: string | undefined) => v !== undefined && v.trim() !== '';

/**
 * Whether to trace, from the environment:
 * - `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: off, whatever else is set;
 * - `CASHWIRE_TRACING=off` (or `none`, `false`, `0`): off, even with an OTLP endpoint set;
 * - `CASHWIRE_TRACING=otlp`: on (the endpoint defaults to http://localhost:4318/v1/traces);
 * - otherwise on exactly when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
 * Any other CASHWIRE_TRACING is refused (a typo should not silently turn tracing off).
 */
export function tracingConfig(env: NodeJS.ProcessEnv = process.env): TracingConfig {
  const raw = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf').trim().toLowerCase();
  const protocol = raw === 'http/json' ? 'http/json' : 'http/protobuf';
  const off = (reason: string): TracingConfig => ({ enabled: false, reason, protocol });
  if (truthy(env.OTEL_SDK_DISABLED)) return off('OTEL_SDK_DISABLED');
  if (env.OTEL_TRACES_EXPORTER?.split(',').some((e) => e.trim().toLowerCase() === 'none')) return off('OTEL_TRACES_EXPORTER=none');
  const mode = env.CASHWIRE_TRACING?.trim().toLowerCase() ?? '';
  if (['off', 'none', 'false', '0'].includes(mode)) return off(`CASHWIRE_TRACING=${mode}`);
  if (mode === 'otlp') return { enabled: true, reason: 'CASHWIRE_TRACING=otlp', protocol };
  if (mode !== '') throw new Error(`CASHWIRE_TRACING must be otlp or off, got ${JSON.stringify(env.CASHWIRE_TRACING)}`);
  if (set(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)) return { enabled: true, reason: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', protocol };
  if (set(env.OTEL_EXPORTER_OTLP_ENDPOINT)) return { enabled: true, reason: 'OTEL_EXPORTER_OTLP_ENDPOINT', protocol };
  return off('no OTLP endpoint set');
}

interface State {
  tracer: Tracer;
  provider: { forceFlush(): Promise<void>; shutdown(): Promise<void> };
  /** start() calls that share this process's provider (tests start several servers in one process). */
  users: number;
  log?: Logger;
}

let state: State | undefined;
let starting: Promise<State | undefined> | undefined;

/** Whether this process traces (after {@link initTelemetry}). */
export function tracingEnabled(): boolean {
  return state !== undefined;
}

/**
 * Starts tracing in this process if the environment asks for it ({@link tracingConfig}); a no-op otherwise. Service
 * name `cashwire-api` or `cashwire-worker` unless OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES)
 * says otherwise. One provider per process: further calls share it, and each must be paired with
 * {@link shutdownTelemetry}. Resolves to whether tracing is on.
 */
export async function initTelemetry(role: TelemetryRole, log?: Logger): Promise<boolean> {
  if (state) {
    state.users++;
    return true;
  }
  if (starting) {
    const s = await starting;
    if (s) s.users++;
    return s !== undefined;
  }
  const config = tracingConfig();
  if (!config.enabled) return false;
  starting = (async () => {
    try {
      state = await startSdk(role, config, log);
      log?.info({ tracing: config.reason, protocol: config.protocol }, 'OpenTelemetry tracing on');
      return state;
    } finally {
      starting = undefined;
    }
  })();
  return (await starting) !== undefined;
}

async function startSdk(role: TelemetryRole, config: TracingConfig, log: Logger | undefined): Promise<State> {
  const [sdk, resources, exporterModule] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
    config.protocol === 'http/json' ? import('@opentelemetry/exporter-trace-otlp-http') : import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  const asked = (process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || process.env.OTEL_EXPORTER_OTLP_PROTOCOL || '').trim().toLowerCase();
  if (asked && asked !== config.protocol) log?.warn({ protocol: asked }, `OTLP protocol ${asked} is not supported; exporting with ${config.protocol}`);
  if (log) {
    const at = (level: 'error' | 'warn' | 'info' | 'debug') => (message: string, ...args: unknown[]) => log[level]({ otel: args.length ? args.map(String) : undefined }, `opentelemetry: ${message}`);
    diag.setLogger({ error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), verbose: at('debug') }, DiagLogLevel.WARN);
  }
  // service.name: ours, unless the environment's (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) says otherwise.
  const resource = resources.defaultResource()
    .merge(resources.resourceFromAttributes({ [ATTR_SERVICE_NAME]: role === 'api' ? 'cashwire-api' : 'cashwire-worker' }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new sdk.NodeTracerProvider({
    resource,
    sampler: linkFollowingSampler(sdk, samplerFromEnv(sdk, log)),
    spanProcessors: [new sdk.BatchSpanProcessor(new exporterModule.OTLPTraceExporter())],
  });
  provider.register(); // the global tracer provider, AsyncLocalStorage context, W3C trace-context propagation
  return { tracer: trace.getTracer('cashwire', '0.1.0'), provider, users: 1, log };
}

/** The SDK's module, loaded only when tracing is on (a type import alone loads nothing). */
type Sdk = typeof import('@opentelemetry/sdk-trace-node');

/** OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read as the SDK reads them (same values, same defaults). */
function samplerFromEnv(sdk: Sdk, log: Logger | undefined): Sampler {
  const name = process.env.OTEL_TRACES_SAMPLER?.trim().toLowerCase() || 'parentbased_always_on';
  const ratio = () => {
    const raw = process.env.OTEL_TRACES_SAMPLER_ARG;
    const n = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
    if (Number.isFinite(n) && n >= 0 && n <= 1) return n;
    if (raw !== undefined) log?.warn({ OTEL_TRACES_SAMPLER_ARG: raw }, 'OTEL_TRACES_SAMPLER_ARG is not a number in [0, 1]; using 1');
    return 1;
  };
  switch (name) {
    case 'always_on': return new sdk.AlwaysOnSampler();
    case 'always_off': return new sdk.AlwaysOffSampler();
    case 'traceidratio': return new sdk.TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_off': return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio': return new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(ratio()) });
    case 'parentbased_always_on': return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    default:
      log?.warn({ OTEL_TRACES_SAMPLER: name }, 'OTEL_TRACES_SAMPLER not supported; using parentbased_always_on');
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
  }
}

/**
 * A delivery attempt linked to a request is sampled exactly when that request was (its traceparent's sampled flag):
 * otherwise a ratio sampler would keep the request but lose its attempts, or the reverse. Everything else, and an
 * attempt with no request behind it, is decided by `inner`.
 */
function linkFollowingSampler(sdk: Sdk, inner: Sampler): Sampler {
  return {
    shouldSample(ctx, traceId, name, kind, attributes, links) {
      const first = links[0];
      if (name === ATTEMPT_SPAN && first && !trace.getSpanContext(ctx)) {
        const sampled = (first.context.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
        return { decision: sampled ? sdk.SamplingDecision.RECORD_AND_SAMPLED : sdk.SamplingDecision.NOT_RECORD };
      }
      return inner.shouldSample(ctx, traceId, name, kind, attributes, links);
    },
    toString: () => `LinkFollowing{${inner.toString()}}`,
  };
}

const SHUTDOWN_MS = 5_000;

/** Flushes what is buffered (within the exporter's timeout), once the last user of this process's provider stops. Never rejects. */
export async function shutdownTelemetry(): Promise<void> {
  if (starting) await starting;
  const s = state;
  if (!s || --s.users > 0) return;
  state = undefined;
  try {
    // Ends the batch processor, which exports what it holds; a collector that does not answer delays a stop 5 s at most.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_MS)).unref());
    await Promise.race([s.provider.shutdown(), late]).finally(() => clearTimeout(timer));
  } catch (err) {
    s.log?.warn({ err: String((err as Error)?.message ?? err) }, 'could not flush the last spans');
  } finally {
    trace.disable();
    context.disable();
    propagation.disable();
    diag.disable();
  }
}

/** Exports what is buffered now (tests, and a worker about to be killed). */
export async function flushTelemetry(): Promise<void> {
  await state?.provider.forceFlush();
}

// ---------------------------------------------------------------------------------------------------------------
// W3C trace context

/** The active span's W3C `traceparent` (`00-<trace id>-<span id>-<flags>`); null when tracing is off or no span is active. */
export function currentTraceparent(): string | null {
  if (!state) return null;
  const sc = trace.getActiveSpan()?.spanContext();
  if (!sc || !isSpanContextValid(sc)) return null;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/** The span context a `traceparent` names, or undefined for anything that is not a valid one. */
export function parseTraceparent(value: string | null | undefined): SpanContext | undefined {
  const m = value ? TRACEPARENT.exec(value.trim()) : null;
  if (!m || m[1] === 'ff' || (m[1] === '00' && value!.trim().length !== 55)) return undefined;
  const sc: SpanContext = { traceId: m[2]!, spanId: m[3]!, traceFlags: parseInt(m[4]!, 16) & 0xff, isRemote: true };
  return isSpanContextValid(sc) ? sc : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// API requests

const kSpan = Symbol('cashwire.span');
const kContext = Symbol('cashwire.context');
type Traced = FastifyRequest & { [kSpan]?: Span; [kContext]?: Context };

/**
 * A SERVER span per request: `http.request.method`, `url.path` (never the query), `url.scheme`, `http.route`,
 * `http.response.status_code`; a 5xx sets the span's status to error. The child of the request's `traceparent`, if
 * it has a valid one. Each route's handler runs with the span active, so what it writes (events) knows it. Hooks are
 * added to the root instance, before the routes are registered; with tracing off nothing is added.
 */
export function instrumentFastify(app: FastifyInstance): void {
  if (!state) return;
  app.addHook('onRoute', (route) => {
    const handler = route.handler as (this: unknown, req: FastifyRequest, reply: FastifyReply) => unknown;
    // Hooks run in the context of the HTTP parser's callbacks, not ours (a body arrives in events of the request):
    // the handler is where the request's context is entered.
    route.handler = function traced(this: unknown, req: FastifyRequest, reply: FastifyReply) {
      const ctx = (req as Traced)[kContext];
      return ctx ? context.with(ctx, handler, this, req, reply) : handler.call(this, req, reply);
    } as RouteHandlerMethod;
  });
  app.addHook('onRequest', (req, _reply, done) => {
    const tracer = state?.tracer;
    if (!tracer) return done();
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const route = req.routeOptions.url;
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: req.method,
      [ATTR_URL_PATH]: req.url.split('?')[0],
      [ATTR_URL_SCHEME]: req.protocol,
    };
    if (route) attributes[ATTR_HTTP_ROUTE] = route;
    const span = tracer.startSpan(route ? `${req.method} ${route}` : req.method, { kind: SpanKind.SERVER, attributes }, parent);
    const t = req as Traced;
    t[kSpan] = span;
    t[kContext] = trace.setSpan(parent, span);
    done();
  });
  const end = (req: FastifyRequest, reply: FastifyReply | undefined) => {
    const t = req as Traced;
    const span = t[kSpan];
    if (!span) return;
    t[kSpan] = undefined;
    if (reply) {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, reply.statusCode);
      if (reply.statusCode >= 500) {
        span.setAttribute(ATTR_ERROR_TYPE, String(reply.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    } else {
      span.setAttribute(ATTR_ERROR_TYPE, 'aborted');
    }
    span.end();
  };
  app.addHook('onResponse', (req, reply, done) => {
    end(req, reply);
    done();
  });
  app.addHook('onRequestAbort', (req, done) => {
    end(req, undefined);
    done();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Delivery attempts

/** What an attempt span needs of a claimed delivery (queue.ts's `Claimed` has it all). */
export interface AttemptSubject {
  id: string;
  operator_id: string;
  environment: string;
  url: string;
  /** This claim's attempt number (1 for the first). */
  attempts: number;
  endpoint_id: string | null;
  event: { id: string; type: string };
  /** The `traceparent` of the request that wrote the event (events.trace_context), when it was traced. */
  trace_context?: string | null;
}

/** Reports how an attempt went, to its span. */
export interface AttemptSpan {
  /** The answer (status code) or the error code of the send. `aborted` (shutdown) is not a failure. */
  sent(out: { status?: number; errorCode?: string }): void;
  /** A fault of the worker's own (a secret it could not open, a signing error): no request was sent. */
  fault(err: unknown): void;
}

const NO_ATTEMPT_SPAN: AttemptSpan = { sent() {}, fault() {} };

/**
 * Runs one delivery attempt (prepare, send, record) in a CLIENT span `webhook.attempt`: the root of a trace of its
 * own, linked to the span of the request that wrote the event (`trace_context`). Attributes: `cashwire.delivery.id`,
 * `cashwire.event.id`, `cashwire.event.type`, `cashwire.delivery.attempt`, `cashwire.endpoint.id` (registered
 * endpoints), `cashwire.operator.id`, `cashwire.environment`, `server.address` and `server.port` (the URL's host
 * alone: a path or query may carry a receiver's token), `http.request.method`; once sent, `http.response.status_code`,
 * `error.type` (the error code, or the status of a non-2xx answer) and `cashwire.attempt.outcome`: `succeeded` (2xx),
 * `failed` (any other answer, or none), `aborted` (shutdown), `fault`. `fn` runs with no active span (not even this
 * one), so that nothing written later by batches that this attempt only happened to start (outcomes, operational
 * events) is attributed to it or to a request. With tracing off, `fn` is called with a no-op reporter.
 */
export function traceAttempt<T>(d: AttemptSubject, fn: (span: AttemptSpan) => Promise<T>): Promise<T> {
  const tracer = state?.tracer;
  return tracer ? inAttemptSpan(tracer, d, fn) : fn(NO_ATTEMPT_SPAN);
}

async function inAttemptSpan<T>(tracer: Tracer, d: AttemptSubject, fn: (span: AttemptSpan) => Promise<T>): Promise<T> {
  const attributes: Attributes = {
    'cashwire.delivery.id': d.id,
    'cashwire.delivery.attempt': d.attempts,
    'cashwire.event.id': d.event.id,
    'cashwire.event.type': d.event.type,
    'cashwire.operator.id': d.operator_id,
    'cashwire.environment': d.environment,
    [ATTR_HTTP_REQUEST_METHOD]: 'POST',
  };
  if (d.endpoint_id) attributes['cashwire.endpoint.id'] = d.endpoint_id;
  try {
    const u = new URL(d.url);
    attributes[ATTR_SERVER_ADDRESS] = u.hostname;
    attributes[ATTR_SERVER_PORT] = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  } catch {
    /* an unparsable URL fails at send, as invalid_url */
  }
  const linked = parseTraceparent(d.trace_context);
  const links: Link[] = linked ? [{ context: linked }] : [];
  const span = tracer.startSpan(ATTEMPT_SPAN, { kind: SpanKind.CLIENT, root: true, attributes, links }, ROOT_CONTEXT);
  const report: AttemptSpan = {
    sent(out) {
      if (out.status !== undefined) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, out.status);
      const ok = out.status !== undefined && out.status >= 200 && out.status < 300;
      const outcome = out.errorCode === 'aborted' ? 'aborted' : ok ? 'succeeded' : 'failed';
      span.setAttribute('cashwire.attempt.outcome', outcome);
      if (outcome === 'failed') {
        const type = out.errorCode ?? String(out.status);
        span.setAttribute(ATTR_ERROR_TYPE, type);
        span.setStatus({ code: SpanStatusCode.ERROR, message: type });
      }
    },
    fault(err) {
      span.setAttribute('cashwire.attempt.outcome', 'fault');
      span.setAttribute(ATTR_ERROR_TYPE, 'worker_fault');
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'worker_fault' });
    },
  };
  try {
    // In the root context, whatever context the claim loop happened to be resumed in: nothing an attempt starts (an
    // outcome batch, an operational event) is taken for a request's doing.
    return await context.with(ROOT_CONTEXT, fn, undefined, report);
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw err;
  } finally {
    span.end();
  }
}
