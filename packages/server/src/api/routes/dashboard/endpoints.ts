/**
 * Endpoints: the list with health, create (secret shown once), disable and enable, rotate; and one endpoint's page
 * (/dashboard/endpoints/:id): its health with a fifo endpoint's head, edit, reveal the secret (a POST, the secret on
 * the answer only), recover a time window, send a test event. Every action goes through the API's services, scoped to
 * the session's operator and environment: another environment's endpoint is a 404.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  createEndpoint, getEndpoint, listEndpoints, publicEndpoint, recoverEndpoint, revealSecret, rotateSecret, setEnabled, updateEndpoint,
} from '../../../delivery/endpoints.js';
import { sendTestEvent, TEST_EVENT_TYPES } from '../../../delivery/test-event.js';
import { errors } from '../../../domain/errors.js';
import { DomainError, httpStatus } from '../../errors.js';
import { errorPage, esc, FORMATS, hidden, HIDE, layout, send, str, when, type Dash, type Session } from './kit.js';

type Ep = ReturnType<typeof publicEndpoint>;
const ORDERINGS = ['unordered', 'fifo'] as const;
/** The longest window a recover may cover: the default retention (CASHWIRE_RETENTION_DAYS), past which nothing is left to resend. */
export const MAX_RECOVER_DAYS = 30;
/** How far past the server's clock `until` may be: a minute-granular input of "now", rounded up, covers up to now. */
const FUTURE_SLACK_MS = 60_000;

/** `disabled_reason` (the API's code first, as the list always showed it), and what it means. */
export function disabledReasonText(reason: string | null): string {
  if (reason === 'gone') return 'gone: auto-disabled, the receiver answered 410 Gone';
  if (reason === 'failing') return 'failing: auto-disabled after failing continuously';
  if (reason === 'operator') return 'operator: disabled from the dashboard or the API';
  return reason ?? '';
}

/**
 * A datetime-local value (`2026-01-15T12:00`, seconds optional), read as UTC: the input carries no zone, and UTC is
 * what every other time on these pages is shown in. A 400 `invalid_date` for anything else, impossible dates included.
 */
export function parseUtcInput(value: string | undefined, field: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value?.trim() ?? '');
  const bad = () => errors.validation(field, `${field} must be a date and time in UTC, e.g. 2026-01-15T12:00`, 'invalid_date');
  if (!m) throw bad();
  const [y, mo, d, h, mi, sec] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, sec));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) throw bad();
  return t;
}

/** since < until, neither in the future (a minute of slack for `until`), at most MAX_RECOVER_DAYS apart. */
export function recoverWindow(sinceIn: string | undefined, untilIn: string | undefined, now: Date): { since: Date; until: Date } {
  const since = parseUtcInput(sinceIn, 'since');
  const until = parseUtcInput(untilIn, 'until');
  if (until.getTime() > now.getTime() + FUTURE_SLACK_MS) throw errors.validation('until', `until is in the future (now is ${when(now)})`, 'invalid_range');
  if (since >= until) throw errors.validation('since', 'since must be before until', 'invalid_range');
  if (until.getTime() - since.getTime() > MAX_RECOVER_DAYS * 86_400_000) throw errors.validation('since', `the window may span at most ${MAX_RECOVER_DAYS} days`, 'invalid_range');
  return { since, until };
}

/** A Date as a datetime-local value in UTC, to the minute. */
const inputValue = (d: Date) => d.toISOString().slice(0, 16);

/** The events field of a form: one to 50 types, comma-separated (the service checks each against the catalog). */
function parseEvents(raw: string): string[] {
  const events = raw.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  if (raw.length > 4000 || events.length === 0 || events.length > 50 || events.some((t) => t.length > 64)) {
    throw errors.validation('events', 'events: one to 50 event types, comma-separated, or *', 'invalid_value');
  }
  return events;
}

function parseUrl(raw: string): string {
  if (raw.length === 0 || raw.length > 2048) throw errors.validation('url', 'url must be an absolute http(s) URL of at most 2048 characters', 'invalid_url');
  return raw;
}

