/**
 * Intents and users: /dashboard/intents (status filter; `user_id` keeps one user's) and /dashboard/intents/:id with
 * its refund, dispute, transactions and events (every event filed under the intent: its own, its refund's, its
 * dispute's, a limit request made from its page); /dashboard/users and /dashboard/users/:id with the user's intents
 * and the user's own events (user.limits_request*, whose data names the user).
 */
import type { FastifyInstance } from 'fastify';
import { eventsOf } from '../../../payments/events/events.js';
import { getIntent, listIntents } from '../../../payments/intents/intents.js';
import { getUser, listUsers } from '../../../payments/users/users.js';
import type { IntentState } from '../../../domain/state-machine.js';
import { esc, HIDE, PAGE_SIZE, str, when, type Dash } from './kit.js';
import {
  badge, inEnv, code, detailPage, isObjectId, dollars, eventsCard, fields, link, listOr400, listPage, nextLink, objectId, orNotFound, statusFilter, statusOf, table, text,
} from './objects-kit.js';

export const INTENT_STATUSES: readonly IntentState[] = ['created', 'pending', 'approved', 'declined', 'canceled'];

type Intent = Awaited<ReturnType<typeof getIntent>>;
type ListedIntent = Awaited<ReturnType<typeof listIntents>>['data'][number];

/** The rows of an intents table (the list, and a user's intents). */
function intentRows(data: (Intent | ListedIntent)[], withUser: boolean): string[][] {
  return data.map((i) => [
    `<span class="nw">${when(i.created_at)}</span>`,
    link('intents', i.id, 'intent-link'),
    esc(i.direction === 'cash_in' ? 'deposit' : 'withdrawal'),
    `<span class="nw" data-testid="amount">${esc(dollars(i.amount))}</span>`,
    badge(i.status),
    ...(withUser ? [link('users', i.user_id)] : []),
    text(i.tag),
  ]);
}
const intentCols = (withUser: boolean) => ['Created', 'Intent', 'Direction', 'Amount', 'Status', ...(withUser ? ['User'] : []), 'Tag'];

