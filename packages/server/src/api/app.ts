import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { Deps } from '../payments/context.js';
import type { Socket } from 'node:net';
import { DomainError, errorBody, httpStatus, rawErrorResponse, type ErrorCode } from './errors.js';
import { paymentRoutes } from './routes/payments.js';
import { metaRoutes } from './routes/meta.js';
import { feedRoutes } from './routes/feed.js';
import { payPageRoutes } from './routes/pay.js';
import { endpointRoutes } from './routes/endpoints.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { statsRoutes } from './routes/stats.js';
import { sendcashRoutes } from './routes/sendcash.js';
import { nativeRoutes } from './routes/native.js';
import { limitRoutes } from './routes/limits.js';
import { disputeRoutes } from './routes/disputes.js';
import { moneyRoutes } from './routes/money.js';
import { clockRoutes } from './routes/clock.js';
import { cliRoutes } from './routes/cli.js';
import { dashboardRoutes } from './routes/dashboard/index.js';
import { graphqlRoutes } from './graphql.js';
import { instrumentFastify } from '../telemetry.js';

const AJV_CODES: Record<string, ErrorCode> = {
  required: 'missing_field',
  type: 'invalid_type',
  enum: 'invalid_value',
  const: 'invalid_value',
  anyOf: 'invalid_value',
  minLength: 'invalid_length',
  maxLength: 'invalid_length',
  minItems: 'invalid_length',
  maxItems: 'invalid_length',
  minimum: 'out_of_range',
  maximum: 'out_of_range',
  pattern: 'invalid_format',
  format: 'invalid_format',
};

/** Fastify's own errors that a request can cause, by their code. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'empty_body',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_content_length',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_BAD_URL: 'invalid_url_encoding',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long',
};

/** The deepest nesting of objects and arrays a JSON body may have. */
export const MAX_JSON_DEPTH = 32;

/** Maps whatever was thrown to a catalog error. Anything not understood is internal_error (500), and is logged. */
function toDomainError(err: FastifyError & { validation?: { keyword: string; instancePath: string; params: Record<string, unknown>; message?: string }[]; validationContext?: string }): DomainError {
  if (err instanceof DomainError) return err;
  if (err.validation && err.validation.length > 0) {
    const v = err.validation[0]!;
    const base = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const missing = v.params.missingProperty as string | undefined;
    const field = missing ? (base ? `${base}.${missing}` : missing) : base || undefined;
    const where = err.validationContext === 'body' ? '' : `${err.validationContext} `;
    const code = AJV_CODES[v.keyword] ?? 'validation_failed';
    let message = `${where}${field ?? 'body'} ${v.message ?? 'is invalid'}`;
    if (v.keyword === 'anyOf' || v.keyword === 'const') message = `${where}${field} has a value that is not allowed`;
    if (v.keyword === 'type' && !field) message = 'the request body must be a JSON object';
    return new DomainError(code, message, field);
  }
  const known = err.code ? FASTIFY_CODES[err.code] : undefined;
  if (known) return new DomainError(known);
  const pgCode = (err as { code?: string }).code;
  if (pgCode && PG_INPUT_ERRORS.has(pgCode)) return new DomainError('invalid_value', `a value in the request cannot be stored: ${err.message}`);
  if (err instanceof SyntaxError) return new DomainError('malformed_json', `the request body is not valid JSON: ${err.message}`);
  if (err.statusCode === 413) return new DomainError('body_too_large');
  if (err.statusCode === 415) return new DomainError('unsupported_media_type');
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return new DomainError('bad_request', err.message);
  return new DomainError('internal_error');
}

function hasNul(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\u0000');
  if (Array.isArray(v)) return v.some(hasNul);
  if (v && typeof v === 'object') return Object.entries(v).some(([k, x]) => k.includes('\u0000') || hasNul(x));
  return false;
}

/**
 * How deeply a JSON text nests objects and arrays, by one linear scan of the text (strings skipped), stopping as soon
 * as `limit` is passed: nothing recursive ever sees a body deeper than the limit.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \\ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 /* { */ || ch === 91 /* [ */) {
      if (++depth > limit) return true;
    } else if (ch === 125 /* } */ || ch === 93 /* ] */) depth--;
  }
  return false;
}

/** PostgreSQL errors that can only come from the input (a value it cannot store), never from a bug of ours. */
const PG_INPUT_ERRORS = new Set(['22021', '22P05', '22001', '22003', '22P02', '22007', '22008']);

/**
 * Answers a request whose body is too large once the client can read the answer: the rest of the body is read and
 * thrown away (up to a bound, then the connection is closed), so a client that streams its body without waiting
 * for `100 Continue` gets the 413 rather than a reset.
 */
