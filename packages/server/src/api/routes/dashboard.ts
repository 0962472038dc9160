/**
 * The dashboard, first slice (issue 16): sign-in with an API key, the events list, one event with its deliveries and
 * attempts, resend. Server-rendered HTML, plain forms and links, no JavaScript at all (so no library to serve, and a
 * Content-Security-Policy without any script source).
 *
 * Sign-in: POST /dashboard/sign-in checks the key as the API does (api_keys by hashKey, revoked keys refused) and
 * answers with a cookie `cw_dashboard` (HttpOnly, SameSite=Strict, Path=/dashboard, Max-Age 12 h, Secure when the
 * request came over HTTPS) holding 32 random bytes; only their SHA-256 is stored (dashboard_sessions, migration 017)
 * with the key's operator and environment and the session's CSRF token. A session sees the environment of the key it
 * was made with, nothing else; revoking that key ends it at the next request.
 * CSRF: every POST form carries the session's token (field `csrf`, compared in constant time); every POST (sign-in
 * too, against login CSRF) is refused when it carries an Origin header that is not the server's own. SameSite=Strict
 * is a second line.
 * Rate limits: the dashboard never calls authenticate() (api/auth.ts), so none of its requests is counted in the
 * key's `create`, `read` or `cli` budgets: an open tab cannot push the operator's backend into 429s. (A budget of its
 * own is still to come: issue 16.)
 *
 * Second slice: /dashboard/endpoints lists the session's endpoints (status and disabled reason, format, events,
 * health) through delivery/endpoints.ts's services, the same the API's /webhook/endpoints routes call. Creating one
 * (url, events comma-separated or `*`, format) and rotating a secret answer with a page (200, no redirect) that shows
 * the new secret that one time: it is not kept anywhere for a later page, and the list never shows a secret (reveal on
 * an explicit click is still to come). Disable and enable redirect back to the list. "Send a test event" is not here:
 * no service for it exists yet. /dashboard/clock (sandbox only; a production session gets a notice, and its POST a 403
 * page) shows the total advanced (clockState) and advances by a duration ("2m", parseDuration) through advanceClock,
 * the service of POST /sandbox/clock/advance, and shows what moved.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constantTimeEqual } from '@cashwire/webhooks';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Caller, Deps } from '../../payments/context.js';
import { getEvent, listEvents, resendEvent } from '../../payments/events/events.js';
import { advanceClock, clockState, parseDuration, type ClockAdvance } from '../../payments/clock/clock.js';
import { createEndpoint, listEndpoints, rotateSecret, setEnabled } from '../../delivery/endpoints.js';
import { errors } from '../../domain/errors.js';
import { hashKey } from '../../payments/operators/operators.js';
import type { OperatorSettings } from '../../store/rows.js';
import { DomainError, httpStatus } from '../errors.js';
import { esc } from './hosted-brand.js';

const COOKIE = 'cw_dashboard';
const SESSION_MS = 12 * 3600 * 1000;
const PAGE_SIZE = 50;
const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed', 'expired', 'dead'] as const;
const HIDE = { schema: { hide: true } } as const;
/** The only form fields the dashboard reads; any other is dropped by the parser. */
const FORM_FIELDS = new Set(['key', 'csrf', 'url', 'events', 'format', 'duration']);
const FORMATS = ['pushcash', 'standard', 'sendcash'] as const;

interface Session { caller: Caller; csrf: string; idHash: Buffer }

