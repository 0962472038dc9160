/**
 * What every dashboard page shares (issue 16): the session (cookie, CSRF, the dashboard's own rate-limit budget), the
 * page layout and its style, and small helpers. The pages live beside it: events.ts, endpoints.ts, objects.ts,
 * charts.ts, clock.ts; index.ts registers them with sign-in and sign-out.
 *
 * Sign-in: POST /dashboard/sign-in checks the key as the API does (api_keys by hashKey, revoked keys refused) and
 * answers with a cookie `cw_dashboard` (HttpOnly, SameSite=Strict, Path=/dashboard, Max-Age 12 h, Secure when the
 * request came over HTTPS) holding 32 random bytes; only their SHA-256 is stored (dashboard_sessions, migration 017)
 * with the key's operator and environment and the session's CSRF token. A session sees the environment of the key it
 * was made with, nothing else; revoking that key ends it at the next request.
 * CSRF: every POST form carries the session's token (field `csrf`, compared in constant time); every POST (sign-in
 * too, against login CSRF) is refused when it carries an Origin header that is not the server's own. SameSite=Strict
 * is a second line. The pages' own scripts (htmx, Chart.js, dashboard.js) are served from /dashboard/assets: the
 * Content-Security-Policy allows scripts from this origin only, no inline script, no CDN.
 * Rate limits: the dashboard never calls authenticate() (api/auth.ts), so none of its requests is counted in the
 * key's `create`, `read` or `cli` budgets. It has a budget of its own instead, `dashboard` (rate_counters, per key
 * per sliding hour, CASHWIRE_RATE_LIMIT_DASHBOARD or the operator's `rate_limits.dashboard`, default 5000): an open tab
 * can use that up, never the backend's.
 */
import { createHash } from 'node:crypto';
import { constantTimeEqual } from '@cashwire/webhooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Caller, Deps } from '../../../payments/context.js';
import type { OperatorSettings } from '../../../store/rows.js';
import { esc } from '../hosted-brand.js';

export { esc };
export const COOKIE = 'cw_dashboard';
export const SESSION_MS = 12 * 3600 * 1000;
export const PAGE_SIZE = 50;
export const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed', 'expired', 'dead'] as const;
export const HIDE = { schema: { hide: true } } as const;
export const FORMATS = ['pushcash', 'standard', 'sendcash'] as const;
/** The dashboard's requests per key per sliding hour, unless CASHWIRE_RATE_LIMIT_DASHBOARD or `rate_limits.dashboard` say otherwise. */
export const DEFAULT_DASHBOARD_RATE_LIMIT = 5000;
const WINDOW_S = 3600;

export interface Session { caller: Caller; csrf: string; idHash: Buffer }

export const STYLE = `
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
 table{width:100%;border-collapse:collapse;font-size:.9rem} th{overflow-wrap:normal;text-align:left;color:#5c677d;font-weight:600;font-size:.8rem}
 th,td{padding:8px 6px;border-bottom:1px solid #eef1f6;vertical-align:top} tr:last-child td{border-bottom:0}
 code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
 pre{background:#f6f8fc;border:1px solid #e3e7ef;border-radius:8px;padding:12px;overflow:auto;max-height:480px;white-space:pre-wrap;word-break:break-all}
 .status{display:inline-block;border-radius:4px;padding:1px 6px;font-size:.8rem;font-weight:600;background:#eef1f6;white-space:nowrap}
 .status.succeeded{background:#dcfce7;color:#166534} .status.failed,.status.dead,.status.expired{background:#fee2e2;color:#991b1b}
 .status.pending{background:#fff3cd;color:#7a5a00}
 .row{display:flex;gap:12px;align-items:center;flex-wrap:wrap;justify-content:space-between}
 dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0} dt{color:#5c677d;font-size:.85rem} dd{margin:0}
 .pager{margin-top:12px} .nw{white-space:nowrap} .nw-wide{white-space:nowrap} .minw{min-width:15rem} .minw-s{min-width:10rem}
 nav a[aria-current=page]{font-weight:700;text-decoration:none;color:#14213d}
 @media (max-width:640px){
  .wrap{padding:12px 8px} .card{padding:14px}
  table.stack thead{display:none} table.stack tr{display:block;border-bottom:1px solid #eef1f6;padding:6px 0}
  table.stack td{display:flex;gap:8px;border:0;padding:3px 4px} table.stack td::before{content:attr(data-label);color:#5c677d;font-size:.8rem;min-width:80px}
  dl{grid-template-columns:1fr} dd{margin-bottom:6px} .filters{grid-template-columns:1fr}
  .nw-wide{white-space:normal} .minw,.minw-s{min-width:0}
 }`;


