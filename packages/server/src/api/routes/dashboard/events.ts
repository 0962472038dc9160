/** One event with its deliveries and attempts (the request as sent, the response); resend, retry now. */
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { loadEndpoint } from '../../../delivery/endpoints.js';
import { attemptKey, eventDetail, resendEvent, retryDelivery } from '../../../payments/events/events.js';
import type { RequestView } from '../../../delivery/request-view.js';
import { EXCERPT_BYTES } from '../../../delivery/sender.js';
import { DomainError, httpStatus } from '../../errors.js';
import { errorPage, esc, HIDE, layout, paramOf, postButton, send, str, when, type Dash, type Session } from './kit.js';

/** This page's own styles: attempts' details, and headers and URLs that wrap at any width. */
const PAGE_STYLE = `<style>
 tbody.attempt tr.detail td{padding-top:0} tbody.attempt+tbody.attempt tr:first-child td{border-top:1px solid #e3e7ef}
 details.io summary{cursor:pointer;color:#1d4ed8;font-size:.85rem;padding:4px 0}
 details.io .cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:12px;margin-top:6px}
 details.io h3{font-size:.85rem;margin:8px 0 4px} details.io .kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;font-size:.8rem}
 details.io .kv code{overflow-wrap:anywhere;word-break:break-all} details.io pre{max-height:320px;margin:4px 0}
 .warn{color:#92400e;background:#fffbeb;border:1px solid #fde68a;border-radius:6px;padding:4px 8px;font-size:.8rem}
 @media (max-width:640px){ table.stack tbody.attempt tr.detail td{display:block} table.stack tbody.attempt tr.detail td::before{content:none}
  details.io .cols{grid-template-columns:1fr} details.io .kv{grid-template-columns:1fr} }
</style>`;

/** A header list as a two-column grid (names and values wrap). */
function headerList(entries: [string, string][], testid: string): string {
  if (entries.length === 0) return '<p class="muted">None.</p>';
  return `<div class="kv" data-testid="${esc(testid)}">${entries.map(([k, v]) => `<code><b>${esc(k)}</b></code><code>${esc(v)}</code>`).join('')}</div>`;
}

/** A body as sent, pretty-printed if it is JSON (the bytes sent are the one-line form; its size says so). */
function prettyBody(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

/** Control characters (NUL among them) as visible symbols, so that no byte of an answer reaches the HTML as it is. */
const visible = (t: string) => t.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, (c) => (c === '\u007f' ? '\u2421' : String.fromCharCode(0x2400 + c.charCodeAt(0))));

/**
 * An answer's first bytes, shown as text: invalid UTF-8 becomes U+FFFD (with a note), control bytes visible symbols.
 * A body cut at the excerpt limit in the middle of a character is still UTF-8 up to the cut.
 */
export function excerptView(buf: Buffer | null | undefined): { text: string; note?: string } {
  if (!buf || buf.length === 0) return { text: '' };
  const cut = buf.length >= EXCERPT_BYTES;
  let valid = isUtf8(buf);
  if (!valid && cut) for (let k = 1; k <= 3 && !valid; k++) valid = isUtf8(buf.subarray(0, buf.length - k));
  const notes = [];
  if (!valid) notes.push('not valid UTF-8: shown with replacement characters (\uFFFD)');
  if (cut) notes.push(`the first ${EXCERPT_BYTES} bytes`);
  return { text: visible(buf.toString('utf8')), ...(notes.length ? { note: `${buf.length} bytes, ${notes.join('; ')}.` } : {}) };
}

function requestBlock(r: RequestView | undefined): string {
  if (!r) return '<p class="muted">Not available.</p>';
  return `${r.note ? `<p class="warn" data-testid="request-note">${esc(r.note)}</p>` : ''}
<div class="kv"><code><b>method</b></code><code>${esc(r.method)}</code><code><b>url</b></code><code data-testid="request-url">${esc(r.url)}</code></div>
<h3>Headers</h3>${headerList(r.headers, 'request-headers')}
<h3>Body <span class="muted">(${Buffer.byteLength(r.body)} bytes${prettyBody(r.body) !== r.body ? ', sent on one line, shown pretty-printed' : ''})</span></h3><pre data-testid="request-body">${esc(prettyBody(r.body))}</pre>`;
}

