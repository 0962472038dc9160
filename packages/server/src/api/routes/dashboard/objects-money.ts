/**
 * Refunds and disputes: lists with their status filters, and detail pages with the intent each belongs to (and that
 * intent's user, tag, other refund or dispute) and its own events. Both file their events under the intent
 * (insertTenantEvent's intent_id): a refund's are that intent's refund.* events, a dispute's its dispute.* events
 * (one refund and one dispute per intent at most).
 */
import type { FastifyInstance } from 'fastify';
import { disputeNetwork } from '../../../domain/dispute-codes.js';
import type { DisputeState } from '../../../domain/state-machine.js';
import type { Caller, Deps } from '../../../payments/context.js';
import { getDispute, listDisputes } from '../../../payments/disputes/disputes.js';
import { eventsOf } from '../../../payments/events/events.js';
import { getIntent } from '../../../payments/intents/intents.js';
import { getRefund, listRefunds, REFUND_STATUSES } from '../../../payments/refunds/refunds.js';
import { DomainError } from '../../errors.js';
import { esc, HIDE, PAGE_SIZE, str, when, type Dash } from './kit.js';
import {
  badge, inEnv, detailPage, dollars, eventsCard, fields, link, listOr400, listPage, nextLink, objectId, orNotFound, statusFilter, statusOf, table, text,
} from './objects-kit.js';

export const DISPUTE_STATUSES: readonly DisputeState[] = ['created', 'won', 'lost'];

/** "10.4 (Visa)": the reason code and the network whose list it is on. */
function reasonCode(c: string): string {
  const net = disputeNetwork(c);
  const name = net === 'ach' ? 'ACH return' : net === 'visa' ? 'Visa' : net === 'mastercard' ? 'Mastercard' : undefined;
  return `<code data-testid="reason-code">${esc(c)}</code>${name ? ` <span class="muted">(${esc(name)})</span>` : ''}`;
}

/** The intent a refund or dispute belongs to, for its user and tag; null if it cannot be read (it always can). */
async function intentOf(deps: Deps, caller: Caller, id: string) {
  try {
    return await getIntent(deps, caller, id);
  } catch (e) {
    if (e instanceof DomainError) return null;
    throw e;
  }
}

/** The rows every money detail shows about its intent. */
function intentFields(i: Awaited<ReturnType<typeof intentOf>>, intentId: string): [string, string][] {
  return [
    ['Intent', `${link('intents', intentId, 'intent-link')}${i ? ` ${badge(i.status)} ${esc(dollars(i.amount))}` : ''}`],
    ['User', link('users', i?.user_id, 'user-link')],
    ['Tag', text(i?.tag)],
    ['Idempotency key', i?.idempotency_key ? `<code>${esc(i.idempotency_key)}</code>` : text(null)],
  ];
}