function drainThenClose(req: FastifyRequest, reply: FastifyReply): void {
  const raw = req.raw;
  void reply.header('connection', 'close');
  if (raw.readableEnded || raw.destroyed) return;
  let drained = 0;
  const limit = 16 * 1024 * 1024;
  const timer = setTimeout(() => raw.destroy(), 10_000);
  timer.unref();
  raw.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > limit) raw.destroy();
  });
  raw.on('end', () => clearTimeout(timer));
  raw.on('close', () => clearTimeout(timer));
  raw.resume();
}

/** Errors Node's HTTP parser raises before Fastify sees a request (oversized headers, garbage), in the error shape. */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request';
  if (socket.writable) {
    // end(), not destroy(): the answer is flushed before the connection closes, so the client can read it.
    socket.end(rawErrorResponse(code));
    setTimeout(() => socket.destroy(), 5_000).unref();
  } else {
    socket.destroy();
  }
}

export interface RouteEntry {
  method: string;
  url: string;
  schema?: { params?: unknown; querystring?: unknown; body?: unknown; headers?: unknown; hide?: boolean };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route the server answers, as registered. */
    routeTable: RouteEntry[];
  }
}

export async function buildApp(deps: Deps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.bodyLimit,
    // Unknown body fields are dropped (real clients send fields Cashwire does not model): never stored, never echoed.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: 'all', allErrors: false } },
    // Ids are checked by each route's schema (up to 128 characters), never cut off by the router with its own answer.
    routerOptions: { maxParamLength: 65_536 },
    // Our own 503 in the error shape, below.
    return503OnClosing: false,
    // Node would answer a request without Host itself, with an empty 400; the hook below answers it in the error shape.
    http: { requireHostHeader: false },
    clientErrorHandler,
    frameworkErrors: (err, _req, reply) => {
      const e = toDomainError(err as FastifyError);
      void (reply as FastifyReply).status(httpStatus(e)).send(errorBody(e));
    },
  });

  // A SERVER span per request, before any other hook (nothing is added with tracing off).
  instrumentFastify(app);

  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (req, reply, done) => {
    if (!req.headers.host && req.raw.httpVersionMajor === 1 && req.raw.httpVersionMinor >= 1) {
      void reply.status(400).header('connection', 'close').send(errorBody(new DomainError('bad_request', 'HTTP/1.1 requests need a Host header')));
      return;
    }
    if (!closing) return done();
    void reply.status(503).header('connection', 'close').send(errorBody(new DomainError('shutting_down')));
  });

  // The route table (method, URL, schema), for the docs and the tests that cover every route.
  const routes: RouteEntry[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url, schema: r.schema as RouteEntry['schema'] });
  });
  app.decorate('routeTable', routes);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Cashwire API', version: '0.1.0', description: 'Push Cash-compatible payments API. The API key decides operator and environment.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  // JSON only. PostgreSQL text cannot hold U+0000, so a string carrying one is refused here, as bad input.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0) return done(new DomainError('empty_body'), undefined);
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      return done(new DomainError('too_deep', `the request body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return done(new DomainError('malformed_json', `the request body is not valid JSON: ${(err as Error).message}`), undefined);
    }
    if (text.includes('\\u0000') && hasNul(parsed)) return done(new DomainError('invalid_character'), undefined);
    done(null, parsed);
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const e = toDomainError(err);
    const status = httpStatus(e);
    if (status >= 500) req.log.error({ err, url: req.url }, 'unhandled error');
    if (e.code === 'body_too_large') drainThenClose(req, reply);
    void reply.status(status).send(errorBody(e));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(errorBody(new DomainError('route_not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));
  });

  await app.register(feedRoutes(deps)); // /events/feed, /events/stream: static segments, before meta's /events/:id
  await app.register(metaRoutes(deps));
  await app.register(paymentRoutes(deps));
  await app.register(payPageRoutes(deps));
  await app.register(endpointRoutes(deps));
  await app.register(deliveryRoutes(deps));
  await app.register(statsRoutes(deps));
  await app.register(nativeRoutes(deps));
  await app.register(limitRoutes(deps));
  await app.register(sendcashRoutes(deps));
  await app.register(disputeRoutes(deps));
  await app.register(moneyRoutes(deps));
  await app.register(clockRoutes(deps));
  await app.register(cliRoutes(deps));
  await app.register(dashboardRoutes(deps));
  await app.register(graphqlRoutes(deps, { pageSize: deps.config.graphqlPageSize, maxDepth: deps.config.graphqlMaxDepth }));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