/** A fifo endpoint's head: the delivery its lane waits on, linked to its event. */
function fifoHeadHtml(e: Ep): string {
  if (e.ordering !== 'fifo' || e.waiting_on === undefined) return '';
  const h = e.waiting_on;
  if (!h) return '<br><span class="muted" data-testid="fifo-head">fifo: nothing waiting</span>';
  const next = h.in_flight ? 'in flight' : h.next_attempt_at ? `next attempt ${when(h.next_attempt_at)}` : 'held';
  const last = h.last_status != null ? `, last HTTP ${esc(String(h.last_status))}` : h.last_error ? `, last ${esc(h.last_error)}` : '';
  return `<br><span data-testid="fifo-head">fifo head: <a href="/dashboard/events/${encodeURIComponent(h.event_id)}"><code>${esc(h.event_id)}</code></a>,
 ${esc(String(h.attempts))} attempt${h.attempts === 1 ? '' : 's'}, ${next}${last}${h.queued_behind > 0 ? `, ${esc(String(h.queued_behind))} behind it` : ''}</span>`;
}

function healthHtml(e: Ep): string {
  const circuit = e.health.circuit === 'open'
    ? `<span class="status failed">circuit open</span>${e.health.circuit_retry_at ? ` <span class="muted">probe ${when(e.health.circuit_retry_at)}</span>` : ''}`
    : '<span class="status">circuit closed</span>';
  const failing = e.health.consecutive_failures > 0
    ? `<br><span class="muted">${esc(String(e.health.consecutive_failures))} failure${e.health.consecutive_failures === 1 ? '' : 's'}${e.health.failing_since ? `, since ${when(e.health.failing_since)}` : ''}</span>` : '';
  return `${circuit}${failing}${fifoHeadHtml(e)}`;
}

function statusHtml(e: Ep): string {
  return `<span class="status ${e.status === 'enabled' ? 'succeeded' : 'failed'}" data-testid="endpoint-status">${esc(e.status)}</span>${e.disabled_reason
    ? `<br><span class="muted" data-testid="disabled-reason">${esc(disabledReasonText(e.disabled_reason))}${e.disabled_at ? `, ${when(e.disabled_at)}` : ''}</span>` : ''}`;
}

function secretCard(title: string, id: string, secret: string): string {
  return `<div class="card" data-testid="secret-card"><h2>${esc(title)}</h2>
<p>The signing secret of <code>${esc(id)}</code>. <strong>Copy it now: it is shown this once</strong>, never again on these pages.</p>
<pre data-testid="secret">${esc(secret)}</pre></div>`;
}

const epPath = (id: string, action = '') => `/dashboard/endpoints/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;
const epAction = (s: Session, e: Ep, action: 'disable' | 'enable' | 'rotate', label: string) =>
  `<form method="post" action="${epPath(e.id, action)}" style="display:inline">${hidden(s)}<button type="submit" data-testid="${action}">${esc(label)}</button></form>`;
const formError = (msg: string | undefined, testid: string) => (msg ? `<p class="error" role="alert" data-testid="${testid}">${esc(msg)}</p>` : '');
const option = (v: string, selected: string) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(v)}</option>`;

interface DetailOpts {
  notice?: string;
  /** Raw HTML (already escaped): a notice with a link. */
  noticeHtml?: string;
  secret?: string;
  editError?: string;
  editForm?: Record<string, string>;
  testError?: string;
  testType?: string;
  recoverError?: string;
  recoverForm?: Record<string, string>;
}

