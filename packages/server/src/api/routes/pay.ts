/**
 * The hosted payment session: the intent's `url`; for an authorization that requires authentication (202), its
 * step-up page, which asks for a one-time code first. The end user sees amount and direction and approves or cancels
 * (sandbox: also declines). Then the page sends them to `redirect_url?intent_id=…&status=…`, or, without one,
 * posts `{source: "cashwire", intent_id, status}` to the window that opened or embeds it; either way it shows a way
 * back (hosted-brand.ts). The page wears the operator's branding (settings `branding`: display name, logo, accent)
 * and tells a decline in a sentence for the payer (domain/decline-messages.ts), never the raw category.
 */
import { limitsSection } from './limits.js';
import { pageLimits, type PageLimits } from '../../payments/users/limits.js';
import { constantTimeEqual } from '@cashwire/webhooks';
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import { withTx, type Queryable } from '../../db/pool.js';
import type { Branding } from '../../domain/branding.js';
import { DECLINE_MESSAGES, GENERIC_DECLINE_MESSAGE, declineMessage } from '../../domain/decline-messages.js';
import type { Deps } from '../../payments/context.js';
import { cancelIntentRow, decideIntent } from '../../payments/intents/intents.js';
import { pageBranding } from '../../payments/operators/settings.js';
import type { IntentRow, OperatorSettings } from '../../store/rows.js';
import { DomainError, errors } from '../errors.js';
import { BRAND_CSS, LOGO_SCRIPT, WAY_BACK_SCRIPT, brandHeader, esc, paletteCss, scriptJson } from './hosted-brand.js';

const Params = Type.Object({ op: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 128 }) });
const Query = Type.Object({ s: Type.Optional(Type.String({ maxLength: 128 })) });
const DecisionBody = Type.Object({
  s: Type.String({ minLength: 1, maxLength: 128 }),
  action: Type.Union([Type.Literal('approve'), Type.Literal('cancel'), Type.Literal('decline')]),
  /** The one-time code of a step-up (any 6 digits: no SMS is sent). */
  code: Type.Optional(Type.String({ maxLength: 32 })),
});

const sameToken = (given: string, expected: string): boolean => constantTimeEqual(given, expected);

