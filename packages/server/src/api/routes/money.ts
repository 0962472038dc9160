/**
 * Refunds (POST /refund, GET /refund/{id}, GET /refund/list), accounts (GET /account/list, GET /account/{id},
 * POST /account) and two sandbox helpers: POST /simulate/settlement and POST /sandbox/credential (403 sandbox_only with
 * a production key).
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import { createAccount, getAccount, listAccounts } from '../../payments/accounts/accounts.js';
import { createRefund, getRefund, listRefunds, REFUND_STATUSES } from '../../payments/refunds/refunds.js';
import { sandboxCredential, SANDBOX_CREDENTIAL_TYPES, simulateSettlement } from '../../payments/accounts/sandbox.js';
import { forgetOperatorKeys, keyAuth } from '../auth.js';
import { ErrorBody, errorsOf, IdParams, ListQuery, Nullable } from '../schemas.js';
import { Credential } from './native.js';

const Str = (max: number, extra: Record<string, unknown> = {}) => Type.String({ minLength: 1, maxLength: max, ...extra });
const Cursor = Type.Union([Type.String(), Type.Null()]);

// ---- Refunds ------------------------------------------------------------------------------------------------------

const RefundStatus = Type.Union(REFUND_STATUSES.map((s) => Type.Literal(s)));
const RefundStatusFilter = Type.Union([RefundStatus, Type.Array(RefundStatus, { minItems: 1, maxItems: 2 })], { description: 'repeat for several; none: all' });

export const Refund = Type.Object({
  id: Type.String({ description: 'refund_…' }),
  intent_id: Type.String(),
  amount: Type.Integer({ description: 'integer cents' }),
  currency: Type.String(),
  status: RefundStatus,
  created_at: Type.String(),
}, { $id: 'Refund' });

const CreateRefundBody = Type.Object({
  intent_id: Str(128, { description: 'an approved cash_in intent, settled or not' }),
  amount: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000_00, description: "integer cents, at most the intent's; none: all of it" })),
});
const RefundListQuery = Type.Object({ ...ListQuery.properties, 'status[]': Type.Optional(RefundStatusFilter), status: Type.Optional(RefundStatusFilter) });
const RefundList = Type.Object({ data: Type.Array(Refund), next_cursor: Cursor });

// ---- GET /intent/list's filters (listIntents reads them) -----------------------------------------------------------

const IntentStatus = Type.Union(['created', 'pending', 'approved', 'declined', 'canceled'].map((s) => Type.Literal(s)));
const IntentStatusFilter = Type.Union([IntentStatus, Type.Array(IntentStatus, { minItems: 1, maxItems: 5 })], { description: 'repeat for several; none: all' });
/** The querystring properties to add to GET /intent/list: `{...ListQuery.properties, ...IntentListFilters}`. */
export const IntentListFilters = {
  'status[]': Type.Optional(IntentStatusFilter),
  status: Type.Optional(IntentStatusFilter),
  type: Type.Optional(Str(64, { description: "the intent's type: push (hosted page), card_only, secure_debit" })),
};

// ---- Accounts -----------------------------------------------------------------------------------------------------

const AccountType = Type.Union([Type.Literal('settlement'), Type.Literal('dispute')]);
export const Account = Type.Object({
  id: Type.String({ description: 'account_…' }),
  type: AccountType,
  name: Type.String(),
  balance: Type.Integer({ description: 'integer cents: settled deposits in, settled withdrawals, refunds and lost disputes out' }),
  currency: Type.String(),
  created_at: Type.String(),
}, { $id: 'Account' });
const AccountList = Type.Object({ data: Type.Array(Account), next_cursor: Type.Null() });
const AccountListQuery = Type.Object({ type: Type.Optional(AccountType) });
const CreateAccountBody = Type.Object({ name: Str(100, { description: 'e.g. "Poker room"' }) });

// ---- Sandbox helpers ----------------------------------------------------------------------------------------------

