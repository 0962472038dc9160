/** One event with its deliveries and attempts (the request as sent, the response); resend, retry now. */
import type { FastifyInstance } from 'fastify';
import { getEvent, listEvents, resendEvent } from '../../../payments/events/events.js';
import { DomainError, httpStatus } from '../../errors.js';
import { DELIVERY_STATUSES, errorPage, esc, HIDE, layout, PAGE_SIZE, send, str, when, type Dash } from './kit.js';

export function eventRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession, postSession } = sessions;
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
