/**
 * The Sendcash GraphQL API at POST /graphql (Mercurius): getTransactions for a merchant that cannot rely on
 * webhooks, and initiateTransferRequest. HTTP Basic auth: the public key as user, the secret key as password.
 * Every query goes through a budget (./graphql-budget.ts) before graphql-js validates it: tokens, nesting, depth,
 * fields and selections once fragments are expanded (memoised), aliases, operations, fragments, variables, directives;
 * resolvers have a wall-clock budget. Every refusal is a GraphQL error with extensions.code, HTTP 4xx (200 for errors
 * during execution), never 5xx. Batching is off. Introspection is on, and the standard introspection query passes.
 */
import { constantTimeEqual } from '@cashwire/webhooks';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError, Kind } from 'graphql';
import mercurius, { type MercuriusOptions } from 'mercurius';
import type { Deps } from '../payments/context.js';
import { createTransfer, keysByPublicKey, listTransfers, type Tenant } from '../payments/sendcash/sendcash.js';
import { ERROR_CATALOG } from '../domain/errors.js';
import { toKobo } from '../domain/sendcash.js';
import { checkQuery, resolveLimits, type GraphqlLimits } from './graphql-budget.js';

export { DEFAULT_GRAPHQL_LIMITS, type GraphqlLimits } from './graphql-budget.js';

export const schema = /* GraphQL */ `
  "An ISO 8601 date (2026-01-15) or date-time (2026-01-15T10:00:00Z)."
  scalar Date

  enum TransactionStatus { Pending Completed Failed }
  enum PayoutType { thirdParty defaultAccount }

  type Transaction {
    id: ID!
    reference: String!
    amount: Float!
    sourceBankAccount: String
    sourceBankAccountName: String
    destinationBankAccount: String!
    description: String
    createdAt: String!
    status: TransactionStatus!
  }

  type Paging { total: Int! page: Int! pages: Int! }
  type TransactionsPage { transactions: [Transaction!]! paging: Paging! }

  input BeneficiaryInput {
    name: String!
    payoutType: PayoutType!
    reference: String!
    destinationAccountNumber: String!
    destinationBankCode: String!
    amount: Float!
  }

  input TransferRequestInput {
    username: String!
    sourceAccountNumber: String!
    sourceUserId: String!
    slug: String!
    beneficiary: BeneficiaryInput!
  }

  type Query {
    "Transactions newest first; page starts at 1."
    getTransactions(from: Date, to: Date, status: TransactionStatus, page: Int = 1): TransactionsPage!
  }

  type Mutation {
    "Creates a transfer request and returns the URL where it is authorised. Needs X-Transfers-Request-Signature."
    initiateTransferRequest(input: TransferRequestInput!): String!
  }
`;

interface Ctx { tenant: Tenant & { secretKey: string }; signature: string | undefined; deadline: number; timeoutMs: number }

function parseDate(value: unknown, name: string, endOfDay: boolean): Date | undefined {
  if (value === undefined || value === null) return undefined;
  const s = String(value);
  const d = /^\d{4}-\d{2}-\d{2}$/.test(s) ? new Date(`${s}T${endOfDay ? '23:59:59.999' : '00:00:00.000'}Z`) : new Date(s);
  // A day that does not exist (2026-02-30) is refused, not rolled over into the next month.
  const real = (iso: string) => { const c = new Date(`${iso.slice(0, 10)}T00:00:00Z`); return !Number.isNaN(c.getTime()) && c.toISOString().slice(0, 10) === iso.slice(0, 10); };
  if (!/^\d{4}-\d{2}-\d{2}/.test(s) || Number.isNaN(d.getTime()) || !real(s)) throw new GraphQLError(`${name} must be an ISO 8601 date`, { extensions: { code: 'BAD_USER_INPUT' } });
  return d;
}

/** Figures that may be tuned per server: {@link GraphqlLimits}, defaults in {@link DEFAULT_GRAPHQL_LIMITS}. */
export interface GraphqlOptions {
  pageSize: number;
  /** Deepest data query (config graphqlMaxDepth); same as limits.maxDepth. */
  maxDepth?: number;
  /** Data fields per operation (the cost limit); same as limits.maxFields. */
  maxFields?: number;
  limits?: Partial<GraphqlLimits>;
}

const GRAPHQL_PATH = '/graphql';

/** A GraphQL error answer sent from a Fastify hook, before Mercurius sees the request. */
function refuse(reply: FastifyReply, status: number, message: string, code: string) {
  return reply.status(status).send({ data: null, errors: [{ message, extensions: { code } }] });
}

/** A refusal for a request over its wall-clock budget. */
function timeoutError(ms: number): GraphQLError {
  return new GraphQLError(
    `the request took longer than its budget of ${ms} ms and was abandoned; a mutation may still take effect: repeat it with the same reference to learn its outcome (identical repeats are answered with the original)`,
    { extensions: { code: 'QUERY_TIMEOUT' } },
  );
}