const SimulateSettlementBody = Type.Object({ intent_id: Str(128, { description: 'an approved intent' }) });
export const Transaction = Type.Object({
  id: Type.String({ description: 'txn_…' }),
  amount: Type.Integer({ description: 'integer cents' }),
  currency: Type.String(),
  created_at: Type.String(),
  date: Type.String({ description: 'YYYY-MM-DD' }),
  status: Type.String(),
  account_id: Nullable(Type.String()),
  type: Type.String({ description: 'intent (a settlement), refund, dispute, transfer' }),
  source_id: Nullable(Type.String({ description: 'the refund or dispute of a refund or dispute transaction' })),
  intent_id: Nullable(Type.String()),
}, { $id: 'Transaction' });
const SandboxCredentialBody = Type.Object({
  user_id: Str(64),
  type: Type.Union(SANDBOX_CREDENTIAL_TYPES.map((t) => Type.Literal(t)), { description: 'apple_pay is apple_pay_debit' }),
  card_last4: Type.Optional(Type.String({ pattern: '^[0-9]{4}$', description: 'card and Apple Pay types only; default 4444. 9301: its refunds are declined' })),
});

export const moneyRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);
  type P = { Params: Static<typeof IdParams> };

  app.post<{ Body: Static<typeof CreateRefundBody> }>('/refund', {
    schema: {
      body: CreateRefundBody,
      response: { 200: Refund, 401: Type.Union([Refund, ErrorBody]), ...errorsOf(400, 404, 409) },
      summary: 'Refund an approved deposit (all of it unless amount says less). One per intent: a repeat, also a concurrent one, answers with the first. ' +
        'Approved: 200 with the refund; declined by the network: 401 with the refund as body (status "declined"); 409 intent_not_refundable; 400 refund_exceeds_intent',
    },
    onRequest: auth('create'),
  }, async (req, reply) => {
    const o = await createRefund(deps, req.caller, req.body);
    return reply.status(o.statusCode).send(o.body);
  });

  app.get<{ Querystring: Static<typeof RefundListQuery> }>('/refund/list', {
    schema: {
      querystring: RefundListQuery, response: { 200: RefundList, ...errorsOf(400, 401) },
      summary: 'List refunds, newest first: created_at.after, created_at.before, status[] (approved|declined, repeatable; also status=), cursor, limit',
    },
    onRequest: auth('read'),
  }, async (req) => listRefunds(deps, req.caller, { ...req.query, limit: req.query.limit ? Number(req.query.limit) : undefined }));

  app.get<P>('/refund/:id', {
    schema: { params: IdParams, response: { 200: Refund, ...errorsOf(400, 401, 404) }, summary: 'Get a refund' },
    onRequest: auth('read'),
  }, async (req) => getRefund(deps, req.caller, req.params.id));

  app.get<{ Querystring: Static<typeof AccountListQuery> }>('/account/list', {
    schema: {
      querystring: AccountListQuery, response: { 200: AccountList, ...errorsOf(400, 401) },
      summary: "The operator's accounts in the key's environment (settlement and dispute; type= for one kind), oldest first, with their balances in cents",
    },
    onRequest: auth('read'),
  }, async (req) => listAccounts(deps, req.caller, req.query.type));

  app.get<P>('/account/:id', {
    schema: { params: IdParams, response: { 200: Account, ...errorsOf(400, 401, 404) }, summary: 'Get an account and its balance' },
    onRequest: auth('read'),
  }, async (req) => getAccount(deps, req.caller, req.params.id));

  app.post<{ Body: Static<typeof CreateAccountBody> }>('/account', {
    schema: {
      body: CreateAccountBody, response: { 200: Account, ...errorsOf(400, 401) },
      summary: "Another settlement account in the key's environment (sandbox or production). With several, POST /intent and POST /authorize need account_id (400 account_required)",
    },
    onRequest: auth('create'),
  }, async (req) => {
    const account = await createAccount(deps, req.caller, req.body);
    forgetOperatorKeys(deps, req.caller.operatorId); // the next request of its keys reads that it now has several
    return account;
  });

  app.post<{ Body: Static<typeof SimulateSettlementBody> }>('/simulate/settlement', {
    schema: {
      body: SimulateSettlementBody, response: { 200: Transaction, ...errorsOf(400, 401, 403, 404, 409) },
      summary: "Sandbox: settle an approved intent now → its settlement transaction (settling twice changes nothing: the same transaction)",
    },
    onRequest: auth('create'),
  }, async (req) => simulateSettlement(deps, req.caller, req.body.intent_id));

  app.post<{ Body: Static<typeof SandboxCredentialBody> }>('/sandbox/credential', {
    schema: {
      body: SandboxCredentialBody, response: { 200: Credential, ...errorsOf(400, 401, 403, 404) },
      summary: 'Sandbox: a credential of this type for the user, without the widget (the same type and card_last4 again: the same credential). card_last4 9301 declines its refunds',
    },
    onRequest: auth('create'),
  }, async (req) => sandboxCredential(deps, req.caller, req.body));
};