export function moneyRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession: session } = sessions;

  app.get('/dashboard/refunds', HIDE, async (req, reply) => {
    const s = await session(req, reply);
    if (!s) return reply;
    const q = req.query as Record<string, unknown>;
    const status = statusOf(q, REFUND_STATUSES);
    const cursor = str(q.cursor);
    const page = await listOr400(reply, s, cursor, () => listRefunds(deps, s.caller, { limit: PAGE_SIZE, cursor, status }));
    if (!page) return reply;
    const rows = page.data.map((r) => [
      `<span class="nw">${when(r.created_at)}</span>`, link('refunds', r.id, 'refund-link'),
      `<span class="nw" data-testid="amount">${esc(dollars(r.amount))}</span>`, badge(r.status), link('intents', r.intent_id),
    ]);
    return listPage(reply, s, {
      title: 'Refunds', intro: 'Refunds of deposits (POST /refund), newest first. Amounts in USD.',
      filter: statusFilter('/dashboard/refunds', REFUND_STATUSES, status),
      table: rows.length ? table(['Created', 'Refund', 'Amount', 'Status', 'Intent'], rows, 'refund-row') : null,
      empty: status ? 'No refund matches.' : `No refund in ${inEnv(s)} yet.`,
      next: page.next_cursor ? nextLink('/dashboard/refunds', { status, cursor: page.next_cursor }) : undefined,
    });
  });

  app.get('/dashboard/refunds/:id', HIDE, async (req, reply) => {
    const s = await session(req, reply);
    if (!s) return reply;
    const r = await orNotFound(reply, s, 'refund', objectId(req), (id) => getRefund(deps, s.caller, id));
    if (!r) return reply;
    const [i, events] = await Promise.all([intentOf(deps, s.caller, r.intent_id), eventsOf(deps, s.caller, { intentId: r.intent_id, typePrefix: 'refund.' })]);
    const card = fields([
      ['Refund', `<code data-testid="object-id">${esc(r.id)}</code>`],
      ['Status', badge(r.status, 'object-status')],
      ['Amount', `<span data-testid="object-amount">${esc(dollars(r.amount))}</span> ${esc(r.currency)}${i && i.amount !== r.amount ? ` <span class="muted">of ${esc(dollars(i.amount))}</span>` : ''}`],
      ['Created', when(r.created_at)],
      ...intentFields(i, r.intent_id),
      ['Dispute', i?.dispute ? `${link('disputes', i.dispute.id, 'dispute-link')} ${badge(i.dispute.status)}` : text(null)],
    ]);
    return detailPage(reply, s, {
      title: `Refund ${r.id}`, back: ['/dashboard/refunds', 'Refunds'], heading: `Refund of ${esc(dollars(r.amount))}`, card,
      after: eventsCard(events, 'No refund event.'),
    });
  });

  app.get('/dashboard/disputes', HIDE, async (req, reply) => {
    const s = await session(req, reply);
    if (!s) return reply;
    const q = req.query as Record<string, unknown>;
    const status = statusOf(q, DISPUTE_STATUSES);
    const cursor = str(q.cursor);
    const page = await listOr400(reply, s, cursor, () => listDisputes(deps, s.caller, { limit: PAGE_SIZE, cursor, status: status ? [status] : undefined }));
    if (!page) return reply;
    const rows = page.data.map((d) => [
      `<span class="nw">${when(d.created_at)}</span>`, link('disputes', d.id, 'dispute-link'),
      `<span class="nw" data-testid="amount">${esc(dollars(d.amount))}</span>`, reasonCode(d.code), badge(d.status), esc(d.type), link('intents', d.intent_id),
    ]);
    return listPage(reply, s, {
      title: 'Disputes', intro: 'Chargebacks and returns of deposits, newest first. Amounts in USD; created means open.',
      filter: statusFilter('/dashboard/disputes', DISPUTE_STATUSES, status),
      table: rows.length ? table(['Created', 'Dispute', 'Amount', 'Reason', 'Status', 'Type', 'Intent'], rows, 'dispute-row') : null,
      empty: status ? 'No dispute matches.' : `No dispute in ${inEnv(s)} yet.`,
      next: page.next_cursor ? nextLink('/dashboard/disputes', { status, cursor: page.next_cursor }) : undefined,
    });
  });

  app.get('/dashboard/disputes/:id', HIDE, async (req, reply) => {
    const s = await session(req, reply);
    if (!s) return reply;
    const d = await orNotFound(reply, s, 'dispute', objectId(req), (id) => getDispute(deps, s.caller, id));
    if (!d) return reply;
    const [i, events] = await Promise.all([intentOf(deps, s.caller, d.intent_id), eventsOf(deps, s.caller, { intentId: d.intent_id, typePrefix: 'dispute.' })]);
    const card = fields([
      ['Dispute', `<code data-testid="object-id">${esc(d.id)}</code>`],
      ['Status', `${badge(d.status, 'object-status')}${d.status === 'created' ? ' <span class="muted">open</span>' : ''}`],
      ['Amount', `<span data-testid="object-amount">${esc(dollars(d.amount))}</span> ${esc(d.currency)}`],
      ['Reason code', reasonCode(d.code)],
      ['Type', esc(d.type)],
      ['Created', when(d.created_at)],
      ...intentFields(i, d.intent_id),
      ['Refund', i?.refund ? `${link('refunds', i.refund.id, 'refund-link')} ${badge(i.refund.status)}` : text(null)],
    ]);
    return detailPage(reply, s, {
      title: `Dispute ${d.id}`, back: ['/dashboard/disputes', 'Disputes'], heading: `Dispute of ${esc(dollars(d.amount))}`, card,
      after: eventsCard(events, 'No dispute event.'),
    });
  });
}
