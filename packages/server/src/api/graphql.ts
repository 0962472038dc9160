/**
 * The Sendcash GraphQL API at POST /graphql (Mercurius): getTransactions for a merchant that cannot rely on
 * webhooks, and initiateTransferRequest. HTTP Basic auth: the public key as user, the secret key as password.
 * Queries are limited in depth and in cost (fields selected), errors come in GraphQL's own shape, introspection is on.
 */
import { constantTimeEqual } from '@cashwire/webhooks';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext } from 'graphql';
import mercurius, { type MercuriusOptions } from 'mercurius';
import type { Deps } from '../payments/context.js';
import { createTransfer, keysByPublicKey, listTransfers, type Tenant } from '../payments/sendcash.js';
import { toKobo } from '../domain/sendcash.js';

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

interface Ctx { tenant: Tenant & { secretKey: string }; signature: string | undefined }

function parseDate(value: unknown, name: string, endOfDay: boolean): Date | undefined {
  if (value === undefined || value === null) return undefined;
  const s = String(value);
  const d = /^\d{4}-\d{2}-\d{2}$/.test(s) ? new Date(`${s}T${endOfDay ? '23:59:59.999' : '00:00:00.000'}Z`) : new Date(s);
  // A day that does not exist (2026-02-30) is refused, not rolled over into the next month.
  const real = (iso: string) => { const c = new Date(`${iso.slice(0, 10)}T00:00:00Z`); return !Number.isNaN(c.getTime()) && c.toISOString().slice(0, 10) === iso.slice(0, 10); };
  if (!/^\d{4}-\d{2}-\d{2}/.test(s) || Number.isNaN(d.getTime()) || !real(s)) throw new GraphQLError(`${name} must be an ISO 8601 date`, { extensions: { code: 'BAD_USER_INPUT' } });
  return d;
}

@@ROUTES@@export const graphqlRoutes = (deps: Deps, opts: { pageSize: number; maxDepth?: number; maxFields?: number }): FastifyPluginAsync => async (app) => {
  // HTTP Basic before anything is parsed: a request without valid keys gets 401 in GraphQL's error shape.
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.url.startsWith('/graphql')) return;
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
    const [user, pass] = m ? Buffer.from(m[1]!, 'base64').toString('utf8').split(/:(.*)/s) : [];
    const keys = user ? await keysByPublicKey(deps, user) : undefined;
    const ok = keys && pass !== undefined && constantTimeEqual(pass, keys.secretKey);
    if (!ok) {
      return reply.status(401).header('WWW-Authenticate', 'Basic realm="Sendcash GraphQL"').send({
        data: null,
        errors: [{ message: 'authentication required: HTTP Basic with your public key as user and your secret key as password', extensions: { code: 'UNAUTHENTICATED' } }],
      });
    }
    (req as FastifyRequest & { sendcash?: Ctx['tenant'] }).sendcash = keys;
  });

  const options: MercuriusOptions = {
    schema,
    path: '/graphql',
    graphiql: false,
    validationRules: [depthLimit(opts.maxDepth ?? 6), costLimit(opts.maxFields ?? 200)],
    context: (req: FastifyRequest) => ({
      tenant: (req as FastifyRequest & { sendcash: Ctx['tenant'] }).sendcash,
      signature: req.headers['x-transfers-request-signature'] as string | undefined,
    }),
    errorFormatter: (execution, ctx) => {
      const formatted = mercurius.defaultErrorFormatter(execution, ctx);
      // Bad input is the client's, not a server failure: answer 400, never 500.
      const status = formatted.statusCode === 500 && execution.errors?.every((e) => e.extensions?.code) ? 400 : formatted.statusCode;
      return { statusCode: status, response: formatted.response };
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
          return listTransfers(deps, ctx.tenant, {
            from: parseDate(args.from, 'from', false), to: parseDate(args.to, 'to', true), status: args.status, page, pageSize: opts.pageSize,
          });
        },
      },
      Mutation: {
        initiateTransferRequest: async (_root: unknown, args: { input: { sourceUserId: string; beneficiary: { name: string; reference: string; destinationAccountNumber: string; destinationBankCode: string; amount: number } } }, ctx: Ctx) => {
          const b = args.input.beneficiary;
          if (!ctx.signature) throw new GraphQLError('X-Transfers-Request-Signature header is required', { extensions: { code: 'UNAUTHENTICATED' } });
          if (toKobo(b.amount) === undefined) throw new GraphQLError('beneficiary.amount must be positive with at most two decimals', { extensions: { code: 'BAD_USER_INPUT' } });
          try {
            const r = await createTransfer(deps, ctx.tenant, {
              userId: args.input.sourceUserId, paymentReference: b.reference, amount: b.amount, destinationAccountNumber: b.destinationAccountNumber,
              destinationBankCode: b.destinationBankCode, name: b.name, signature: ctx.signature,
            }, 'transfer_request');
            return r.authorizationUrl;
          } catch (err) {
            const e = err as { code?: string; message: string };
            throw new GraphQLError(e.message, { extensions: { code: e.code === 'invalid_signature' ? 'UNAUTHENTICATED' : (e.code ?? 'BAD_USER_INPUT').toUpperCase() } });
          }
        },
      },
    },
  } as MercuriusOptions;
  await app.register(mercurius, options);
};
