/** What the object pages (objects.ts) share: ids, the 404 and 400 pages, money, badges, tables, the events card. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { publicEvent } from '../../../payments/events/events.js';
import { DomainError, errors } from '../../errors.js';
import { errorPage, esc, layout, PAGE_SIZE, send, str, when, type Session } from './kit.js';

/** The ids Cashwire makes (intent_sandbox_…, user_…, refund_…, dispute_…, trf_…): anything else is not found, unread. */
const OBJECT_ID = /^[A-Za-z0-9_-]{1,128}$/;
export const isObjectId = (v: string | undefined): v is string => v !== undefined && OBJECT_ID.test(v);

/** The `:id` of a detail page if it can be an id; undefined otherwise (too long, a NUL, a slash, …). */
export function objectId(req: FastifyRequest): string | undefined {
  const v = (req.params as Record<string, unknown>).id;
  return typeof v === 'string' && isObjectId(v) ? v : undefined;
}

/** The id as a page may repeat it: printable, at most 64 characters. */
const shown = (id: string) => id.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);

/** "the sandbox", "production": how the pages name the session's environment. */
export const inEnv = (s: Session) => (s.caller.environment === 'sandbox' ? 'the sandbox' : 'production');

/** The 404 page of a detail: the same for an id that does not exist, another operator's, and the other environment's. */
export function notFoundPage(reply: FastifyReply, s: Session, what: string, id: string): FastifyReply {
  return errorPage(reply, 404, `${what[0]!.toUpperCase()}${what.slice(1)} not found`, `There is no ${what} ${shown(id)} in ${inEnv(s)}.`, s);
}

/**
 * Runs a detail page's read: a DomainError (not found, wrong environment) becomes the 404 page, so that the answer
 * never tells which; anything else is a real failure and propagates.
 */
export async function orNotFound<T>(reply: FastifyReply, s: Session, what: string, id: string | undefined, read: (id: string) => Promise<T>): Promise<T | null> {
  if (id === undefined) {
    notFoundPage(reply, s, what, String((reply.request.params as Record<string, unknown>).id ?? ''));
    return null;
  }
  try {
    return await read(id);
  } catch (e) {
    if (e instanceof DomainError) {
      notFoundPage(reply, s, what, id);
      return null;
    }
    throw e;
  }
}

/**
 * A list page's read: its DomainErrors (a cursor that is not one of ours, a bad filter) answer a 400 page. A cursor
 * must decode to printable text before it reaches the service (a NUL in it would reach PostgreSQL).
 */
export async function listOr400<T>(reply: FastifyReply, s: Session, cursor: string | undefined, read: () => Promise<T>): Promise<T | null> {
  try {
    if (cursor !== undefined && !(/^[A-Za-z0-9_-]{1,400}$/.test(cursor) && /^[\x20-\x7e]+$/.test(Buffer.from(cursor, 'base64url').toString('latin1')))) {
      throw errors.validation('cursor', 'cursor is not one this dashboard made', 'invalid_cursor');
    }
    return await read();
  } catch (e) {
    if (e instanceof DomainError) {
      errorPage(reply, 400, 'Bad page link', 'That page link is not one this dashboard made.', s);
      return null;
    }
    throw e;
  }
}

/** Groups of three digits: 1234567 → "1,234,567". */
const grouped = (n: number) => n.toLocaleString('en-US');

/** USD cents as dollars: 123456 → "$1,234.56". */
export function dollars(cents: number): string {
  const c = Math.round(Number(cents));
  const sign = c < 0 ? '-' : '';
  const a = Math.abs(c);
  return `${sign}$${grouped(Math.floor(a / 100))}.${String(a % 100).padStart(2, '0')}`;
}

/** Naira as the Sendcash API answers them (a number with two decimals, fromKobo) as "₦1,234.56". */
export function naira(amount: number): string {
  const kobo = Math.round(Number(amount) * 100);
  return `₦${grouped(Math.floor(kobo / 100))}.${String(kobo % 100).padStart(2, '0')}`;
}

const GOOD = new Set(['approved', 'won', 'Completed', 'enabled', 'succeeded']);
const BAD = new Set(['declined', 'canceled', 'lost', 'Failed', 'disabled']);
const WAITING = new Set(['pending', 'created', 'Pending', 'requested']);

/** A status as a coloured badge (the STYLE's succeeded / failed / pending colours). */
export function badge(status: string, testid = 'status'): string {
  const cls = GOOD.has(status) ? 'succeeded' : BAD.has(status) ? 'failed' : WAITING.has(status) ? 'pending' : '';
  return `<span class="status ${cls}" data-testid="${esc(testid)}">${esc(status)}</span>`;
}

export const code = (v: string | null | undefined) => (v ? `<code>${esc(v)}</code>` : '<span class="muted">–</span>');
export const text = (v: string | number | boolean | null | undefined) => (v === null || v === undefined || v === '' ? '<span class="muted">–</span>' : esc(String(v)));

