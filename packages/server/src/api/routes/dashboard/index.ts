/**
 * The dashboard (issue 16): server-rendered pages under /dashboard, signed in with an API key. kit.ts has what the pages
 * share (session, CSRF, budget, layout); each page group has its module.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { Deps } from '../../../payments/context.js';
import { hashKey } from '../../../payments/operators/operators.js';
import { assetRoutes } from './assets.js';
import { chartRoutes } from './charts.js';
import { clockRoutes } from './clock.js';
import { endpointRoutes } from './endpoints.js';
import { eventListRoutes } from './events-list.js';
import { eventRoutes } from './events.js';
import { objectRoutes } from './objects.js';
import { cookieHeader, errorPage, HIDE, layout, makeSessions, redirect, sameOrigin, send, sha256, SESSION_MS, str, esc, type Dash } from './kit.js';

/** The only form fields the dashboard reads; any other is dropped by the parser. */
const FORM_FIELDS = new Set(['key', 'csrf', 'url', 'events', 'format', 'ordering', 'duration', 'since', 'until', 'type', 'delivery_id']);

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

export function dashboardRoutes(deps: Deps): FastifyPluginAsync {
  const dash: Dash = { deps, sessions: makeSessions(deps) };
  const { postSession } = dash.sessions;

  return async (app) => {
    // Forms post application/x-www-form-urlencoded: parsed here, for the dashboard's routes only.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
      const out: Record<string, string> = {};
      for (const [k, v] of new URLSearchParams(body as string)) {
        if (FORM_FIELDS.has(k) && !(k in out)) out[k] = v.replace(/\u0000/g, '');
      }
      done(null, out);
    });

    app.get('/dashboard', HIDE, async (_req, reply) => redirect(reply, '/dashboard/events'));

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

    assetRoutes(app);
    eventListRoutes(app, dash);
    eventRoutes(app, dash);
    endpointRoutes(app, dash);
    objectRoutes(app, dash);
    chartRoutes(app, dash);
    clockRoutes(app, dash);
  };
}
