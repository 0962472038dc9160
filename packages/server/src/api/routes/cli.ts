/**
 * What `cashwire listen` calls, with an API key: GET /cli/secret (its signing secret for a format, kept per operator,
 * environment and format) and POST /cli/deliveries (the outcome of one forward, recorded as an attempt of a delivery
 * to the destination `cli`, never retried by the engine).
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import { cliSecret, recordForward } from '../../payments/cli/cli.js';
import { keyAuth } from '../auth.js';
import { errorsOf, Nullable } from '../schemas.js';

const Format = Type.Union([Type.Literal('pushcash'), Type.Literal('standard'), Type.Literal('sendcash')]);
const PayloadVersion = Type.Union([Type.Literal('2024-05'), Type.Literal('2023-01')]);

const SecretQuery = Type.Object({ format: Type.Optional(Format) });
const SecretResponse = Type.Object({
  format: Format,
  secret: Type.String({ description: 'standard: whsec_<base64>; pushcash: whsk_…; sendcash: 64 hex digits' }),
});

const ForwardBody = Type.Object({
  event_id: Type.String({ minLength: 1, maxLength: 128 }),
  url: Type.String({ minLength: 1, maxLength: 2048, description: 'the forward-to URL (http or https); shown in the attempt log, never called by the server' }),
  format: Type.Optional(Format),
  payload_version: Type.Optional(PayloadVersion),
  status_code: Type.Optional(Nullable(Type.Integer({ minimum: 100, maximum: 599, description: "the receiver's status (or the one --status/--fail-rate answered with)" }))),
  error: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 64, description: 'why there was no answer: timeout, connection_refused, connection_reset, dns_error, network_error' }))),
  latency_ms: Type.Integer({ minimum: 0, maximum: 86_400_000 }),
  forward_id: Type.Optional(Type.String({ minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: "the CLI's id of this forward: sending the same request again (after a lost answer) records nothing more" })),
});
const ForwardResponse = Type.Object({
  id: Type.String({ description: 'dlv_…' }),
  destination: Type.Literal('cli'),
  event_id: Type.String(),
  url: Type.String(),
  format: Format,
  payload_version: PayloadVersion,
  status: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')]),
  replayed: Type.Boolean({ description: 'true when this forward_id was recorded before: nothing new was written' }),
  status_code: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  latency_ms: Type.Integer(),
  created_at: Type.String(),
});

export const cliRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);

  app.get<{ Querystring: Static<typeof SecretQuery> }>('/cli/secret', {
    schema: {
      querystring: SecretQuery,
      summary: "The secret `cashwire listen` signs forwards with, for a format (default pushcash): made on first use, then the same for this operator and environment",
      response: { 200: SecretResponse, ...errorsOf(400, 401, 429) },
    },
    onRequest: auth('read'),
  }, async (req) => cliSecret(deps, req.caller, req.query.format ?? 'pushcash'));

  app.post<{ Body: Static<typeof ForwardBody> }>('/cli/deliveries', {
    schema: {
      body: ForwardBody,
      summary: 'Record one forward made by `cashwire listen`: a delivery to the destination cli, already ended, with its attempt (never retried)',
      response: { 201: ForwardResponse, ...errorsOf(400, 401, 404, 429) },
    },
    onRequest: auth('create'),
  }, async (req, reply) => reply.status(201).send(await recordForward(deps, req.caller, req.body)));
};
