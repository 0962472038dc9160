import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { Type, type Static } from 'typebox';
import { IntentListFilters } from './money.js';
import { authorize, createToken } from '../../payments/intents/authorize.js';
import type { Deps } from '../../payments/context.js';
import { approveIntent, cancelIntent, createIntent, getIntent, listIntents, simulateSettle } from '../../payments/intents/intents.js';
import { createUser, getUser, listUsers } from '../../payments/users/users.js';
import { checkResolvedDestination, parseHttpUrl } from '../../delivery/endpoints.js';
import { keyAuth } from '../auth.js';
import { AuthorizeBody, CreateIntentBody, CreateUserBody, IdempotencyHeaders, IdParams, ListQuery, StepUpResponse, TokenBody } from '../schemas.js';

type Body<T> = { Body: T; Headers: Static<typeof IdempotencyHeaders> };

function checkUrl(value: string | undefined, field: string): void {
  if (value !== undefined) parseHttpUrl(value, field);
}

function listQuery(q: Static<typeof ListQuery>) {
  return { ...q, limit: q.limit ? Number(q.limit) : undefined };
}

const IntentListQuery = Type.Object({ ...ListQuery.properties, ...IntentListFilters });

export const paymentRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);
  const sendOutcome = (reply: FastifyReply, o: { statusCode: number; body: unknown; replayed: boolean }) => {
    if (o.replayed) void reply.header('Idempotent-Replayed', 'true');
    return reply.status(o.statusCode).send(o.body);
  };

  app.post<Body<Static<typeof CreateUserBody>>>('/user', {
    schema: { body: CreateUserBody, headers: IdempotencyHeaders, summary: 'Register a KYC-verified user (idempotent by tag and X-Idempotency-Key)' },
    onRequest: auth('create'),
  }, async (req, reply) => sendOutcome(reply, await createUser(deps, req.caller, req.body, req.headers['x-idempotency-key'])));

  app.get<{ Querystring: Static<typeof ListQuery> }>('/user/list', { schema: { querystring: ListQuery, summary: 'List users, newest first' }, onRequest: auth('read') },
    async (req) => listUsers(deps, req.caller, listQuery(req.query)));

  app.get<{ Params: Static<typeof IdParams> }>('/user/:id', { schema: { params: IdParams, summary: 'Get a user' }, onRequest: auth('read') },
    async (req) => getUser(deps, req.caller, req.params.id));

  app.post<Body<Static<typeof CreateIntentBody>>>('/intent', {
    schema: { body: CreateIntentBody, headers: IdempotencyHeaders, summary: 'Create a payment intent (idempotent by X-Idempotency-Key)' },
    onRequest: auth('create'),
  }, async (req, reply) => {
    checkUrl(req.body.redirect_url, 'redirect_url');
    if (req.body.webhook_url !== undefined) await checkResolvedDestination(deps, req.body.webhook_url, 'webhook_url', req.caller.environment);
    return sendOutcome(reply, await createIntent(deps, req.caller, req.body, req.headers['x-idempotency-key']));
  });

  app.get<{ Querystring: Static<typeof IntentListQuery> }>('/intent/list', { schema: { querystring: IntentListQuery, summary: 'List intents, newest first; status[] and type filter them' }, onRequest: auth('read') },
    async (req) => listIntents(deps, req.caller, listQuery(req.query)));

  app.get<{ Params: Static<typeof IdParams> }>('/intent/:id', { schema: { params: IdParams, summary: 'Get an intent' }, onRequest: auth('read') },
    async (req) => getIntent(deps, req.caller, req.params.id));

  app.post<{ Params: Static<typeof IdParams> }>('/intent/:id/approve', { schema: { params: IdParams, summary: 'Approve an intent under manual review' }, onRequest: auth('read') },
    async (req) => approveIntent(deps, req.caller, req.params.id));

  app.post<{ Params: Static<typeof IdParams> }>('/intent/:id/cancel', { schema: { params: IdParams, summary: 'Cancel an intent not yet approved' }, onRequest: auth('read') },
    async (req) => cancelIntent(deps, req.caller, req.params.id));

  app.post<{ Body: Static<typeof TokenBody> }>('/token', { schema: { body: TokenBody, summary: 'Create a payment-method token for a user' }, onRequest: auth('create') },
    async (req) => createToken(deps, req.caller, req.body));

  for (const path of ['/authorize', '/authorization']) {
    app.post<{ Body: Static<typeof AuthorizeBody> }>(path, {
      schema: {
        body: AuthorizeBody, response: { 202: StepUpResponse },
        summary: 'Create and decide an intent at once: 200 approved, 202 {id, url} when authentication is required (step-up page), 401 declined (with the intent as body)',
        hide: path === '/authorization',
      },
      onRequest: auth('create'),
    }, async (req, reply) => {
      checkUrl(req.body.redirect_url, 'redirect_url');
      if (req.body.webhook_url !== undefined) await checkResolvedDestination(deps, req.body.webhook_url, 'webhook_url', req.caller.environment);
      const o = await authorize(deps, req.caller, req.body);
      return reply.status(o.statusCode).send(o.body);
    });
  }

  app.post<{ Params: Static<typeof IdParams> }>('/simulate/intent/:id/settle', { schema: { params: IdParams, summary: 'Sandbox: settle an approved intent now' }, onRequest: auth('read') },
    async (req) => simulateSettle(deps, req.caller, req.params.id));
};