export const CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function send(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .send(html);
}

export const NAV: [string, string][] = [
  ['/dashboard/events', 'Events'],
  ['/dashboard/endpoints', 'Endpoints'],
  ['/dashboard/charts', 'Charts'],
  ['/dashboard/intents', 'Intents'],
  ['/dashboard/users', 'Users'],
  ['/dashboard/refunds', 'Refunds'],
  ['/dashboard/disputes', 'Disputes'],
  ['/dashboard/transfers', 'Transfers'],
  ['/dashboard/clock', 'Clock'],
];

/** Whether a page titled `title` belongs to the nav entry `label` (the events list and an event both are Events'). */
function current(title: string, label: string): boolean {
  const t = title.toLowerCase();
  const l = label.toLowerCase();
  return t === l || t.startsWith(`${l.replace(/s$/, '')} `) || (l === 'clock' && t.includes('clock'));
}

/** The dashboard's icon (assets.ts serves it; img-src 'self' allows it): linked, so that Chromium asks for no /favicon.ico. */
export const ICON = '/dashboard/assets/icon.svg';

/** A page: `scripts` are names under /dashboard/assets/ (htmx.min.js, …), loaded deferred, in order. */
export function layout(title: string, body: string, s?: Session, scripts: string[] = []): string {
  const head = s
    ? `<header><a class="brand" href="/dashboard/events">Cashwire</a>
 <span class="env ${esc(s.caller.environment)}" data-testid="environment">${esc(s.caller.environment.toUpperCase())}</span>
 <nav>${NAV.map(([href, label]) => `<a href="${href}" id="nav-${label.toLowerCase()}"${current(title, label) ? ' aria-current="page"' : ''}>${label}</a>`).join(' · ')}</nav>
 <span class="who">${esc(s.caller.operatorName)}</span>
 <form method="post" action="/dashboard/sign-out"><input type="hidden" name="csrf" value="${esc(s.csrf)}"><button type="submit" id="sign-out">Sign out</button></form>
</header>`
    : '';
  const tags = scripts.map((n) => `<script src="/dashboard/assets/${esc(n)}" defer></script>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · Cashwire dashboard</title><link rel="icon" type="image/svg+xml" href="${ICON}"><style>${STYLE}</style>${tags}</head>
<body>${head}<div class="wrap">${body}</div></body></html>`;
}

export function errorPage(reply: FastifyReply, status: number, title: string, message: string, s?: Session): FastifyReply {
  return send(reply, status, layout(title, `<div class="card"><h1>${esc(title)}</h1><p class="error" data-testid="error">${esc(message)}</p>
 <p><a href="/dashboard/events">Back to events</a></p></div>`, s));
}

export const when = (iso: string | Date | null | undefined) => {
  if (!iso) return '';
  const s = typeof iso === 'string' ? iso : iso.toISOString();
  return esc(s.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC'));
};

/** A string from a query value or a form field: the first of repeated ones, nothing for anything else. */
export function str(v: unknown): string | undefined {
  if (Array.isArray(v)) v = v[0];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export const queryOf = (req: FastifyRequest) => (req.query ?? {}) as Record<string, unknown>;
export const bodyOf = (req: FastifyRequest) => (req.body ?? {}) as Record<string, unknown>;
/** A route parameter `:id` (or another), as a string of at most 128 characters, or undefined. */
export function paramOf(req: FastifyRequest, name = 'id'): string | undefined {
  const v = String((req.params as Record<string, unknown>)[name] ?? '');
  return v.length > 0 && v.length <= 128 ? v : undefined;
}

export const hidden = (s: Session) => `<input type="hidden" name="csrf" value="${esc(s.csrf)}">`;

/** A one-button POST form (its CSRF token included). */
export function postButton(s: Session, action: string, label: string, opts: { testid?: string; primary?: boolean; fields?: Record<string, string> } = {}): string {
  const extra = Object.entries(opts.fields ?? {}).map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('');
  return `<form method="post" action="${esc(action)}" style="display:inline">${hidden(s)}${extra}<button type="submit"${opts.primary ? ' class="primary"' : ''}${opts.testid ? ` data-testid="${esc(opts.testid)}"` : ''}>${esc(label)}</button></form>`;
}

export function cookieOf(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === COOKIE) return part.slice(i + 1).trim();
  }
  return undefined;
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest();

export function cookieHeader(req: FastifyRequest, value: string, maxAgeS: number): string {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  return `${COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=${maxAgeS}${secure}`;
}

/** POSTs from another site's page are refused: a browser sends Origin with every form POST. */
export function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return typeof origin === 'string' && new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

export const redirect = (reply: FastifyReply, to: string) => reply.status(303).header('location', to).header('cache-control', 'no-store').send();
export const toSignIn = (reply: FastifyReply) => redirect(reply, '/dashboard/sign-in');

/** The session of a request, with the dashboard's budget checked; what a page route starts with. */
export interface Sessions {
  /**
   * For a request of a page's script (htmx, EventSource): the session counted in the budget, null without one (the
   * caller answers as its script expects), or 'answered' when the 429 page past the budget has been sent.
   */
  scriptSession(req: FastifyRequest, reply: FastifyReply): Promise<Session | null | 'answered'>;
  /** For a GET page: the session, or (having answered with a redirect to sign-in or a 429 page) null. */
  pageSession(req: FastifyRequest, reply: FastifyReply): Promise<Session | null>;
  /** For a POST: the session of a same-origin request whose CSRF token matches; else the refusal is sent and null returned. */
  postSession(req: FastifyRequest, reply: FastifyReply): Promise<Session | null>;
}

/** A session past the dashboard's budget. */
interface Limited { limited: true; retryAfterS: number; s: Session }

function limitedPage(reply: FastifyReply, e: Limited): FastifyReply {
  void reply.header('retry-after', String(e.retryAfterS));
  return errorPage(reply, 429, 'Slow down', `This dashboard session made too many requests in the last hour. Try again in ${Math.ceil(e.retryAfterS / 60)} minutes. (The API's own budgets are not affected.)`, e.s);
}

export function makeSessions(deps: Deps): Sessions {
  /** The request's session, counted in the dashboard's budget; null without one; Limited past the budget. */
  async function sessionOf(req: FastifyRequest, reply: FastifyReply): Promise<Session | Limited | null> {
    const raw = cookieOf(req);
    if (!raw || !/^[A-Za-z0-9_-]{43}$/.test(raw)) return null;
    const idHash = sha256(raw);
    const now = deps.clock.now();
    const nowS = Math.floor(now.getTime() / 1000);
    const windowStart = nowS - (nowS % WINDOW_S);
    // One statement: the session, its key still valid, and the request counted in the key's `dashboard` budget.
    const { rows } = await deps.db.query<{ operator_id: string; environment: 'sandbox' | 'production'; key_id: string; csrf: string; name: string; settings: OperatorSettings; current: number; previous: number | null }>(
      `WITH s AS (
         SELECT s.operator_id, s.environment, s.key_id, s.csrf, o.name, o.settings
           FROM dashboard_sessions s
           JOIN operators o ON o.id = s.operator_id
           JOIN api_keys k ON k.id = s.key_id AND k.revoked_at IS NULL
          WHERE s.id_hash = $1 AND s.expires_at > $2
       ), cur AS (
         INSERT INTO rate_counters (key_id, class, window_start, count)
         SELECT key_id, 'dashboard', $3, 1 FROM s
         ON CONFLICT (key_id, class, window_start) DO UPDATE SET count = rate_counters.count + 1
         RETURNING count
       )
       SELECT s.*, (SELECT count FROM cur) AS current,
              (SELECT p.count FROM rate_counters p WHERE p.key_id = s.key_id AND p.class = 'dashboard' AND p.window_start = $3 - ${WINDOW_S}) AS previous
         FROM s`,
      [idHash, now, windowStart],
    );
    const r = rows[0];
    if (!r) return null;
    const s: Session = { idHash, csrf: r.csrf, caller: { keyId: r.key_id, operatorId: r.operator_id, operatorName: r.name, environment: r.environment, settings: r.settings ?? {} } };
    const limit = r.settings?.rate_limits?.dashboard ?? deps.config.rateLimits.dashboard ?? DEFAULT_DASHBOARD_RATE_LIMIT;
    const elapsed = (nowS - windowStart) / WINDOW_S;
    const used = Math.floor((r.previous ?? 0) * (1 - elapsed)) + r.current;
    void reply.header('x-ratelimit-limit', limit).header('x-ratelimit-remaining', Math.max(0, limit - used));
    if (used > limit) {
      // A refused request does not count, as in the API's budgets.
      await deps.db.query(`UPDATE rate_counters SET count = count - 1 WHERE key_id = $1 AND class = 'dashboard' AND window_start = $2`, [r.key_id, windowStart]);
      return { limited: true, retryAfterS: windowStart + WINDOW_S - nowS, s };
    }
    return s;
  }

  async function scriptSession(req: FastifyRequest, reply: FastifyReply): Promise<Session | null | 'answered'> {
    const s = await sessionOf(req, reply);
    if (s && 'limited' in s) {
      limitedPage(reply, s);
      return 'answered';
    }
    return s;
  }

  async function pageSession(req: FastifyRequest, reply: FastifyReply): Promise<Session | null> {
    const s = await scriptSession(req, reply);
    if (s === 'answered') return null;
    if (!s) toSignIn(reply);
    return s;
  }

  async function postSession(req: FastifyRequest, reply: FastifyReply): Promise<Session | null> {
    if (!sameOrigin(req)) {
      errorPage(reply, 403, 'Request refused', 'This form was sent from another site.');
      return null;
    }
    const s = await pageSession(req, reply);
    if (!s) return null;
    const token = str(bodyOf(req).csrf);
    if (!token || !constantTimeEqual(token, s.csrf)) {
      errorPage(reply, 403, 'Request refused', 'The form is missing its security token, or it is out of date. Reload the page and try again.', s);
      return null;
    }
    return s;
  }

  return { scriptSession, pageSession, postSession };
}

/**
 * Whether a session is still good (not signed out, not expired, its key not revoked), without counting a request: the
 * live list's stream asks it now and then, so that an open tab stops being told anything once its session has ended.
 */
export async function sessionAlive(deps: Deps, s: Session): Promise<boolean> {
  const { rows } = await deps.db.query(
    `SELECT 1 FROM dashboard_sessions s JOIN api_keys k ON k.id = s.key_id AND k.revoked_at IS NULL
      WHERE s.id_hash = $1 AND s.expires_at > $2`,
    [s.idHash, deps.clock.now()],
  );
  return rows.length > 0;
}

/** What each page module gets. */
export interface Dash { deps: Deps; sessions: Sessions }