export function endpointRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession, postSession } = sessions;

  /** The list; fifo endpoints with their head (one more read each: fifo endpoints are few). */
  async function listWithHeads(s: Session): Promise<Ep[]> {
    const { data } = await listEndpoints(deps, s.caller);
    return Promise.all(data.map((e) => (e.ordering === 'fifo' ? getEndpoint(deps, s.caller, e.id) : e)));
  }

  async function endpointsPage(reply: FastifyReply, s: Session, status: number, opts: { notice?: string; error?: string; secret?: string; form?: Record<string, string> } = {}) {
    const data = await listWithHeads(s);
    const f = opts.form ?? {};
    const rowsHtml = data.map((e) => `<tr data-testid="endpoint-row" data-endpoint-id="${esc(e.id)}">
<td data-label="URL" class="minw"><div><a href="${epPath(e.id)}" data-testid="manage"><code>${esc(e.url)}</code></a><br><span class="muted"><code>${esc(e.id)}</code></span></div></td>
<td data-label="Status"><div>${statusHtml(e)}</div></td>
<td data-label="Format" class="nw"><div>${esc(e.format)}${e.ordering === 'fifo' ? ' <span class="muted">(fifo)</span>' : ''}</div></td>
<td data-label="Events" class="minw-s"><div>${e.events.map((t) => `<code>${esc(t)}</code>`).join(', ')}</div></td>
<td data-label="Health"><div>${healthHtml(e)}</div></td>
<td data-label="Actions" class="nw-wide"><div><a href="${epPath(e.id)}">Manage</a><br>${e.status === 'enabled' ? epAction(s, e, 'disable', 'Disable') : epAction(s, e, 'enable', 'Enable')} ${epAction(s, e, 'rotate', 'Rotate secret')}</div></td></tr>`).join('\n');
    const body = `${opts.secret ?? ''}
 <div class="card"><h1>Endpoints</h1>
 ${opts.notice ? `<p class="notice" role="status" data-testid="notice">${esc(opts.notice)}</p>` : ''}
 ${data.length === 0 ? '<p class="muted" data-testid="no-endpoints">No endpoint yet.</p>' : `<table class="stack"><thead><tr><th>URL</th><th>Status</th><th class="nw">Format</th><th>Events</th><th>Health</th><th></th></tr></thead><tbody>
 ${rowsHtml}</tbody></table>`}
 <p class="muted">Open an endpoint to edit it, reveal its secret, recover failed deliveries or send a test event.</p></div>
 <div class="card"><h2>Add an endpoint</h2>
 <form method="post" action="/dashboard/endpoints" data-testid="create-endpoint">${hidden(s)}
<div class="filters">
 <div><label for="ep-url">URL</label><input id="ep-url" name="url" required maxlength="2048" placeholder="https://example.com/webhooks" value="${esc(f.url ?? '')}"></div>
 <div><label for="ep-events">Events (comma-separated, or *)</label><input id="ep-events" name="events" required maxlength="4000" value="${esc(f.events ?? '*')}"></div>
 <div><label for="ep-format">Format</label><select id="ep-format" name="format">${FORMATS.map((v) => option(v, f.format ?? 'pushcash')).join('')}</select></div>
 <div><button class="primary" type="submit" id="create-endpoint">Add endpoint</button></div>
</div>
${formError(opts.error, 'error')}
 </form></div>`;
    return send(reply, status, layout('Endpoints', body, s));
  }

  async function detailPage(reply: FastifyReply, s: Session, status: number, e: Ep, o: DetailOpts = {}) {
    const ef = o.editForm ?? { url: e.url, events: e.events.join(', '), format: e.format, ordering: e.ordering };
    const now = deps.clock.now();
    // The last 24 hours, up to the next minute (inputs are to the minute: this one, rounded down, would leave out its events).
    const nextMinute = new Date(Math.floor(now.getTime() / 60_000) * 60_000 + 60_000);
    const rf = o.recoverForm ?? { since: inputValue(new Date(nextMinute.getTime() - 86_400_000)), until: inputValue(nextMinute) };
    const subscribed = e.events.filter((t) => t !== '*' && TEST_EVENT_TYPES.includes(t));
    const testType = o.testType ?? subscribed[0] ?? (e.format === 'sendcash' ? 'Payment.Status' : 'intent.approved');
    const body = `<p><a href="/dashboard/endpoints">← Endpoints</a></p>
 ${o.secret ?? ''}
 <div class="card" data-testid="endpoint"><h1><code>${esc(e.url)}</code></h1>
 ${o.notice ? `<p class="notice" role="status" data-testid="notice">${esc(o.notice)}</p>` : ''}${o.noticeHtml ? `<p class="notice" role="status" data-testid="notice">${o.noticeHtml}</p>` : ''}
 <dl><dt>Endpoint</dt><dd><code data-testid="endpoint-id">${esc(e.id)}</code></dd>
  <dt>Status</dt><dd>${statusHtml(e)}</dd>
  <dt>Health</dt><dd data-testid="health">${healthHtml(e)}</dd>
  <dt>Format</dt><dd>${esc(e.format)} (payload ${esc(e.payload_version)}), ${esc(e.ordering)}</dd>
  <dt>Events</dt><dd>${e.events.map((t) => `<code>${esc(t)}</code>`).join(', ')}</dd>
  ${e.secret_rotation ? `<dt>Rotation</dt><dd>the previous secret is valid until ${when(e.secret_rotation.previous_valid_until)}</dd>` : ''}</dl>
 <p>${e.status === 'enabled' ? epAction(s, e, 'disable', 'Disable') : epAction(s, e, 'enable', 'Enable')} ${epAction(s, e, 'rotate', 'Rotate secret')}
 <form method="post" action="${epPath(e.id, 'secret')}" style="display:inline">${hidden(s)}<button type="submit" id="reveal" data-testid="reveal">Reveal secret</button></form></p></div>

 <div class="card"><h2>Send a test event</h2>
 <p class="muted">A real event of the chosen type with example data (its ids say <code>test</code>), to this endpoint only, signed with its secret.
 A type it does not subscribe to is sent too: you asked for it.</p>
 <form method="post" action="${epPath(e.id, 'test')}" data-testid="test-form">${hidden(s)}
 <div class="filters"><div><label for="test-type">Event type</label><select id="test-type" name="type">${TEST_EVENT_TYPES.map((t) => option(t, testType)).join('')}</select></div>
 <div><button class="primary" type="submit" id="send-test">Send test event</button></div></div>
 ${formError(o.testError, 'test-error')}</form></div>

 <div class="card"><h2>Edit</h2>
 <form method="post" action="${epPath(e.id, 'edit')}" data-testid="edit-form">${hidden(s)}
 <div class="filters">
  <div style="grid-column:1/-1"><label for="edit-url">URL</label><input id="edit-url" name="url" required maxlength="2048" value="${esc(ef.url ?? '')}"></div>
  <div style="grid-column:1/-1"><label for="edit-events">Events (comma-separated, or *)</label><input id="edit-events" name="events" required maxlength="4000" value="${esc(ef.events ?? '')}"></div>
  <div><label for="edit-format">Format</label><select id="edit-format" name="format">${FORMATS.map((v) => option(v, ef.format ?? e.format)).join('')}</select></div>
  <div><label for="edit-ordering">Ordering</label><select id="edit-ordering" name="ordering">${ORDERINGS.map((v) => option(v, ef.ordering ?? e.ordering)).join('')}</select></div>
  <div><button class="primary" type="submit" id="save-endpoint">Save</button></div>
 </div>
 <p class="muted">A new format makes a new secret at once (shown once), with no grace period for the old one. fifo: one delivery at a time, in event order; a failing one holds back the rest.</p>
 ${formError(o.editError, 'edit-error')}</form></div>

 <div class="card"><h2>Recover failed deliveries</h2>
 <p class="muted">Sends again every event of this window whose latest delivery to this endpoint failed, expired or went dead (same event id).
 Times are <strong>UTC</strong>; at most ${MAX_RECOVER_DAYS} days, not in the future.</p>
 <form method="post" action="${epPath(e.id, 'recover')}" data-testid="recover-form">${hidden(s)}
 <div class="filters">
  <div><label for="recover-since">Since (UTC)</label><input id="recover-since" name="since" type="datetime-local" required value="${esc(rf.since ?? '')}"></div>
  <div><label for="recover-until">Until (UTC)</label><input id="recover-until" name="until" type="datetime-local" required value="${esc(rf.until ?? '')}"></div>
  <div><button class="primary" type="submit" id="recover">Recover</button></div>
 </div>
 ${formError(o.recoverError, 'recover-error')}</form></div>`;
    return send(reply, status, layout(`Endpoint ${e.id}`, body, s));
  }

  const idOf = (req: FastifyRequest) => String((req.params as { id?: unknown }).id ?? '');
  const checkId = (id: string) => {
    if (id.length === 0 || id.length > 128) throw errors.notFound('endpoint', id.slice(0, 128));
  };
  const notFound = (reply: FastifyReply, s: Session, id: string) =>
    errorPage(reply, 404, 'Endpoint not found', `There is no endpoint ${id.slice(0, 128)} in the ${s.caller.environment}.`, s);
  /** The endpoint of the route, or (having answered 404) null. */
  async function endpointOf(req: FastifyRequest, reply: FastifyReply, s: Session): Promise<Ep | null> {
    const id = idOf(req);
    try {
      checkId(id);
      return await getEndpoint(deps, s.caller, id);
    } catch (e) {
      if (e instanceof DomainError) {
        notFound(reply, s, id);
        return null;
      }
      throw e;
    }
  }

  app.get('/dashboard/endpoints', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const done = str(((req.query ?? {}) as Record<string, unknown>).done);
    const notice = done === 'disabled' ? 'Disabled: its deliveries are held until it is enabled.' : done === 'enabled' ? 'Enabled: held deliveries are on their way.' : undefined;
    return endpointsPage(reply, s, 200, { notice });
  });

  app.post('/dashboard/endpoints', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const b = (req.body ?? {}) as Record<string, unknown>;
    const form = { url: str(b.url)?.trim() ?? '', events: str(b.events) ?? '', format: str(b.format) ?? 'pushcash' };
    try {
      const url = parseUrl(form.url);
      const events = parseEvents(form.events);
      const format = FORMATS.find((x) => x === form.format);
      if (!format) throw errors.validation('format', 'format must be pushcash, standard or sendcash', 'invalid_format');
      const made = await createEndpoint(deps, s.caller, { url, events, format });
      return endpointsPage(reply, s, 200, { notice: `Endpoint ${made.id} added.`, secret: secretCard('Endpoint added', made.id, made.secret) });
    } catch (e) {
      if (e instanceof DomainError) return endpointsPage(reply, s, httpStatus(e), { error: e.message, form });
      throw e;
    }
  });

  app.get('/dashboard/endpoints/:id', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const e = await endpointOf(req, reply, s);
    if (!e) return reply;
    const q = (req.query ?? {}) as Record<string, unknown>;
    const sent = str(q.sent);
    const recovered = str(q.recovered);
    let noticeHtml: string | undefined;
    let notice: string | undefined;
    const sentType = str(q.type);
    const testType = sentType && TEST_EVENT_TYPES.includes(sentType) ? sentType : undefined;
    if (sent && /^evt_[A-Za-z0-9_-]{1,100}$/.test(sent)) {
      noticeHtml = `Test event ${testType ? `<code>${esc(testType)}</code> ` : ''}<a href="/dashboard/events/${encodeURIComponent(sent)}" data-testid="test-event-link"><code>${esc(sent)}</code></a> queued for this endpoint${str(q.held) === '1' ? ' (held: the endpoint is disabled)' : ''}.${str(q.unsubscribed) === '1' ? ' It does not subscribe to that type: sent anyway, as a test.' : ''} Open it to see its delivery.`;
    } else if (recovered && /^\d{1,9}$/.test(recovered)) {
      notice = `Recovered: ${recovered} ${recovered === '1' ? 'delivery' : 'deliveries'} queued again.`;
    } else if (str(q.done) === 'edited') notice = 'Saved.';
    return detailPage(reply, s, 200, e, { notice, noticeHtml, testType });
  });

  app.post('/dashboard/endpoints/:id/edit', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const e = await endpointOf(req, reply, s);
    if (!e) return reply;
    const b = (req.body ?? {}) as Record<string, unknown>;
    const form = { url: str(b.url)?.trim() ?? '', events: str(b.events) ?? '', format: str(b.format) ?? e.format, ordering: str(b.ordering) ?? e.ordering };
    try {
      const url = parseUrl(form.url);
      const events = parseEvents(form.events);
      const format = FORMATS.find((x) => x === form.format);
      if (!format) throw errors.validation('format', 'format must be pushcash, standard or sendcash', 'invalid_format');
      const ordering = ORDERINGS.find((x) => x === form.ordering);
      if (!ordering) throw errors.validation('ordering', 'ordering must be unordered or fifo', 'invalid_value');
      const updated = await updateEndpoint(deps, s.caller, e.id, { url, events, format, ordering });
      if (format !== e.format) {
        // The service made a secret of the new format's shape: shown here once, as at creation.
        const r = await revealSecret(deps, s.caller, e.id);
        return detailPage(reply, s, 200, await getEndpoint(deps, s.caller, e.id), {
          notice: `Saved. The format is now ${updated.format}: a new secret signs from now on.`, secret: secretCard('New secret', e.id, r.secret),
        });
      }
    } catch (err) {
      if (err instanceof DomainError) return detailPage(reply, s, err.code === 'endpoint_not_found' ? 404 : httpStatus(err), e, { editError: err.message, editForm: form });
      throw err;
    }
    return reply.status(303).header('location', `${epPath(e.id)}?done=edited`).header('cache-control', 'no-store').send();
  });

  app.post('/dashboard/endpoints/:id/secret', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const id = idOf(req);
    let r: Awaited<ReturnType<typeof revealSecret>>;
    try {
      checkId(id);
      r = await revealSecret(deps, s.caller, id);
    } catch (e) {
      if (e instanceof DomainError) return notFound(reply, s, id);
      throw e;
    }
    const body = `<p><a href="${epPath(r.id)}">← Back to the endpoint</a></p>
 <div class="card" data-testid="secret-card"><h1>Signing secret</h1>
 <p class="error" role="alert">Anyone with this secret can sign webhooks your receiver will trust. Do not share it or leave it on screen; this page is not cached, and the secret is shown nowhere else on the dashboard.</p>
 <dl><dt>Endpoint</dt><dd><code>${esc(r.id)}</code></dd></dl>
 <h2 style="margin-top:12px">Current secret</h2><pre data-testid="secret">${esc(r.secret)}</pre>
 ${r.previous_secret ? `<h2>Previous secret</h2><p class="muted">Still valid until ${when(r.previous_valid_until)} (the rotation's grace period).</p><pre data-testid="previous-secret">${esc(r.previous_secret)}</pre>` : ''}
 </div>`;
    return send(reply, 200, layout('Signing secret', body, s));
  });

  app.post('/dashboard/endpoints/:id/recover', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const e = await endpointOf(req, reply, s);
    if (!e) return reply;
    const b = (req.body ?? {}) as Record<string, unknown>;
    const form = { since: str(b.since)?.slice(0, 40) ?? '', until: str(b.until)?.slice(0, 40) ?? '' };
    let recovered: number;
    try {
      const w = recoverWindow(form.since, form.until, deps.clock.now());
      recovered = (await recoverEndpoint(deps, s.caller, e.id, { since: w.since.toISOString(), until: w.until.toISOString() })).recovered;
    } catch (err) {
      if (err instanceof DomainError) return detailPage(reply, s, err.code === 'endpoint_not_found' ? 404 : httpStatus(err), e, { recoverError: err.message, recoverForm: form });
      throw err;
    }
    return reply.status(303).header('location', `${epPath(e.id)}?recovered=${recovered}`).header('cache-control', 'no-store').send();
  });

  app.post('/dashboard/endpoints/:id/test', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const e = await endpointOf(req, reply, s);
    if (!e) return reply;
    const type = str(((req.body ?? {}) as Record<string, unknown>).type) ?? '';
    let r: Awaited<ReturnType<typeof sendTestEvent>>;
    try {
      r = await sendTestEvent(deps, s.caller, e.id, type);
    } catch (err) {
      if (err instanceof DomainError) return detailPage(reply, s, err.code === 'endpoint_not_found' ? 404 : httpStatus(err), e, { testError: err.message, testType: type });
      throw err;
    }
    const q = new URLSearchParams({ sent: r.event_id, type: r.type, ...(r.held ? { held: '1' } : {}), ...(r.subscribed ? {} : { unsubscribed: '1' }) });
    return reply.status(303).header('location', `${epPath(e.id)}?${q}`).header('cache-control', 'no-store').send();
  });

  for (const action of ['disable', 'enable'] as const) {
    app.post(`/dashboard/endpoints/:id/${action}`, HIDE, async (req, reply) => {
      const s = await postSession(req, reply);
      if (!s) return reply;
      const id = idOf(req);
      try {
        checkId(id);
        await setEnabled(deps, s.caller, id, action === 'enable');
      } catch (e) {
        if (e instanceof DomainError) return errorPage(reply, httpStatus(e), `Cannot ${action}`, e.message, s);
        throw e;
      }
      return reply.status(303).header('location', `/dashboard/endpoints?done=${action}d`).header('cache-control', 'no-store').send();
    });
  }

  app.post('/dashboard/endpoints/:id/rotate', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const id = idOf(req);
    try {
      checkId(id);
      const r = await rotateSecret(deps, s.caller, id);
      const until = r.secret_rotation ? ` The previous secret stays valid until ${r.secret_rotation.previous_valid_until.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}.` : '';
      return endpointsPage(reply, s, 200, { notice: `Secret of ${r.id} rotated.${until}`, secret: secretCard('New secret', r.id, r.secret) });
    } catch (e) {
      if (e instanceof DomainError) return errorPage(reply, httpStatus(e), 'Cannot rotate', e.message, s);
      throw e;
    }
  });
}