type Attempt = Awaited<ReturnType<typeof eventDetail>>['event']['deliveries'][number]['attempt_log'][number];

function responseBlock(a: Attempt, excerpt: Buffer | null | undefined): string {
  if (a.status_code == null) {
    return `<p>No HTTP answer: <code>${esc(a.error_code ?? 'unknown')}</code></p>${excerpt?.length ? `<pre data-testid="response-excerpt">${esc(excerptView(excerpt).text)}</pre>` : ''}`;
  }
  const ex = excerptView(excerpt);
  const headers = a.response_headers ? Object.entries(a.response_headers) : [];
  return `<div class="kv"><code><b>status</b></code><code data-testid="response-status">${esc(String(a.status_code))}</code></div>
${a.response_headers ? `<h3>Headers</h3>${headerList(headers, 'response-headers')}` : ''}
<h3>Body</h3>${ex.note ? `<p class="warn" data-testid="excerpt-note">${esc(ex.note)}</p>` : ''}${ex.text ? `<pre data-testid="response-excerpt">${esc(ex.text)}</pre>` : '<p class="muted">Empty.</p>'}`;
}

const sent = (a: Attempt) => a.error_code !== 'forbidden_address';

export function eventRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession, postSession } = sessions;
  app.get('/dashboard/events/:id', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const id = String((req.params as { id?: unknown }).id ?? '');
    let detail: Awaited<ReturnType<typeof eventDetail>>;
    try {
      if (id.length === 0 || id.length > 128) throw new DomainError('event_not_found', `no event ${id.slice(0, 128)}`);
      detail = await eventDetail(deps, s.caller, id);
    } catch (e) {
      if (e instanceof DomainError) return errorPage(reply, httpStatus(e), 'Event not found', `There is no event ${id.slice(0, 128)} in the ${s.caller.environment}.`, s);
      throw e;
    }
    const ev = detail.event;
    // A pending delivery to an endpoint whose circuit is open waits for the circuit's probe: say so, or the page would
    // show a due time long past and no attempt, with no reason (the first thing a newcomer with a dead receiver sees).
    const circuits = new Map<string, { failures: number; retryAt: string | null }>();
    for (const eid of new Set(ev.deliveries.filter((d) => d.status === 'pending' && d.endpoint_id).map((d) => d.endpoint_id!))) {
      // A deleted endpoint has no health to show; a database error is an error.
      const e = await loadEndpoint(deps.db, s.caller, eid).catch((err: unknown) => {
        if (err instanceof DomainError) return null;
        throw err;
      });
      if (e?.circuit_state === 'open') circuits.set(eid, { failures: e.consecutive_failures, retryAt: e.circuit_retry_at?.toISOString() ?? null });
    }
    const q = (req.query ?? {}) as Record<string, unknown>;
    const notice = str(q.resent) === '1' ? '<p class="notice" role="status" data-testid="notice">Resent: a new delivery is on its way.</p>'
      : str(q.resent) === 'none' ? '<p class="error" role="status" data-testid="notice">Nothing to resend: this event has no webhook destination.</p>'
        : str(q.retried) ? `<p class="notice" role="status" data-testid="notice">Retrying now: delivery <code>${esc(str(q.retried)!.slice(0, 128))}</code> is due and the workers are woken.</p>` : '';
    const deliveries = ev.deliveries.map((d) => {
      const attempts = d.attempt_log.map((a) => {
        const k = attemptKey(d.id, a.attempt);
        return `<tbody class="attempt" data-testid="attempt"><tr>
 <td data-label="#">${a.attempt}</td><td data-label="Time">${when(a.started_at)}</td>
 <td data-label="Result" data-testid="attempt-result">${a.status_code != null ? `HTTP ${esc(String(a.status_code))}` : esc(a.error_code ?? '–')}</td>
 <td data-label="Latency">${a.latency_ms != null ? `${esc(String(a.latency_ms))} ms` : '–'}</td>
 <td data-label="Outcome">${esc(a.outcome ?? '')}</td>
 <td data-label="Response">${a.response ? `<code>${esc(visible(a.response.slice(0, 120)))}</code>` : ''}</td></tr>
<tr class="detail"><td colspan="6"><details class="io" data-testid="attempt-detail"><summary>Request and response</summary><div class="cols">
<section><h3>Request</h3>${sent(a) ? requestBlock(detail.requests.get(k)) : '<p class="muted">Not sent: the address may not be reached from production.</p>'}</section>
<section><h3>Response</h3>${responseBlock(a, detail.excerpts.get(k))}</section></div></details></td></tr></tbody>`;
      }).join('\n');
      const circuit = d.status === 'pending' && d.endpoint_id ? circuits.get(d.endpoint_id) : undefined;
      const waiting = circuit && !d.held
        ? `<p class="muted" data-testid="circuit-note">Waiting: its endpoint's circuit is open after ${esc(String(circuit.failures))} failure${circuit.failures === 1 ? '' : 's'} in a row, so its deliveries wait for one probe${circuit.retryAt ? `, at ${when(circuit.retryAt)}` : ''}. Retry now sends this delivery as that probe.</p>`
        : '';
      const retry = d.status !== 'pending' ? ''
        : d.held ? '<span class="muted" data-testid="held-note">Held: its endpoint is disabled. Enable it on Endpoints to send.</span>'
          : postButton(s, `/dashboard/deliveries/${encodeURIComponent(d.id)}/retry`, 'Retry now', { testid: 'retry-now' });
      return `<div class="card" data-testid="delivery">
<div class="row"><h2><code>${esc(d.id)}</code></h2><span><span class="status ${esc(d.status)}" data-testid="delivery-status">${esc(d.status)}</span> ${retry}</span></div>
<dl><dt>URL</dt><dd><code>${esc(d.url)}</code></dd>
 ${d.endpoint_id ? `<dt>Endpoint</dt><dd><a href="/dashboard/endpoints/${encodeURIComponent(d.endpoint_id)}"><code>${esc(d.endpoint_id)}</code></a></dd>` : ''}
 <dt>Format</dt><dd>${esc(d.format)} (payload ${esc(String(d.payload_version))})</dd>
 <dt>Attempts</dt><dd>${esc(String(d.attempts))}</dd>
 ${d.next_attempt_at ? `<dt>Next attempt</dt><dd data-testid="next-attempt">${d.held ? 'held' : when(d.next_attempt_at)}</dd>` : ''}
 ${d.completed_at ? `<dt>Completed</dt><dd>${when(d.completed_at)}</dd>` : ''}</dl>
${waiting}
${attempts ? `<table class="stack" style="margin-top:12px"><thead><tr><th>#</th><th>Time</th><th>Result</th><th>Latency</th><th>Outcome</th><th>Response</th></tr></thead>
${attempts}</table>` : '<p class="muted">No attempt yet.</p>'}
 </div>`;
    }).join('\n');
    const body = `${PAGE_STYLE}<p><a href="/dashboard/events">← Events</a></p>
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

  // Retry now: one pending delivery of this session's operator and environment is due now (another environment's is
  // not found: a production session never touches a sandbox delivery). Back to its event, with a notice.
  app.post('/dashboard/deliveries/:id/retry', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const id = paramOf(req);
    try {
      if (!id) throw new DomainError('delivery_not_found', 'no such delivery');
      const d = await retryDelivery(deps, s.caller, id);
      return reply.status(303).header('location', `/dashboard/events/${encodeURIComponent(d.event_id)}?retried=${encodeURIComponent(d.id)}`).send();
    } catch (e) {
      if (e instanceof DomainError) return retryRefused(reply, e, s);
      throw e;
    }
  });
}

function retryRefused(reply: Parameters<typeof errorPage>[0], e: DomainError, s: Session) {
  const title = e.code === 'delivery_not_found' ? 'Delivery not found' : 'Cannot retry';
  const message = e.code === 'delivery_not_found' ? `There is no such delivery in the ${s.caller.environment}.` : e.message;
  return errorPage(reply, httpStatus(e), title, message, s);
}