export function paymentObjectRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession } = sessions;

  app.get('/dashboard/intents', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const q = req.query as Record<string, unknown>;
    const status = statusOf(q, INTENT_STATUSES);
    const userIn = str(q.user_id);
    const userId = isObjectId(userIn) ? userIn : undefined;
    const cursor = str(q.cursor);
    const page = await listOr400(reply, s, cursor, () => listIntents(deps, s.caller, { limit: PAGE_SIZE, cursor, status, user_id: userId }));
    if (!page) return reply;
    return listPage(reply, s, {
      title: 'Intents',
      intro: userId ? `The intents of user ${link('users', userId)}. <a href="/dashboard/intents">All intents</a>` : 'Deposits and withdrawals, newest first. Amounts in USD.',
      filter: statusFilter('/dashboard/intents', INTENT_STATUSES, status, { user_id: userId }),
      table: page.data.length ? table(intentCols(true), intentRows(page.data, true), 'intent-row') : null,
      empty: status || userId ? 'No intent matches.' : `No intent in ${inEnv(s)} yet.`,
      next: page.next_cursor ? nextLink('/dashboard/intents', { status, user_id: userId, cursor: page.next_cursor }) : undefined,
    });
  });

  app.get('/dashboard/intents/:id', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const i = await orNotFound(reply, s, 'intent', objectId(req), (id) => getIntent(deps, s.caller, id));
    if (!i) return reply;
    const events = await eventsOf(deps, s.caller, { intentId: i.id });
    const credential = i.payment_credential
      ? esc([i.payment_credential.type, i.payment_credential.bank_name, i.payment_credential.card?.primary_account_number_mask.slice(-8) ?? i.payment_credential.account?.number_mask.slice(-8)].filter(Boolean).join(' · '))
      : i.credential ? esc(`${i.credential.display_name ?? ''} ${i.credential.last4 ?? ''}`.trim()) : text(null);
    const card = fields([
      ['Intent', `<code data-testid="object-id">${esc(i.id)}</code>`],
      ['Status', badge(i.status, 'object-status')],
      ['Direction', esc(i.direction === 'cash_in' ? 'deposit (cash_in)' : 'withdrawal (cash_out)')],
      ['Amount', `<span data-testid="object-amount">${esc(dollars(i.amount))}</span> ${esc(i.currency)}`],
      ...(i.guarantee_amount !== null ? [['Guaranteed', esc(dollars(i.guarantee_amount))] as [string, string]] : []),
      ['User', link('users', i.user_id, 'user-link')],
      ['Created', when(i.created_at)],
      ['Tag', text(i.tag)],
      ['Idempotency key', code(i.idempotency_key)],
      ...(i.decline_category ? [['Decline reason', `<span data-testid="decline-reason">${esc(i.decline_category)}</span>`] as [string, string]] : []),
      ['Approval', esc(i.approval_mode)],
      ['Rail · type', esc(`${i.rail} · ${i.type}`)],
      ['Payment method', credential],
      ['Account', code(i.account_id)],
      ['Refund', i.refund ? `${link('refunds', i.refund.id, 'refund-link')} ${badge(i.refund.status)} ${esc(dollars(i.refund.amount))}` : text(null)],
      ['Dispute', i.dispute ? `${link('disputes', i.dispute.id, 'dispute-link')} ${badge(i.dispute.status)} reason ${esc(i.dispute.code)}` : text(null)],
      ['Limit request', i.limits_requested ? 'the user asked for a higher limit' : text(null)],
    ]);
    const txns = i.transactions.length
      ? `<div class="card"><h2>Transactions</h2>${table(['Date', 'Type', 'Amount', 'Status', 'Account'], i.transactions.map((t) => [
        `<span class="nw">${when(t.created_at)}</span>`, esc(t.type), esc(dollars(t.amount)), badge(t.status), code(t.account_id)]), 'transaction-row')}</div>` : '';
    return detailPage(reply, s, {
      title: `Intent ${i.id}`, back: ['/dashboard/intents', 'Intents'],
      heading: `${esc(i.direction === 'cash_in' ? 'Deposit' : 'Withdrawal')} of ${esc(dollars(i.amount))}`,
      card,
      after: txns + eventsCard(events, 'No event yet: an intent has its first when it is decided.', `/dashboard/events?intent_id=${encodeURIComponent(i.id)}`),
    });
  });

  app.get('/dashboard/users', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const cursor = str((req.query as Record<string, unknown>).cursor);
    const page = await listOr400(reply, s, cursor, () => listUsers(deps, s.caller, { limit: PAGE_SIZE, cursor }));
    if (!page) return reply;
    const rows = page.data.map((u) => [
      `<span class="nw">${when(u.created_at)}</span>`,
      link('users', u.id, 'user-link'),
      esc(`${u.name.first} ${u.name.last}`),
      text(u.email),
      text(u.tag),
      badge(u.status),
    ]);
    return listPage(reply, s, {
      title: 'Users',
      intro: 'The users registered with POST /user, newest first. (Users have one status, enabled: there is no filter.)',
      table: rows.length ? table(['Created', 'User', 'Name', 'Email', 'Tag', 'Status'], rows, 'user-row') : null,
      empty: `No user in ${inEnv(s)} yet.`,
      next: page.next_cursor ? nextLink('/dashboard/users', { cursor: page.next_cursor }) : undefined,
    });
  });

  app.get('/dashboard/users/:id', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const u = await orNotFound(reply, s, 'user', objectId(req), (id) => getUser(deps, s.caller, id));
    if (!u) return reply;
    const [intents, events] = await Promise.all([
      listIntents(deps, s.caller, { limit: PAGE_SIZE, user_id: u.id }),
      eventsOf(deps, s.caller, { userId: u.id, since: new Date(u.created_at) }),
    ]);
    const a = u.address;
    const card = fields([
      ['User', `<code data-testid="object-id">${esc(u.id)}</code>`],
      ['Status', badge(u.status, 'object-status')],
      ['Name', esc(`${u.name.first} ${u.name.last}`)],
      ['Email', text(u.email)],
      ['Phone', text(u.phone_number)],
      ['Address', esc([a.address_line_1, a.address_line_2, `${a.locality}, ${a.administrative_area} ${a.postal_code}`, a.country].filter(Boolean).join(', '))],
      ['Tag', text(u.tag)],
      ['Identity verified', esc(u.identity_verified ? 'yes' : 'no')],
      ['Daily limit', `${esc(dollars(u.limits.daily_limit))} ${esc(u.limits.currency)}`],
      ['Payment methods', u.payment_credentials.length
        ? u.payment_credentials.map((c) => `<code>${esc(c.id)}</code> ${esc([c.type, c.bank_name, c.card?.primary_account_number_mask.slice(-8) ?? c.account?.number_mask.slice(-8)].filter(Boolean).join(' · '))}`).join('<br>')
        : text(null)],
      ['Created', when(u.created_at)],
    ]);
    const more = intents.next_cursor ? `<p class="pager"><a href="/dashboard/intents?user_id=${encodeURIComponent(u.id)}" id="all-intents">All of this user's intents →</a></p>` : '';
    const intentsCard = `<div class="card" data-testid="user-intents"><h2>Intents</h2>${intents.data.length
      ? table(intentCols(false), intentRows(intents.data, false), 'intent-row') : '<p class="muted">No intent yet.</p>'}${more}</div>`;
    return detailPage(reply, s, {
      title: `User ${u.id}`, back: ['/dashboard/users', 'Users'],
      heading: esc(`${u.name.first} ${u.name.last}`),
      card,
      after: intentsCard + eventsCard(events, "No user event: these are the user's limit requests and their decisions; each intent's events are on its page."),
    });
  });
}