const STYLE = `
 *{box-sizing:border-box}
 body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f6fb;margin:0;color:#14213d;line-height:1.4}
 a{color:#1d4ed8} a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}
 header{background:#fff;border-bottom:1px solid #e3e7ef;padding:10px 16px;display:flex;align-items:center;gap:12px;flex-wrap:wrap}
 header .brand{font-weight:700;color:#14213d;text-decoration:none} header .who{color:#5c677d;font-size:.9rem;margin-left:auto}
 header form{margin:0}
 .env{display:inline-block;border-radius:4px;padding:2px 8px;font-size:.75rem;font-weight:600}
 .env.sandbox{background:#fff3cd;color:#7a5a00} .env.production{background:#dcfce7;color:#166534}
 .wrap{max-width:1100px;margin:0 auto;padding:24px 16px}
 .card{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001;padding:20px;margin-bottom:16px;overflow-wrap:anywhere}
 .narrow{max-width:420px;margin:48px auto}
 h1{font-size:1.2rem;margin:0 0 12px} h2{font-size:1rem;margin:0 0 8px} .muted{color:#5c677d;font-size:.9rem} p{margin:8px 0}
 label{display:block;font-weight:600;font-size:.85rem;margin:12px 0 4px} .filters label{margin-top:0}
 input,select{font:inherit;padding:8px 10px;border:1px solid #8792a2;border-radius:8px;background:#fff;color:#14213d;width:100%}
 button{font:inherit;border-radius:8px;padding:8px 14px;border:1px solid #c5cbd8;background:#fff;color:#14213d;cursor:pointer;white-space:nowrap}
 button.primary{background:#1d4ed8;border-color:#1d4ed8;color:#fff;font-weight:600}
 .filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;align-items:end}
 .error{color:#b91c1c;font-weight:600} .notice{color:#15803d;font-weight:600}
 table{width:100%;border-collapse:collapse;font-size:.9rem} th{text-align:left;color:#5c677d;font-weight:600;font-size:.8rem}
 th,td{padding:8px 6px;border-bottom:1px solid #eef1f6;vertical-align:top} tr:last-child td{border-bottom:0}
 code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
 pre{background:#f6f8fc;border:1px solid #e3e7ef;border-radius:8px;padding:12px;overflow:auto;max-height:480px;white-space:pre-wrap;word-break:break-all}
 .status{display:inline-block;border-radius:4px;padding:1px 6px;font-size:.8rem;font-weight:600;background:#eef1f6;white-space:nowrap}
 .status.succeeded{background:#dcfce7;color:#166534} .status.failed,.status.dead,.status.expired{background:#fee2e2;color:#991b1b}
 .status.pending{background:#fff3cd;color:#7a5a00}
 .row{display:flex;gap:12px;align-items:center;flex-wrap:wrap;justify-content:space-between}
 dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0} dt{color:#5c677d;font-size:.85rem} dd{margin:0}
 .pager{margin-top:12px} .nw{white-space:nowrap}
 @media (max-width:640px){
  .wrap{padding:12px 8px} .card{padding:14px}
  table.stack thead{display:none} table.stack tr{display:block;border-bottom:1px solid #eef1f6;padding:6px 0}
  table.stack td{display:flex;gap:8px;border:0;padding:3px 4px} table.stack td::before{content:attr(data-label);color:#5c677d;font-size:.8rem;min-width:80px}
  dl{grid-template-columns:1fr} dd{margin-bottom:6px} .filters{grid-template-columns:1fr}
 }`;

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function send(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .send(html);
}

function layout(title: string, body: string, s?: Session): string {
  const head = s
    ? `<header><a class="brand" href="/dashboard/events">Cashwire</a>
 <span class="env ${esc(s.caller.environment)}" data-testid="environment">${esc(s.caller.environment.toUpperCase())}</span>
 <nav><a href="/dashboard/events">Events</a> · <a href="/dashboard/endpoints" id="nav-endpoints">Endpoints</a> · <a href="/dashboard/clock" id="nav-clock">Clock</a></nav>
 <span class="who">${esc(s.caller.operatorName)}</span>
 <form method="post" action="/dashboard/sign-out"><input type="hidden" name="csrf" value="${esc(s.csrf)}"><button type="submit" id="sign-out">Sign out</button></form>
</header>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · Cashwire dashboard</title><style>${STYLE}</style></head>
<body>${head}<div class="wrap">${body}</div></body></html>`;
}

