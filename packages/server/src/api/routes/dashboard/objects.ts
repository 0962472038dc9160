/**
 * The object pages (issue 16): intents, users, refunds, disputes and Sendcash transfers, each a list (newest first,
 * PAGE_SIZE a page, a Next link, a status filter where the object has statuses) and a detail page with the object's
 * events, each linking to /dashboard/events/:id. Every read goes through the service the API calls, with the
 * session's caller, so a page shows the operator and environment of the key it was signed in with and nothing else.
 * objects-kit.ts has what the pages share; objects-payments.ts (intents, users), objects-money.ts (refunds, disputes) and
 * objects-transfers.ts (Sendcash) have the pages.
 *
 * Amounts: intents, refunds and disputes store USD cents (shown $12.34); transfers store kobo (shown ₦12.34).
 */
import type { FastifyInstance } from 'fastify';
import type { Dash } from './kit.js';
import { moneyRoutes } from './objects-money.js';
import { paymentObjectRoutes } from './objects-payments.js';
import { transferRoutes } from './objects-transfers.js';

export function objectRoutes(app: FastifyInstance, d: Dash): void {
  paymentObjectRoutes(app, d);
  moneyRoutes(app, d);
  transferRoutes(app, d);
}

