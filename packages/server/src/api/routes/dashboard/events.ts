/** The events list (filters, paging, live updates) and one event with its deliveries and attempts; resend, retry now. */
import type { FastifyInstance } from 'fastify';
import { getEvent, listEvents, resendEvent } from '../../../payments/events/events.js';
import { DomainError, httpStatus } from '../../errors.js';
import { DELIVERY_STATUSES, errorPage, esc, HIDE, layout, PAGE_SIZE, send, str, when, type Dash } from './kit.js';

export function eventRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession, postSession } = sessions;
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

  app.get('/dashboard/events/:id', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const id = String((req.params as { id?: unknown }).id ?? '');
    let ev: Awaited<ReturnType<typeof getEvent>>;
    try {
      if (id.length === 0 || id.length > 128) throw new DomainError('event_not_found', `no event ${id.slice(0, 128)}`);
      ev = await getEvent(deps, s.caller, id);
    } catch (e) {
      if (e instanceof DomainError) return errorPage(reply, httpStatus(e), 'Event not found', `There is no event ${id.slice(0, 128)} in the ${s.caller.environment}.`, s);
      throw e;
    }
    const q = (req.query ?? {}) as Record<string, unknown>;
    const notice = str(q.resent) === '1' ? '<p class="notice" role="status" data-testid="notice">Resent: a new delivery is on its way.</p>'
      : str(q.resent) === 'none' ? '<p class="error" role="status" data-testid="notice">Nothing to resend: this event has no webhook destination.</p>' : '';
    const deliveries = ev.deliveries.map((d) => {
      const attempts = d.attempt_log.map((a) => `<tr data-testid="attempt">
 <td data-label="#">${a.attempt}</td><td data-label="Time">${when(a.started_at)}</td>
 <td data-label="Result">${a.status_code != null ? `HTTP ${esc(String(a.status_code))}` : esc(a.error_code ?? '–')}</td>
 <td data-label="Latency">${a.latency_ms != null ? `${esc(String(a.latency_ms))} ms` : '–'}</td>
 <td data-label="Outcome">${esc(a.outcome ?? '')}</td>
 <td data-label="Response">${a.response ? `<code>${esc(a.response.slice(0, 200))}</code>` : ''}</td></tr>`).join('\n');
      return `<div class="card" data-testid="delivery">
<div class="row"><h2><code>${esc(d.id)}</code></h2><span class="status ${esc(d.status)}" data-testid="delivery-status">${esc(d.status)}</span></div>
<dl><dt>URL</dt><dd><code>${esc(d.url)}</code></dd>
 ${d.endpoint_id ? `<dt>Endpoint</dt><dd><code>${esc(d.endpoint_id)}</code></dd>` : ''}
 <dt>Format</dt><dd>${esc(d.format)} (payload ${esc(String(d.payload_version))})</dd>
 <dt>Attempts</dt><dd>${esc(String(d.attempts))}</dd>
 ${d.next_attempt_at ? `<dt>Next attempt</dt><dd>${when(d.next_attempt_at)}${d.held ? ' (held)' : ''}</dd>` : ''}
 ${d.completed_at ? `<dt>Completed</dt><dd>${when(d.completed_at)}</dd>` : ''}</dl>
${attempts ? `<table class="stack" style="margin-top:12px"><thead><tr><th>#</th><th>Time</th><th>Result</th><th>Latency</th><th>Outcome</th><th>Response</th></tr></thead><tbody>
${attempts}</tbody></table>` : '<p class="muted">No attempt yet.</p>'}
 </div>`;
    }).join('\n');
    const body = `<p><a href="/dashboard/events">← Events</a></p>
 <div class="card"><div class="row"><h1 data-testid="event-type">${esc(ev.type)}</h1>
<form method="post" action="/dashboard/events/${encodeURIComponent(ev.id)}/resend"><input type="hidden" name="csrf" value="${esc(s.csrf)}"><button class="primary" type="submit" id="resend">Resend</button></form></div>
${notice}
<dl><dt>Event</dt><dd><code data-testid="event-id">${esc(ev.id)}</code></dd><dt>Time</dt><dd>${when(ev.created_at)}</dd>
 ${ev.intent_id ? `<dt>Intent</dt><dd><a href="/dashboard/events?intent_id=${encodeURIComponent(ev.intent_id)}"><code>${esc(ev.intent_id)}</code></a></dd>` : ''}</dl>
<h2 style="margin-top:16px">Data</h2><pre data-testid="event-data">${esc(JSON.stringify(ev.data, null, 2))}</pre></div>
 <h2>Deliveries (${ev.deliveries.length})</h2>
 ${deliveries || '<div class="card"><p class="muted">No webhook destination for this event.</p></div>'}`;
    return send(reply, 200, layout(ev.type, body, s));
  });

  app.post('/dashboard/events/:id/resend', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const id = String((req.params as { id?: unknown }).id ?? '');
    const back = `/dashboard/events/${encodeURIComponent(id)}`;
    try {
      if (id.length === 0 || id.length > 128) throw new DomainError('event_not_found', `no event ${id.slice(0, 128)}`);
      await resendEvent(deps, s.caller, id);
    } catch (e) {
      if (e instanceof DomainError && e.code === 'nothing_to_resend') return reply.status(303).header('location', `${back}?resent=none`).send();
      if (e instanceof DomainError) return errorPage(reply, httpStatus(e), 'Cannot resend', e.message, s);
      throw e;
    }
    return reply.status(303).header('location', `${back}?resent=1`).send();
  });
}
