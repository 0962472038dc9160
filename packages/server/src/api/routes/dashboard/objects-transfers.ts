/**
 * Sendcash transfers (charges by bank transfer, and GraphQL transfer requests). They belong to an operator and an
 * environment like everything else (transfers.operator_id, environment: the Sendcash key pair of POST
 * /sendcash/onboarding is made per operator and environment), so a session sees the transfers of its own key's
 * environment, made with that environment's Sendcash public key. The list pages as getTransactions does (page numbers,
 * listTransfers); amounts are naira (stored in kobo). A transfer's events are its Payment.Status events, which name it
 * by its reference (insertTenantEvent files them under no intent).
 */
import type { FastifyInstance } from 'fastify';
import { bankName } from '../../../domain/banks.js';
import { eventsOf } from '../../../payments/events/events.js';
import { getTransfer, listTransfers, type TransferRow } from '../../../payments/sendcash/sendcash.js';
import { esc, HIDE, PAGE_SIZE, str, when, type Dash } from './kit.js';
import { badge, inEnv, code, detailPage, eventsCard, fields, link, listPage, naira, nextLink, objectId, orNotFound, statusFilter, statusOf, table, text } from './objects-kit.js';

export const TRANSFER_STATUSES: readonly TransferRow['status'][] = ['Pending', 'Completed', 'Failed'];

/** How far from a transfer's completed_at its Payment.Status event is looked for (the two are one transaction's). */
const WINDOW_MS = 5 * 60_000;

/** The ?page= of the list: 1 to 100000; anything else is the first page. */
function pageOf(v: string | undefined): number {
  return v && /^[1-9][0-9]{0,5}$/.test(v) && Number(v) <= 100_000 ? Number(v) : 1;
}

export function transferRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession } = sessions;
  const tenantOf = (c: { operatorId: string; environment: 'sandbox' | 'production' }) => ({ operator_id: c.operatorId, environment: c.environment });

  app.get('/dashboard/transfers', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const q = req.query as Record<string, unknown>;
    const status = statusOf(q, TRANSFER_STATUSES);
    const page = pageOf(str(q.page));
    const r = await listTransfers(deps, tenantOf(s.caller), { status, page, pageSize: PAGE_SIZE });
    const rows = r.transactions.map((t) => [
      `<span class="nw">${when(t.createdAt)}</span>`, link('transfers', t.id, 'transfer-link'), `<code>${esc(t.reference)}</code>`,
      `<span class="nw" data-testid="amount">${esc(naira(t.amount))}</span>`, badge(t.status), text(t.sourceBankAccountName),
    ]);
    return listPage(reply, s, {
      title: 'Transfers',
      intro: `Sendcash charges and transfer requests made with this environment's Sendcash public key, newest first. Amounts in naira.${r.paging.total ? ` ${esc(String(r.paging.total))} in all.` : ''}`,
      filter: statusFilter('/dashboard/transfers', TRANSFER_STATUSES, status),
      table: rows.length ? table(['Created', 'Transfer', 'Reference', 'Amount', 'Status', 'Paid from'], rows, 'transfer-row') : null,
      empty: status || page > 1 ? 'No transfer matches.' : `No Sendcash transfer in ${inEnv(s)} yet.`,
      next: page < r.paging.pages ? nextLink('/dashboard/transfers', { status, page: String(page + 1) }) : undefined,
    });
  });

  app.get('/dashboard/transfers/:id', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const t = await orNotFound(reply, s, 'transfer', objectId(req), (id) => getTransfer(deps, s.caller, id));
    if (!t) return reply;
    // Its one Payment.Status event is written as it completes or fails; a pending transfer has none.
    const done = t.completedAt ? new Date(t.completedAt).getTime() : undefined;
    const events = done === undefined ? { data: [], more: false }
      : await eventsOf(deps, s.caller, { paymentReference: t.reference, since: new Date(done - WINDOW_MS), until: new Date(done + WINDOW_MS) });
    const account = (number: string | null, bank: string | null) =>
      number ? `<code>${esc(number)}</code>${bank ? ` at ${esc(bankName(bank))}` : ''}` : text(null);
    const card = fields([
      ['Transfer', `<code data-testid="object-id">${esc(t.id)}</code>`],
      ['Status', badge(t.status, 'object-status')],
      ['Amount', `<span data-testid="object-amount">${esc(naira(t.amount))}</span> NGN`],
      ['Reference', `<code>${esc(t.reference)}</code>`],
      ['Sendcash user', `${code(t.userId)} <span class="muted">(the userId of the charge)</span>`],
      ['Description', text(t.description)],
      ['Name', text(t.name)],
      ['To', account(t.destinationAccountNumber, t.destinationBankCode)],
      ['Paid from', t.sourceAccountNumber ? `${text(t.senderAccountName)}, ${account(t.sourceAccountNumber, t.sourceBankCode)}${t.sourceAccountType ? ` (${esc(t.sourceAccountType)})` : ''}` : text(null)],
      ['Created', when(t.createdAt)],
      ['Completed', when(t.completedAt) || text(null)],
      ...(t.payerUrl ? [['Payer page', `<a href="${esc(t.payerUrl)}" rel="noreferrer">open</a>`] as [string, string]] : []),
    ]);
    return detailPage(reply, s, {
      title: `Transfer ${t.id}`, back: ['/dashboard/transfers', 'Transfers'], heading: `Transfer of ${esc(naira(t.amount))}`, card,
      after: eventsCard(events, 'No Payment.Status event yet: a transfer has one when it completes or fails.'),
    });
  });
}
