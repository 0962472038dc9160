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
 */
import { createHash, randomBytes } from 'node:crypto';
import { constantTimeEqual } from '@cashwire/webhooks';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Caller, Deps } from '../../payments/context.js';
import { getEvent, listEvents, resendEvent } from '../../payments/events/events.js';
import { hashKey } from '../../payments/operators/operators.js';
import type { OperatorSettings } from '../../store/rows.js';
import { DomainError, httpStatus } from '../errors.js';
import { esc } from './hosted-brand.js';

const COOKIE = 'cw_dashboard';
const SESSION_MS = 12 * 3600 * 1000;
const PAGE_SIZE = 50;
const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed', 'expired', 'dead'] as const;
const HIDE = { schema: { hide: true } } as const;

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
 .status{display:inline-block;border-radius:4px;padding:1px 6px;font-size:.8rem;font-weight:600;background:#eef1f6}
 .status.succeeded{background:#dcfce7;color:#166534} .status.failed,.status.dead,.status.expired{background:#fee2e2;color:#991b1b}
 .status.pending{background:#fff3cd;color:#7a5a00}
 .row{display:flex;gap:12px;align-items:center;flex-wrap:wrap;justify-content:space-between}
 dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0} dt{color:#5c677d;font-size:.85rem} dd{margin:0}
 .pager{margin-top:12px}
 @media (max-width:640px){
  .wrap{padding:12px 8px} .card{padding:14px}
  table.stack thead{display:none} table.stack tr{display:block;border-bottom:1px solid #eef1f6;padding:6px 0}
  table.stack td{display:flex;gap:8px;border:0;padding:3px 4px} table.stack td::before{content:attr(data-label);color:#5c677d;font-size:.8rem;min-width:80px}
  dl{grid-template-columns:1fr} dd{margin-bottom:6px}
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
 <nav><a href="/dashboard/events">Events</a></nav>
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
        if ((k === 'key' || k === 'csrf') && !(k in out)) out[k] = v.replace(/\u0000/g, '');
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
  };
}