/** Runs a resolver's work within what is left of the request's wall-clock budget. */
async function withinBudget<T>(ctx: Ctx, work: () => Promise<T>): Promise<T> {
  const left = ctx.deadline - Date.now();
  if (left <= 0) throw timeoutError(ctx.timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(timeoutError(ctx.timeoutMs)), left);
  });
  try {
    return await Promise.race([work(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

const STATUS_CODES: Record<number, string> = { 405: 'METHOD_NOT_ALLOWED', 406: 'NOT_ACCEPTABLE', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE' };
const isClientStatus = (s: unknown): s is number => typeof s === 'number' && s >= 400 && s < 500;

interface Classified { code: string; status?: number; internal: boolean }
interface ErrorLike { message: string; path?: unknown; extensions?: Record<string, unknown>; originalError?: unknown; statusCode?: unknown }

/**
 * The code of an error that has none, from where it came: graphql-js's parser or validation, Fastify (body too large,
 * content type, the body's JSON schema), the application's JSON reading (malformed_json …), or else a failure of
 * ours. Duck-typed: Mercurius uses graphql's CommonJS build and this module its ES build, two GraphQLError classes.
 * `listStatus` is the status of the Mercurius error that carried this one in its list (validation: 400; GET
 * mutation: 405).
 */
function classify(err: ErrorLike, listStatus?: number): Classified {
  const orig = err.originalError as (ErrorLike & { name?: string; code?: unknown; validation?: unknown }) | undefined;
  // A DomainError (the application's JSON reading: malformed_json, empty_body, invalid_character, too_deep …) has
  // its status in the catalog; Fastify's and Mercurius's errors carry theirs.
  const catalogued = typeof orig?.code === 'string' && Object.hasOwn(ERROR_CATALOG, orig.code) ? ERROR_CATALOG[orig.code as keyof typeof ERROR_CATALOG].status : undefined;
  const status = [catalogued, orig?.statusCode, err.statusCode].find(isClientStatus);
  const code = err.extensions?.code;
  if (typeof code === 'string') return { code, status: status ?? listStatus, internal: false };
  if (err.message.startsWith('Syntax Error')) return { code: 'GRAPHQL_PARSE_FAILED', status: 400, internal: false };
  if (listStatus !== undefined) {
    const validation = Boolean((err as { validation?: unknown }).validation ?? orig?.validation); // the body's JSON schema
    return { code: STATUS_CODES[listStatus] ?? (validation ? 'BAD_REQUEST' : 'GRAPHQL_VALIDATION_FAILED'), status: listStatus, internal: false };
  }
  if (status !== undefined) {
    const own = catalogued !== undefined ? (orig!.code as string).toUpperCase() : undefined;
    return { code: own ?? STATUS_CODES[status] ?? 'BAD_REQUEST', status, internal: false };
  }
  // graphql-js's own: before execution (an unknown operation name …) the request's fault; during execution, ours.
  if (!orig) return { code: err.path ? 'INTERNAL_SERVER_ERROR' : 'GRAPHQL_VALIDATION_FAILED', internal: false };
  if (orig.name === 'GraphQLError') return { code: 'BAD_REQUEST', internal: false };
  return { code: 'INTERNAL_SERVER_ERROR', internal: true };
}

export const graphqlRoutes = (deps: Deps, opts: GraphqlOptions): FastifyPluginAsync => async (app) => {
  const limits = resolveLimits({ ...opts.limits, maxDepth: opts.limits?.maxDepth ?? opts.maxDepth, maxFields: opts.limits?.maxFields ?? opts.maxFields });

  // HTTP Basic before anything is parsed: a request without valid keys gets 401 in GraphQL's error shape. The hooks
  // of this (encapsulated) plugin see only its routes, GET and POST /graphql, however their URL was spelt.
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
    const [user, pass] = m ? Buffer.from(m[1]!, 'base64').toString('utf8').split(/:(.*)/s) : [];
    const keys = user ? await keysByPublicKey(deps, user) : undefined;
    const ok = keys && pass !== undefined && constantTimeEqual(pass, keys.secretKey);
    if (!ok) {
      reply.header('WWW-Authenticate', 'Basic realm="Sendcash GraphQL"');
      return refuse(reply, 401, 'authentication required: HTTP Basic with your public key as user and your secret key as password', 'UNAUTHENTICATED');
    }
    (req as FastifyRequest & { sendcash?: Ctx['tenant'] }).sendcash = keys;
  });

  // Batching (a JSON array of requests) is off: one request, one operation. Said here, before the body's JSON schema
  // would say "body must be object".
  app.addHook('preValidation', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!Array.isArray(req.body)) return;
    return refuse(reply, 400, 'batched queries are not supported: send one {"query", "variables"} object per request', 'BATCHING_NOT_SUPPORTED');
  });

  const options: MercuriusOptions = {
    schema,
    path: GRAPHQL_PATH,
    graphiql: false,
    allowBatchedQueries: false,
    // Mercurius parses again after the pre-pass; the same token budget there too.
    graphql: { parseOptions: { maxTokens: limits.maxTokens } },
    context: (req: FastifyRequest) => ({
      tenant: (req as FastifyRequest & { sendcash: Ctx['tenant'] }).sendcash,
      signature: req.headers['x-transfers-request-signature'] as string | undefined,
      deadline: Date.now() + limits.timeoutMs,
      timeoutMs: limits.timeoutMs,
    }),
    errorFormatter: (execution, ctx) => {
      const formatted = mercurius.defaultErrorFormatter(execution, ctx);
      // The same flattening as defaultErrorFormatter's (Mercurius's validation error carries graphql-js's errors).
      const classified: Classified[] = [];
      const originals: ErrorLike[] = [];
      for (const e of execution.errors ?? []) {
        const carrier = e.originalError as { errors?: unknown; statusCode?: unknown } | undefined;
        if (Array.isArray(carrier?.errors)) {
          const listStatus = isClientStatus(carrier.statusCode) ? carrier.statusCode : 400;
          for (const i of carrier.errors as ErrorLike[]) {
            classified.push(classify(i, listStatus));
            originals.push(i);
          }
        } else {
          classified.push(classify(e));
          originals.push(e);
        }
      }
      const log = (ctx as { reply?: FastifyReply }).reply?.log;
      const errors = (formatted.response.errors ?? []).map((json, i) => {
        const c = classified[i] ?? { code: 'INTERNAL_SERVER_ERROR', internal: true };
        if (c.internal) {
          log?.error({ err: originals[i]?.originalError ?? originals[i], path: json.path }, 'GraphQL request failed');
          return { ...json, message: 'an unexpected error occurred; it was logged', extensions: { ...json.extensions, code: c.code } };
        }
        return json.extensions?.code ? json : { ...json, extensions: { ...json.extensions, code: c.code } };
      });
      // A request refused before execution (no data at all: parse, validation, budget, body) is the client's: 4xx,
      // never 5xx. Errors during execution keep GraphQL's 200 with their data; a failure of ours keeps its status.
      let status = formatted.statusCode;
      if (!classified.some((c) => c.internal)) {
        if (!('data' in execution) || execution.data === undefined) status = classified.find((c) => c.status !== undefined)?.status ?? 400;
        else if (status >= 500) status = 400;
      }
      return { statusCode: status, response: { ...formatted.response, errors } };
    },
    resolvers: {
      Date: {
        // Passed through as text; resolvers parse it with a clear error.
        serialize: (v: unknown) => v,
        parseValue: (v: unknown) => v,
        parseLiteral: (ast: { kind: string; value?: string }) => (ast.kind === Kind.STRING ? ast.value : null),
      } as never,
      Query: {
        getTransactions: async (_root: unknown, args: { from?: string; to?: string; status?: string; page?: number }, ctx: Ctx) => {
          const page = args.page ?? 1;
          if (!Number.isInteger(page) || page < 1) throw new GraphQLError('page starts at 1', { extensions: { code: 'BAD_USER_INPUT' } });
          const from = parseDate(args.from, 'from', false);
          const to = parseDate(args.to, 'to', true);
          return withinBudget(ctx, () => listTransfers(deps, ctx.tenant, { from, to, status: args.status, page, pageSize: opts.pageSize }));
        },
      },
      Mutation: {
        initiateTransferRequest: async (_root: unknown, args: { input: { sourceUserId: string; beneficiary: { name: string; reference: string; destinationAccountNumber: string; destinationBankCode: string; amount: number } } }, ctx: Ctx) => {
          const b = args.input.beneficiary;
          const signature = ctx.signature;
          if (!signature) throw new GraphQLError('X-Transfers-Request-Signature header is required', { extensions: { code: 'UNAUTHENTICATED' } });
          if (toKobo(b.amount) === undefined) throw new GraphQLError('beneficiary.amount must be positive with at most two decimals', { extensions: { code: 'BAD_USER_INPUT' } });
          return withinBudget(ctx, async () => {
            try {
              const r = await createTransfer(deps, ctx.tenant, {
                userId: args.input.sourceUserId, paymentReference: b.reference, amount: b.amount, destinationAccountNumber: b.destinationAccountNumber,
                destinationBankCode: b.destinationBankCode, name: b.name, signature,
              }, 'transfer_request');
              return r.authorizationUrl;
            } catch (err) {
              const e = err as { code?: string; message: string };
              throw new GraphQLError(e.message, { extensions: { code: e.code === 'invalid_signature' ? 'UNAUTHENTICATED' : (e.code ?? 'BAD_USER_INPUT').toUpperCase() } });
            }
          });
        },
      },
    },
  } as MercuriusOptions;
  await app.register(mercurius, options);

  // The pre-pass: the budget, on the query text, before graphql-js's validation (and before Mercurius's own parse,
  // whose fallback would take a text that is not GraphQL for a JSON AST). It runs for cached queries too.
  app.graphql.addHook('preParsing', async (_schema, source) => {
    checkQuery(source, limits);
  });
};
