import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { Deps } from '../payments/context.js';
import { ApiError } from './errors.js';
import { paymentRoutes } from './routes/payments.js';
import { metaRoutes } from './routes/meta.js';
import { payPageRoutes } from './routes/pay.js';
import { endpointRoutes } from './routes/endpoints.js';
import { sendcashRoutes } from './routes/sendcash.js';
import { graphqlRoutes } from './graphql.js';

const AJV_CODES: Record<string, string> = {
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

/** Maps whatever was thrown to the one error shape. Anything not understood is a 500 and is logged. */
function toApiError(err: FastifyError & { validation?: { keyword: string; instancePath: string; params: Record<string, unknown>; message?: string }[]; validationContext?: string }): ApiError {
  if (err instanceof ApiError) return err;
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
    return new ApiError(400, code, message, field);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'body_too_large', 'the request body is larger than this server accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported_media_type', 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'empty_body', 'the request has Content-Type application/json but no body');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'invalid_content_length', 'Content-Length does not match the body');
  }
  const pgCode = (err as { code?: string }).code;
  if (pgCode && PG_INPUT_ERRORS.has(pgCode)) return new ApiError(400, 'invalid_value', `a value in the request cannot be stored: ${err.message}`);
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new ApiError(400, 'malformed_json', `the request body is not valid JSON: ${err.message}`);
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(err.statusCode, (err.code ?? 'bad_request').toLowerCase(), err.message);
  }
  return new ApiError(500, 'internal_error', 'an unexpected error occurred; it was logged');
}

function hasNul(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\u0000');
  if (Array.isArray(v)) return v.some(hasNul);
  if (v && typeof v === 'object') return Object.entries(v).some(([k, x]) => k.includes('\u0000') || hasNul(x));
  return false;
}

/** PostgreSQL errors that can only come from the input (a value it cannot store), never from a bug of ours. */
const PG_INPUT_ERRORS = new Set(['22021', '22P05', '22001', '22003', '22P02', '22007', '22008']);

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
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
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
    if (text.length === 0) return done(new ApiError(400, 'empty_body', 'the request has Content-Type application/json but no body'), undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return done(new ApiError(400, 'malformed_json', `the request body is not valid JSON: ${(err as Error).message}`), undefined);
    }
    if (text.includes('\\u0000') && hasNul(parsed)) {
      return done(new ApiError(400, 'invalid_character', 'strings may not contain the NUL character (\\u0000)'), undefined);
    }
    done(null, parsed);
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const apiErr = toApiError(err);
    if (apiErr.statusCode >= 500) req.log.error({ err, url: req.url }, 'unhandled error');
    void reply.status(apiErr.statusCode).send(apiErr.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(new ApiError(404, 'route_not_found', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON());
  });

  await app.register(metaRoutes(deps));
  await app.register(paymentRoutes(deps));
  await app.register(payPageRoutes(deps));
  await app.register(endpointRoutes(deps));
  await app.register(sendcashRoutes(deps));
  await app.register(graphqlRoutes(deps, { pageSize: deps.config.graphqlPageSize, maxDepth: deps.config.graphqlMaxDepth }));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