function errorPage(reply: FastifyReply, status: number, title: string, message: string, s?: Session): FastifyReply {
  return send(reply, status, layout(title, `<div class="card"><h1>${esc(title)}</h1><p class="error" data-testid="error">${esc(message)}</p>
 <p><a href="/dashboard/events">Back to events</a></p></div>`, s));
}

function signInPage(error?: string): string {
  return layout('Sign in', `<div class="card narrow"><h1>Sign in to the dashboard</h1>
 <p class="muted">With an API key: a sandbox key shows the sandbox, a production key production.</p>
 <form method="post" action="/dashboard/sign-in">
  <label for="key">API key</label>
  <input id="key" name="key" type="password" autocomplete="off" required maxlength="256">
  ${error ? `<p class="error" role="alert" data-testid="error">${esc(error)}</p>` : ''}
  <p><button class="primary" type="submit" id="sign-in">Sign in</button></p>
 </form></div>`);
}

const when = (iso: string | null | undefined) => (iso ? esc(iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC')) : '');

/** A string from a query value or a form field: the first of repeated ones, nothing for anything else. */
function str(v: unknown): string | undefined {
  if (Array.isArray(v)) v = v[0];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function cookieOf(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === COOKIE) return part.slice(i + 1).trim();
  }
  return undefined;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

function cookieHeader(req: FastifyRequest, value: string, maxAgeS: number): string {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  return `${COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=${maxAgeS}${secure}`;
}

/** POSTs from another site's page are refused: a browser sends Origin with every form POST. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return typeof origin === 'string' && new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

export function dashboardRoutes(deps: Deps): FastifyPluginAsync {
  async function sessionOf(req: FastifyRequest): Promise<Session | null> {
    const raw = cookieOf(req);
    if (!raw || !/^[A-Za-z0-9_-]{43}$/.test(raw)) return null;
    const idHash = sha256(raw);
    const { rows } = await deps.db.query<{ operator_id: string; environment: 'sandbox' | 'production'; key_id: string; csrf: string; name: string; settings: OperatorSettings }>(
      `SELECT s.operator_id, s.environment, s.key_id, s.csrf, o.name, o.settings
         FROM dashboard_sessions s
         JOIN operators o ON o.id = s.operator_id
         JOIN api_keys k ON k.id = s.key_id AND k.revoked_at IS NULL
        WHERE s.id_hash = $1 AND s.expires_at > $2`,
      [idHash, deps.clock.now()],
    );
    const r = rows[0];
    if (!r) return null;
    return { idHash, csrf: r.csrf, caller: { keyId: r.key_id, operatorId: r.operator_id, operatorName: r.name, environment: r.environment, settings: r.settings ?? {} } };
  }

  /** The session of a POST whose CSRF token matches; else the refusal has been sent and null is returned. */
  async function postSession(req: FastifyRequest, reply: FastifyReply): Promise<Session | null> {
    if (!sameOrigin(req)) {
      errorPage(reply, 403, 'Request refused', 'This form was sent from another site.');
      return null;
    }
    const s = await sessionOf(req);
    if (!s) {
      void reply.status(303).header('location', '/dashboard/sign-in').header('cache-control', 'no-store').send();
      return null;
    }
    const token = str((req.body as Record<string, unknown> | undefined)?.csrf);
    if (!token || !constantTimeEqual(token, s.csrf)) {
      errorPage(reply, 403, 'Request refused', 'The form is missing its security token, or it is out of date. Reload the page and try again.', s);
      return null;
    }
    return s;
  }

  const toSignIn = (reply: FastifyReply) => reply.status(303).header('location', '/dashboard/sign-in').header('cache-control', 'no-store').send();

  return async (app) => {
    // Forms post application/x-www-form-urlencoded: parsed here, for the dashboard's routes only.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
      const out: Record<string, string> = {};
      for (const [k, v] of new URLSearchParams(body as string)) {
        if (FORM_FIELDS.has(k) && !(k in out)) out[k] = v.replace(/\u0000/g, '');
      }
      done(null, out);
    });

    app.get('/dashboard', HIDE, async (_req, reply) => reply.status(303).header('location', '/dashboard/events').send());

    app.get('/dashboard/sign-in', HIDE, async (_req, reply) => send(reply, 200, signInPage()));

    app.post('/dashboard/sign-in', HIDE, async (req, reply) => {
      if (!sameOrigin(req)) return errorPage(reply, 403, 'Request refused', 'This form was sent from another site.');
      const key = str((req.body as Record<string, unknown> | undefined)?.key)?.trim();
      const { rows } = key && key.length <= 256
        ? await deps.db.query<{ id: string; operator_id: string; environment: string }>(
          'SELECT id, operator_id, environment FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
          [hashKey(key)],
        )
        : { rows: [] };
      const k = rows[0];
      if (!k) return send(reply, 401, signInPage('That API key is not valid, or it was revoked.'));
      const raw = randomBytes(32).toString('base64url');
      const now = deps.clock.now();
      await deps.db.query('DELETE FROM dashboard_sessions WHERE expires_at <= $1', [now]);
      await deps.db.query(
        `INSERT INTO dashboard_sessions (id_hash, operator_id, environment, key_id, csrf, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [sha256(raw), k.operator_id, k.environment, k.id, randomBytes(24).toString('base64url'), now, new Date(now.getTime() + SESSION_MS)],
      );
      return reply.status(303).header('set-cookie', cookieHeader(req, raw, SESSION_MS / 1000)).header('location', '/dashboard/events').header('cache-control', 'no-store').send();
    });

    app.post('/dashboard/sign-out', HIDE, async (req, reply) => {
      const s = await postSession(req, reply);
      if (!s) return reply;
      await deps.db.query('DELETE FROM dashboard_sessions WHERE id_hash = $1', [s.idHash]);
      return reply.status(303).header('set-cookie', cookieHeader(req, '', 0)).header('location', '/dashboard/sign-in').header('cache-control', 'no-store').send();
    });

    app.get('/dashboard/events', HIDE, async (req, reply) => {
      const s = await sessionOf(req);
      if (!s) return toSignIn(reply);
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
      const s = await sessionOf(req);
      if (!s) return toSignIn(reply);
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
    // ---- Endpoints ----------------------------------------------------------------------------------------------

    type Ep = Awaited<ReturnType<typeof listEndpoints>>['data'][number];
    const hidden = (s: Session) => `<input type="hidden" name="csrf" value="${esc(s.csrf)}">`;
    const epAction = (s: Session, e: Ep, action: 'disable' | 'enable' | 'rotate', label: string) =>
      `<form method="post" action="/dashboard/endpoints/${encodeURIComponent(e.id)}/${action}" style="display:inline">${hidden(s)}<button type="submit" data-testid="${action}">${esc(label)}</button></form>`;

    function secretCard(title: string, id: string, secret: string): string {
      return `<div class="card" data-testid="secret-card"><h2>${esc(title)}</h2>
  <p>The signing secret of <code>${esc(id)}</code>. <strong>Copy it now: it is shown this once</strong>, never again on these pages.</p>
  <pre data-testid="secret">${esc(secret)}</pre></div>`;
    }

    async function endpointsPage(reply: FastifyReply, s: Session, status: number, opts: { notice?: string; error?: string; secret?: string; form?: Record<string, string> } = {}) {
      const { data } = await listEndpoints(deps, s.caller);
      const f = opts.form ?? {};
      const rowsHtml = data.map((e) => {
        const health = e.health.circuit === 'open'
          ? `<span class="status failed">circuit open</span>${e.health.circuit_retry_at ? ` <span class="muted">probe ${when(e.health.circuit_retry_at)}</span>` : ''}`
          : '<span class="status">circuit closed</span>';
        const failing = e.health.consecutive_failures > 0
          ? `<br><span class="muted">${esc(String(e.health.consecutive_failures))} failures${e.health.failing_since ? `, since ${when(e.health.failing_since)}` : ''}</span>` : '';
        return `<tr data-testid="endpoint-row" data-endpoint-id="${esc(e.id)}">
  <td data-label="URL"><div><code>${esc(e.url)}</code><br><span class="muted"><code>${esc(e.id)}</code></span></div></td>
  <td data-label="Status"><div><span class="status ${e.status === 'enabled' ? 'succeeded' : 'failed'}" data-testid="endpoint-status">${esc(e.status)}</span>${e.disabled_reason ? `<br><span class="muted" data-testid="disabled-reason">${esc(e.disabled_reason)}${e.disabled_at ? `, ${when(e.disabled_at)}` : ''}</span>` : ''}</div></td>
  <td data-label="Format" class="nw"><div>${esc(e.format)}${e.ordering === 'fifo' ? ' <span class="muted">(fifo)</span>' : ''}</div></td>
  <td data-label="Events"><div>${e.events.map((t) => `<code>${esc(t)}</code>`).join(', ')}</div></td>
  <td data-label="Health"><div>${health}${failing}</div></td>
  <td data-label="Actions"><div>${e.status === 'enabled' ? epAction(s, e, 'disable', 'Disable') : epAction(s, e, 'enable', 'Enable')} ${epAction(s, e, 'rotate', 'Rotate secret')}</div></td></tr>`;
      }).join('\n');
      const opt = (v: string) => `<option value="${v}"${(f.format ?? 'pushcash') === v ? ' selected' : ''}>${v}</option>`;
      const body = `${opts.secret ?? ''}
 <div class="card"><h1>Endpoints</h1>
 ${opts.notice ? `<p class="notice" role="status" data-testid="notice">${esc(opts.notice)}</p>` : ''}
 ${data.length === 0 ? '<p class="muted" data-testid="no-endpoints">No endpoint yet.</p>' : `<table class="stack"><thead><tr><th>URL</th><th>Status</th><th class="nw">Format</th><th>Events</th><th>Health</th><th></th></tr></thead><tbody>
 ${rowsHtml}</tbody></table>`}
 <p class="muted">Sending a test event from here is not available yet.</p></div>
 <div class="card"><h2>Add an endpoint</h2>
 <form method="post" action="/dashboard/endpoints" data-testid="create-endpoint">${hidden(s)}
  <div class="filters">
   <div><label for="ep-url">URL</label><input id="ep-url" name="url" required maxlength="2048" placeholder="https://example.com/webhooks" value="${esc(f.url ?? '')}"></div>
   <div><label for="ep-events">Events (comma-separated, or *)</label><input id="ep-events" name="events" required maxlength="4000" value="${esc(f.events ?? '*')}"></div>
   <div><label for="ep-format">Format</label><select id="ep-format" name="format">${FORMATS.map(opt).join('')}</select></div>
   <div><button class="primary" type="submit" id="create-endpoint">Add endpoint</button></div>
  </div>
  ${opts.error ? `<p class="error" role="alert" data-testid="error">${esc(opts.error)}</p>` : ''}
 </form></div>`;
      return send(reply, status, layout('Endpoints', body, s));
    }

    app.get('/dashboard/endpoints', HIDE, async (req, reply) => {
      const s = await sessionOf(req);
      if (!s) return toSignIn(reply);
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
        const events = form.events.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
        if (form.url.length === 0 || form.url.length > 2048) throw errors.validation('url', 'url must be an absolute http(s) URL of at most 2048 characters', 'invalid_url');
        if (events.length === 0 || events.length > 50 || events.some((t) => t.length > 64)) throw errors.validation('events', 'events: one to 50 event types, comma-separated, or *', 'invalid_value');
        const format = FORMATS.find((x) => x === form.format);
        if (!format) throw errors.validation('format', 'format must be pushcash, standard or sendcash', 'invalid_format');
        const made = await createEndpoint(deps, s.caller, { url: form.url, events, format });
        return endpointsPage(reply, s, 200, { notice: `Endpoint ${made.id} added.`, secret: secretCard('Endpoint added', made.id, made.secret) });
      } catch (e) {
        if (e instanceof DomainError) return endpointsPage(reply, s, httpStatus(e), { error: e.message, form });
        throw e;
      }
    });

    const idOf = (req: FastifyRequest) => String((req.params as { id?: unknown }).id ?? '');
    const checkId = (id: string) => {
      if (id.length === 0 || id.length > 128) throw errors.notFound('endpoint', id.slice(0, 128));
    };

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

    // ---- Sandbox clock ------------------------------------------------------------------------------------------

    const seconds = (n: number) => {
      const parts: string[] = [];
      for (const [u, k] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
        if (n >= k || (u === 's' && parts.length === 0)) { parts.push(`${Math.floor(n / k)}${u}`); n %= k; }
      }
      return parts.join(' ');
    };

    async function clockPage(reply: FastifyReply, s: Session, status: number, opts: { error?: string; advanced?: ClockAdvance; duration?: string } = {}) {
      if (s.caller.environment !== 'sandbox') {
        return send(reply, status, layout('Sandbox clock', `<div class="card"><h1>Sandbox clock</h1>
 <p class="notice" data-testid="clock-notice">The test clock exists in the sandbox only: sign in with a sandbox key to advance it. Production always runs on real time.</p></div>`, s));
      }
      const st = await clockState(deps, s.caller);
      const a = opts.advanced;
      const moved = a ? `<div class="card" data-testid="advanced"><h2>Advanced by ${esc(seconds(a.advanced_by_seconds))}</h2>
  <p class="notice" role="status">What came due earlier:</p>
  <dl data-testid="moved">${Object.entries(a.moved).map(([k, v]) => `<dt>${esc(k.replace(/_/g, ' '))}</dt><dd data-testid="moved-${esc(k)}">${esc(String(v))}</dd>`).join('')}</dl></div>` : '';
      const body = `${moved}<div class="card"><h1>Sandbox clock</h1>
 <dl><dt>Advanced in all</dt><dd data-testid="clock-total">${esc(seconds(st.total_advanced_seconds))}</dd>
  <dt>Advances</dt><dd>${esc(String(st.advances))}</dd>
  ${st.last_advanced_at ? `<dt>Last advanced</dt><dd>${when(st.last_advanced_at)}</dd>` : ''}</dl>
 <p class="muted">Advancing moves this sandbox's pending retries, settlements and expiries earlier, as if the time had passed. Production and other operators are untouched.</p>
 <form method="post" action="/dashboard/clock/advance" data-testid="advance-form">${hidden(s)}
  <div class="filters">
   <div><label for="duration">Advance by</label><input id="duration" name="duration" required maxlength="32" placeholder="e.g. 2m, 1h, 1d" value="${esc(opts.duration ?? '')}"></div>
   <div><button class="primary" type="submit" id="advance">Advance</button></div>
  </div>
  ${opts.error ? `<p class="error" role="alert" data-testid="error">${esc(opts.error)}</p>` : ''}
 </form></div>`;
      return send(reply, status, layout('Sandbox clock', body, s));
    }

    app.get('/dashboard/clock', HIDE, async (req, reply) => {
      const s = await sessionOf(req);
      if (!s) return toSignIn(reply);
      return clockPage(reply, s, 200);
    });

    app.post('/dashboard/clock/advance', HIDE, async (req, reply) => {
      const s = await postSession(req, reply);
      if (!s) return reply;
      if (s.caller.environment !== 'sandbox') return clockPage(reply, s, 403);
      const duration = str(((req.body ?? {}) as Record<string, unknown>).duration)?.slice(0, 32) ?? '';
      const secs = parseDuration(duration);
      if (secs === null) return clockPage(reply, s, 400, { duration, error: `"${duration}" is not a duration: use whole seconds ("90") or "90s", "2m", "1h", "1d" (at most 365 days).` });
      try {
        return clockPage(reply, s, 200, { advanced: await advanceClock(deps, s.caller, secs) });
      } catch (e) {
        if (e instanceof DomainError) return clockPage(reply, s, httpStatus(e), { duration, error: e.message });
        throw e;
      }
    });
  };
}
