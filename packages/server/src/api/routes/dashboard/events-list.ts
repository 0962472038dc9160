/** The events list: filters (type, delivery status, intent, time), paging, and live updates while open. */
import type { FastifyInstance } from 'fastify';
import { listEvents } from '../../../payments/events/events.js';
import { DomainError, httpStatus } from '../../errors.js';
import { DELIVERY_STATUSES, errorPage, esc, HIDE, layout, PAGE_SIZE, send, str, when, type Dash } from './kit.js';

export function eventListRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession } = sessions;
  app.get('/dashboard/events', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const q = (req.query ?? {}) as Record<string, unknown>;
    const type = str(q.type)?.slice(0, 128);
    const intentId = str(q.intent_id)?.slice(0, 128);
    const statusIn = str(q.status);
    const status = DELIVERY_STATUSES.find((x) => x === statusIn);
    const cursor = str(q.cursor);
    if (cursor !== undefined && !/^[0-9]{1,18}$/.test(cursor)) return errorPage(reply, 400, 'Bad page link', 'That "next" link is not one this dashboard made.', s);
    let page: Awaited<ReturnType<typeof listEvents>>;
    try {
      page = await listEvents(deps, s.caller, { type, intent_id: intentId, delivery_status: status, cursor, limit: PAGE_SIZE });
    } catch (e) {
      if (e instanceof DomainError) return errorPage(reply, httpStatus(e), 'Cannot list events', e.message, s);
      throw e;
    }
    const keep = new URLSearchParams();
    if (type) keep.set('type', type);
    if (status) keep.set('status', status);
    if (intentId) keep.set('intent_id', intentId);
    const next = page.next_cursor ? `/dashboard/events?${new URLSearchParams([...keep, ['cursor', page.next_cursor]])}` : null;
    const opt = (v: string, label: string) => `<option value="${esc(v)}"${(status ?? '') === v ? ' selected' : ''}>${esc(label)}</option>`;
    const rowsHtml = page.data.map((e) => `<tr data-testid="event-row">
<td data-label="Time">${when(e.created_at)}</td>
<td data-label="Type"><a href="/dashboard/events/${encodeURIComponent(e.id)}" data-testid="event-link">${esc(e.type)}</a></td>
<td data-label="Intent">${e.intent_id ? `<code>${esc(e.intent_id)}</code>` : '<span class="muted">–</span>'}</td>
<td data-label="Event"><code>${esc(e.id)}</code></td></tr>`).join('\n');
    const body = `<div class="card"><h1>Events</h1>
 <form method="get" action="/dashboard/events" class="filters" data-testid="filters">
<div><label for="type">Type</label><input id="type" name="type" placeholder="e.g. intent.approved" value="${esc(type ?? '')}" maxlength="128"></div>
<div><label for="status">Delivery status</label><select id="status" name="status">${opt('', 'Any')}${DELIVERY_STATUSES.map((x) => opt(x, x)).join('')}</select></div>
<div><label for="intent_id">Intent id</label><input id="intent_id" name="intent_id" value="${esc(intentId ?? '')}" maxlength="128"></div>
<div><button class="primary" type="submit" id="filter">Filter</button> <a href="/dashboard/events">Clear</a></div>
 </form></div>
 <div class="card">
 ${page.data.length === 0 ? '<p class="muted" data-testid="no-events">No events match.</p>' : `<table class="stack"><thead><tr><th>Time</th><th>Type</th><th>Intent</th><th>Event</th></tr></thead><tbody>
 ${rowsHtml}</tbody></table>`}
 ${next ? `<p class="pager"><a href="${esc(next)}" rel="next" id="next">Next ${PAGE_SIZE} →</a></p>` : ''}
 </div>`;
    return send(reply, 200, layout('Events', body, s));
  });
}
