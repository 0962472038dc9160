/**
 * Disputes: GET /dispute/{id}, GET /dispute/list; the sandbox's POST /simulate/dispute and
 * POST /simulate/dispute/resolve (403 sandbox_only with a production key).
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import { getDispute, listDisputes, resolveDispute, simulateDispute } from '../../payments/disputes/disputes.js';
import { keyAuth } from '../auth.js';
import { errorsOf, IdParams, ListQuery, Nullable } from '../schemas.js';

const Str = (max: number, extra: Record<string, unknown> = {}) => Type.String({ minLength: 1, maxLength: max, ...extra });

const DisputeStatus = Type.Union([Type.Literal('created'), Type.Literal('won'), Type.Literal('lost')]);
const StatusFilter = Type.Union([DisputeStatus, Type.Array(DisputeStatus, { minItems: 1, maxItems: 3 })], { description: 'repeat for several; none: all' });

export const Dispute = Type.Object({
  id: Type.String({ description: 'dispute_…' }),
  amount: Type.Integer({ description: "the disputed amount in cents: the intent's" }),
  currency: Type.String(),
  created_at: Type.String(),
  intent_id: Type.String(),
  code: Type.String({ description: 'the network reason code: Visa 10.1–13.9, Mastercard 48xx/4999, ACH Rnn' }),
  status: DisputeStatus,
  type: Type.Union([Type.Literal('push'), Type.Literal('card_only')], { description: 'card_only: a card payment; push: a bank payment' }),
}, { $id: 'Dispute' });

const DisputeTransaction = Type.Object({
  id: Type.String({ description: 'txn_…' }),
  amount: Type.Integer({ description: 'cents, debited from the dispute account' }),
  currency: Type.String(),
  created_at: Type.String(),
  date: Type.String(),
  status: Type.String(),
  account_id: Nullable(Type.String()),
  type: Type.Literal('dispute'),
  source_id: Type.String({ description: 'the dispute' }),
  intent_id: Nullable(Type.String()),
});

const DisputeList = Type.Object({ data: Type.Array(Dispute), next_cursor: Type.Union([Type.String(), Type.Null()]) });
const DisputeListQuery = Type.Object({ ...ListQuery.properties, 'status[]': Type.Optional(StatusFilter), status: Type.Optional(StatusFilter) });

const SimulateDisputeBody = Type.Object({
  intent_id: Str(128, { description: 'an approved cash_in intent' }),
  code: Str(16, { description: 'a reason code of the reference, e.g. "10.4" (Visa), "4853" (Mastercard), "R10" (ACH)' }),
});
const ResolveDisputeBody = Type.Object({
  dispute_id: Str(128),
  result: Type.Union([Type.Literal('won'), Type.Literal('lost')]),
});

type StatusQuery = Static<typeof StatusFilter> | undefined;
const statuses = (...qs: StatusQuery[]) => qs.flatMap((q) => (q === undefined ? [] : Array.isArray(q) ? q : [q]));

export const disputeRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);

  app.get<{ Querystring: Static<typeof DisputeListQuery> }>('/dispute/list', {
    schema: {
      querystring: DisputeListQuery, response: { 200: DisputeList, ...errorsOf(400, 401) },
      summary: 'List disputes, newest first: created_at.after, created_at.before, status[] (created|won|lost, repeatable), cursor, limit',
    },
    onRequest: auth('read'),
  }, async (req) => {
    const q = req.query;
    return listDisputes(deps, req.caller, {
      cursor: q.cursor, limit: q.limit ? Number(q.limit) : undefined, 'created_at.after': q['created_at.after'], 'created_at.before': q['created_at.before'],
      status: statuses(q['status[]'], q.status),
    });
  });

  app.get<{ Params: Static<typeof IdParams> }>('/dispute/:id', {
    schema: { params: IdParams, response: { 200: Dispute, ...errorsOf(400, 401, 404) }, summary: 'Get a dispute' },
    onRequest: auth('read'),
  }, async (req) => getDispute(deps, req.caller, req.params.id));

  app.post<{ Body: Static<typeof SimulateDisputeBody> }>('/simulate/dispute', {
    schema: {
      body: SimulateDisputeBody, response: { 200: Dispute, ...errorsOf(400, 401, 403, 404, 409) },
      summary: 'Sandbox: the payer disputes an approved deposit (one dispute per intent: a second is 409 dispute_exists) → the dispute, status created',
    },
    onRequest: auth('create'),
  }, async (req) => simulateDispute(deps, req.caller, req.body));

  app.post<{ Body: Static<typeof ResolveDisputeBody> }>('/simulate/dispute/resolve', {
    schema: {
      body: ResolveDisputeBody, response: { 200: Type.Union([DisputeTransaction, Dispute]), ...errorsOf(400, 401, 403, 404, 409) },
      summary: "Sandbox: resolve an open dispute. lost → the transaction debiting the operator's dispute account; won → the dispute. 409 dispute_not_open once resolved",
    },
    onRequest: auth('create'),
  }, async (req) => (await resolveDispute(deps, req.caller, req.body)).body);
};