/** A link to another object's page, its id in <code>. */
export const link = (kind: 'intents' | 'users' | 'refunds' | 'disputes' | 'transfers', id: string | null | undefined, testid?: string) =>
  id ? `<a href="/dashboard/${kind}/${encodeURIComponent(id)}"${testid ? ` data-testid="${esc(testid)}"` : ''}><code>${esc(id)}</code></a>` : '<span class="muted">–</span>';

/** A definition list of the fields a merchant needs; each value is HTML already escaped. */
export function fields(rows: [string, string][]): string {
  return `<dl data-testid="fields">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

/** A table that stacks at 390 px: `cols` are the headers, each row's cells in the same order (HTML). */
export function table(cols: string[], rows: string[][], rowTestid: string): string {
  return `<table class="stack"><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>
${rows.map((r) => `<tr data-testid="${esc(rowTestid)}">${r.map((cell, k) => `<td data-label="${esc(cols[k] ?? '')}">${cell}</td>`).join('')}</tr>`).join('\n')}</tbody></table>`;
}

type PublicEvent = ReturnType<typeof publicEvent>;

/** The events card of a detail page: newest first, each linking to its event page; `all` links to the rest when there are more. */
export function eventsCard(events: { data: PublicEvent[]; more: boolean }, empty: string, all?: string): string {
  const rows = events.data.map((e) => [
    `<span class="nw">${when(e.created_at)}</span>`,
    `<a href="/dashboard/events/${encodeURIComponent(e.id)}" data-testid="object-event-link">${esc(e.type)}</a>`,
    `<code>${esc(e.id)}</code>`,
  ]);
  const more = events.more
    ? `<p class="pager muted">The newest ${PAGE_SIZE} are shown.${all ? ` <a href="${esc(all)}" id="all-events">All events →</a>` : ''}</p>` : '';
  return `<div class="card" data-testid="object-events"><h2>Events (${events.data.length}${events.more ? '+' : ''})</h2>
${rows.length === 0 ? `<p class="muted" data-testid="no-object-events">${esc(empty)}</p>` : table(['Time', 'Type', 'Event'], rows, 'object-event-row')}${more}</div>`;
}

/** A list page's status filter (a select of `statuses`, "Any" first) and its Filter button, as a GET form. */
export function statusFilter(action: string, statuses: readonly string[], current: string | undefined, keep: Record<string, string | undefined> = {}): string {
  const kept = Object.entries(keep).map(([k, v]) => (v === undefined ? '' : `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)).join('');
  const opt = (v: string, label: string) => `<option value="${esc(v)}"${(current ?? '') === v ? ' selected' : ''}>${esc(label)}</option>`;
  return `<form method="get" action="${esc(action)}" class="filters" data-testid="filters">
<div><label for="status">Status</label><select id="status" name="status">${opt('', 'Any')}${statuses.map((x) => opt(x, x)).join('')}</select></div>
<div>${kept}<button class="primary" type="submit" id="filter">Filter</button> <a href="${esc(action)}">Clear</a></div></form>`;
}

/** The status asked for, if it is one of `statuses` (anything else: no filter). */
export const statusOf = <T extends string>(q: Record<string, unknown>, statuses: readonly T[]): T | undefined => {
  const v = str(q.status);
  return statuses.find((x) => x === v);
};

/** The Next link of a list: the same filters, the next cursor (or page). */
export function nextLink(path: string, params: Record<string, string | undefined>): string {
  const qs = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined)).toString();
  return `<p class="pager"><a href="${esc(`${path}?${qs}`)}" rel="next" id="next">Next ${PAGE_SIZE} →</a></p>`;
}

/** A list page: its title, the filter form (if any), the table or the empty message, the Next link. */
export function listPage(reply: FastifyReply, s: Session, o: { title: string; intro?: string; filter?: string; table: string | null; empty: string; next?: string }): FastifyReply {
  const body = `<div class="card"><h1>${esc(o.title)}</h1>${o.intro ? `<p class="muted">${o.intro}</p>` : ''}${o.filter ?? ''}</div>
<div class="card">${o.table ?? `<p class="muted" data-testid="empty">${esc(o.empty)}</p>`}${o.next ?? ''}</div>`;
  return send(reply, 200, layout(o.title, body, s));
}

/** A detail page: a back link, the object's card, then whatever follows (related objects, events). */
export function detailPage(reply: FastifyReply, s: Session, o: { title: string; back: [string, string]; heading: string; card: string; after: string }): FastifyReply {
  const body = `<p><a href="${esc(o.back[0])}">← ${esc(o.back[1])}</a></p>
<div class="card"><div class="row"><h1>${o.heading}</h1></div>${o.card}</div>
${o.after}`;
  return send(reply, 200, layout(o.title, body, s));
}