const dollars = (cents: number) => `$${(cents / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

export function redirectTarget(i: Pick<IntentRow, 'redirect_url' | 'id' | 'status'>): string | null {
  if (!i.redirect_url) return null;
  const u = new URL(i.redirect_url);
  u.searchParams.set('intent_id', i.id);
  u.searchParams.set('status', i.status);
  return u.toString();
}

const STYLE = `
 *{box-sizing:border-box}
 body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f6fb;margin:0;display:flex;justify-content:center;padding:48px 16px;color:#14213d}
 main{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001;max-width:420px;width:100%;padding:28px}
 h1{font-size:1.1rem;margin:0 0 4px} p{margin:8px 0 0} .amount{font-size:2.2rem;font-weight:700;margin:16px 0 4px} .muted{color:#5c677d;font-size:.9rem}
 .sandbox{display:inline-block;background:#fff3cd;color:#7a5a00;border-radius:4px;padding:2px 8px;font-size:.75rem;font-weight:600;margin-bottom:12px}
 .actions{display:flex;gap:8px;margin-top:24px;flex-wrap:wrap} button{font:inherit;border-radius:8px;padding:10px 16px;border:1px solid #c5cbd8;background:#fff;color:#14213d;cursor:pointer;flex:1;white-space:nowrap}
 button.primary{background:var(--accent);border-color:var(--accent);color:var(--on-accent);flex-basis:100%;font-weight:600} button:focus-visible{outline:3px solid var(--ring);outline-offset:2px} button:disabled{opacity:.6;cursor:wait}
 h2{font-size:1rem;margin:20px 0 0} .label{display:block;font-weight:600;margin:14px 0 6px} .small{font-size:.8rem;margin-top:6px}
 #code{font:inherit;font-size:1.3rem;letter-spacing:.3em;width:100%;padding:10px 12px;border:1px solid #8792a2;border-radius:8px} #code:focus-visible{outline:3px solid var(--ring);outline-offset:1px}
 .embedded body{padding:8px} .embedded main{box-shadow:none;border:1px solid #e3e7ef}
 #result{margin-top:20px;font-weight:600} #result:empty{margin:0} #result.declined,#result.error{color:#b91c1c} #result.approved{color:#15803d}
 #result .outcome{display:block} #result .reason{display:block;margin-top:6px;font-weight:400;color:#14213d;line-height:1.45}
 .way-back button.close{width:100%}
${BRAND_CSS}`;

/** The page's own colours, used when the operator sets no accent. */
const DEFAULT_PALETTE = { accent: '#1d4ed8', onAccent: '#ffffff', ink: '#1d4ed8', tint: '#e8edfb', ring: '#93c5fd' };

const OUTCOME: Record<string, string> = {
  approved: 'Payment approved',
  pending: 'Payment submitted for review',
  declined: 'Payment declined',
  canceled: 'Payment canceled',
};

const NOT_FOUND = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Payment session not found</title><style>${STYLE}${paletteCss({ display_name: '', logo_url: null, accent_color: null, return_url: null }, DEFAULT_PALETTE)}</style></head>
<body><main><h1>Payment session not found</h1><p class="muted">This payment link is not valid. Go back to the site you came from and start the payment again.</p></main></body></html>`;

/** The outcome line: what happened, and for a decline what the payer can do (domain/decline-messages.ts). */
function outcomeHtml(i: Pick<IntentRow, 'status' | 'decline_category'>): string {
  const head = `<strong class="outcome">${esc(OUTCOME[i.status] ?? i.status)}</strong>`;
  return i.status === 'declined' ? `${head} <span class="reason" data-testid="decline-message">${esc(declineMessage(i.decline_category))}</span>` : head;
}

function page(i: IntentRow & { credential_display?: string | null; operator_settings?: OperatorSettings }, brand: Branding, token: string, limits: PageLimits | null = null): string {
  const verb = i.direction === 'cash_in' ? 'Deposit' : 'Withdrawal';
  const open = i.status === 'created';
  const sandbox = i.environment === 'sandbox';
  const stepUp = open && i.step_up === true;
  // Where the outcome is posted: the operator's allowed_origins when set (the Widget's setting), else any window.
  const targets = i.operator_settings?.allowed_origins?.length ? i.operator_settings.allowed_origins : ['*'];
  const state = {
    intent_id: i.id, status: i.status, redirect: redirectTarget(i), s: token, decision: `/pay/${i.operator_id}/${i.id}/decision`, step_up: stepUp, targets,
    // The way back after completion: the payment's redirect target, else the operator's return_url (branding).
    back: { name: brand.display_name, return_url: brand.return_url },
  };
  const stepUpForm = stepUp ? `<div id="step-up-form">
 <h2 data-testid="step-up">Verify it's you</h2>
 <p class="muted">Your bank asks you to confirm this payment${i.credential_display ? ` with ${esc(i.credential_display)}` : ''}. Enter the 6-digit code sent to your phone.</p>
 <label for="code" class="label">One-time code</label>
 <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" pattern="[0-9]{6}" placeholder="123456" aria-describedby="code-hint">
 <div id="code-hint" class="muted small">${sandbox ? 'Sandbox: any 6 digits.' : 'The code expires in 10 minutes.'}</div>
 </div>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${verb} ${dollars(i.amount)} · ${esc(brand.display_name)}</title>
<style>${STYLE}${paletteCss(brand, DEFAULT_PALETTE)}</style></head>
<body><main>
 ${sandbox ? '<span class="sandbox" data-testid="sandbox-badge">SANDBOX</span>' : ''}
 ${brandHeader(brand)}
 <div class="muted" data-testid="direction">${verb}</div>
 <div class="amount" data-testid="amount">${dollars(i.amount)}</div>
 <div class="muted">${esc(i.currency)} · ${verb === 'Deposit' ? 'from' : 'to'} your ${i.rail === 'card' ? 'card' : 'bank account'}</div>
 ${stepUpForm}
 ${open ? `<div class="actions">
  <button class="primary" id="approve" data-action="approve">${stepUp ? 'Verify and pay' : `Approve ${verb.toLowerCase()}`}</button>
  <button id="cancel" data-action="cancel">Cancel</button>
  ${sandbox ? `<button id="decline" data-action="decline">${stepUp ? 'Fail verification (sandbox)' : 'Decline (sandbox)'}</button>` : ''}
 </div>` : ''}
 <div id="result" role="status" aria-live="polite" class="${open ? '' : esc(i.status)}">${open ? '' : outcomeHtml(i)}</div>
 <div id="way-back" class="way-back" hidden></div>
 ${limitsSection(i, limits, sandbox)}
</main>
<script>
(function(){
  // In an iframe (a step-up inside the operator's page) the page sits closer to the frame's edges.
  if (window.parent !== window) document.documentElement.className = 'embedded';
  var state = ${scriptJson(state)};
  var OUTCOME = ${scriptJson(OUTCOME)};
  var DECLINE = ${scriptJson(DECLINE_MESSAGES)}, GENERIC = ${scriptJson(GENERIC_DECLINE_MESSAGE)};
  var result = document.getElementById('result');
  ${WAY_BACK_SCRIPT.trim()}
  ${LOGO_SCRIPT.trim()}
  function back(redirect){
    // A redirect target is followed in this frame, like the redirect itself; the operator's return_url leaves the frame.
    wayBack(document.getElementById('way-back'), redirect ? { name: state.back.name, href: redirect, top: false } : { name: state.back.name, href: state.back.return_url, top: true });
  }
  function show(r){
    result.className = r.status;
    result.textContent = '';
    var head = document.createElement('strong');
    head.className = 'outcome'; head.textContent = OUTCOME[r.status] || r.status;
    result.appendChild(head);
    if (r.status === 'declined') {
      var why = document.createElement('span');
      why.className = 'reason'; why.setAttribute('data-testid', 'decline-message');
      why.textContent = Object.prototype.hasOwnProperty.call(DECLINE, r.decline_category) ? DECLINE[r.decline_category] : GENERIC;
      result.appendChild(document.createTextNode(' '));
      result.appendChild(why);
    }
  }
  function finish(r){
    show(r);
    // Decided: the buttons and the step-up form go, as when the page is opened again.
    ['.actions', '#step-up-form'].forEach(function(sel){ var el = document.querySelector(sel); if (el) el.remove(); });
    back(r.redirect);
    if (r.redirect) { setTimeout(function(){ window.location.assign(r.redirect); }, 600); return; }
    var target = window.opener || (window.parent !== window ? window.parent : null);
    if (target) state.targets.forEach(function(origin){ target.postMessage({ source: 'cashwire', intent_id: r.intent_id, status: r.status }, origin); });
  }
  // Opened again once decided (a reload, the back button): the outcome is on the page already; show the way back.
  if (state.status !== 'created') back(state.redirect);
  var code = document.getElementById('code');
  document.querySelectorAll('button[data-action]').forEach(function(b){
    b.addEventListener('click', function(){
      if (state.step_up && b.dataset.action === 'approve' && !/^[0-9]{6}$/.test(code.value.trim())) {
        result.className = 'error'; result.textContent = 'Enter the 6-digit code'; code.focus(); return;
      }
      document.querySelectorAll('button').forEach(function(x){ x.disabled = true; });
      result.className = ''; result.textContent = 'Processing…';
      var body = { s: state.s, action: b.dataset.action };
      if (code) body.code = code.value.trim();
      fetch(state.decision, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        .then(function(res){ return res.json().then(function(j){ return { ok: res.ok, status: res.status, j: j }; }); })
        .then(function(x){
          if (!x.ok) {
            result.className = 'error'; result.textContent = (x.j.error && x.j.error.message) || 'Something went wrong';
            // A server-side failure decided nothing: let the user try again. A 4xx (already decided, bad link) is final.
            if (x.status >= 500) document.querySelectorAll('button').forEach(function(btn){ btn.disabled = false; });
            else back(null);
            return;
          }
          finish(x.j);
        })
        .catch(function(){ result.className = 'error'; result.textContent = 'Network error: try again';
          document.querySelectorAll('button').forEach(function(x){ x.disabled = false; }); });
    });
  });
})();
</script></body></html>`;
}

async function load(deps: Deps, op: string, id: string, s: string | undefined, lock: boolean, q: Queryable = deps.db) {
  const { rows } = await q.query<IntentRow & { operator_name: string; operator_settings: OperatorSettings; credential_display: string | null }>(
    `SELECT i.*, o.name AS operator_name, o.settings AS operator_settings,
            (SELECT c.display_name || ' ••' || c.last4 FROM credentials c WHERE c.operator_id = i.operator_id AND c.id = i.credential_id) AS credential_display
       FROM intents i JOIN operators o ON o.id = i.operator_id
      WHERE i.operator_id = $1 AND i.id = $2${lock ? ' FOR UPDATE OF i' : ''}`,
    [op, id],
  );
  const i = rows[0];
  // A wrong session token looks exactly like a missing intent.
  if (!i || !s || !sameToken(s, i.session_token)) throw errors.notFound('payment_session', id);
  return i;
}

export const payPageRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  app.get<{ Params: Static<typeof Params>; Querystring: Static<typeof Query> }>('/pay/:op/:id', { schema: { params: Params, querystring: Query, hide: true } }, async (req, reply) => {
    try {
      const i = await load(deps, req.params.op, req.params.id, req.query.s, false);
      // An intent made with display_limits: true shows the user's limit and lets them ask for more.
      const limits = await pageLimits(deps.db, i, i.operator_settings);
      return reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-store')
        // The URL carries the session token: never hand it to the redirect target (or anything else) as a Referer.
        .header('Referrer-Policy', 'no-referrer')
        .send(page(i, pageBranding(i.operator_settings, i.operator_name), req.query.s!, limits));
    } catch (err) {
      if (err instanceof DomainError && err.code === 'payment_session_not_found') {
        return reply.status(404).type('text/html; charset=utf-8').header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer').send(NOT_FOUND);
      }
      throw err;
    }
  });

  app.post<{ Params: Static<typeof Params>; Body: Static<typeof DecisionBody> }>('/pay/:op/:id/decision', { schema: { params: Params, body: DecisionBody, hide: true } }, async (req) => {
    const r = await withTx(deps.db, async (tx) => {
      const i = await load(deps, req.params.op, req.params.id, req.body.s, true, tx);
      if (i.status !== 'created') throw errors.conflict('intent_already_decided', `this payment is already ${i.status}`);
      if (req.body.action === 'cancel') return cancelIntentRow(deps, tx, i);
      if (req.body.action === 'decline') {
        if (i.environment !== 'sandbox') throw errors.sandboxOnly();
        return decideIntent(deps, tx, i, i.operator_settings, { forced: i.step_up ? 'authentication_failed' : 'insufficient_funds' });
      }
      if (i.step_up) {
        // Step-up: the code is checked for form only (no SMS is sent); passing it authenticates the credential.
        if (!/^\d{6}$/.test(req.body.code?.trim() ?? '')) throw errors.validation('code', 'enter the 6-digit one-time code', 'invalid_code');
        if (i.credential_id) await tx.query('UPDATE credentials SET authenticated = true WHERE operator_id = $1 AND id = $2', [i.operator_id, i.credential_id]);
      }
      return decideIntent(deps, tx, i, i.operator_settings);
    });
    return { intent_id: r.id, status: r.status, decline_category: r.decline_category, redirect: redirectTarget(r) };
  });
};
