/**
 * The hosted payment session: the intent's `url`; for an authorization that requires authentication (202), its
 * step-up page, which asks for a one-time code first. The end user sees amount and direction and approves or cancels
 * (sandbox: also declines). Then the page sends them to `redirect_url?intent_id=…&status=…`, or, without one,
 * posts `{source: "cashwire", intent_id, status}` to the window that opened or embeds it.
 */
import { constantTimeEqual } from '@cashwire/webhooks';
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import { withTx, type Queryable } from '../../db/pool.js';
import type { Deps } from '../../payments/context.js';
import { cancelIntentRow, decideIntent } from '../../payments/intents/intents.js';
import type { IntentRow, OperatorSettings } from '../../store/rows.js';
import { DomainError, errors } from '../errors.js';

const Params = Type.Object({ op: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 128 }) });
const Query = Type.Object({ s: Type.Optional(Type.String({ maxLength: 128 })) });
const DecisionBody = Type.Object({
  s: Type.String({ minLength: 1, maxLength: 128 }),
  action: Type.Union([Type.Literal('approve'), Type.Literal('cancel'), Type.Literal('decline')]),
  /** The one-time code of a step-up (any 6 digits: no SMS is sent). */
  code: Type.Optional(Type.String({ maxLength: 32 })),
});

const sameToken = (given: string, expected: string): boolean => constantTimeEqual(given, expected);

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
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
 button.primary{background:#1d4ed8;border-color:#1d4ed8;color:#fff;flex-basis:100%;font-weight:600} button:focus-visible{outline:3px solid #93c5fd;outline-offset:2px} button:disabled{opacity:.6;cursor:wait}
 h2{font-size:1rem;margin:20px 0 0} .label{display:block;font-weight:600;margin:14px 0 6px} .small{font-size:.8rem;margin-top:6px}
 #code{font:inherit;font-size:1.3rem;letter-spacing:.3em;width:100%;padding:10px 12px;border:1px solid #8792a2;border-radius:8px} #code:focus-visible{outline:3px solid #93c5fd;outline-offset:1px}
 .embedded body{padding:8px} .embedded main{box-shadow:none;border:1px solid #e3e7ef}
 #result{margin-top:20px;font-weight:600} #result:empty{margin:0} #result.declined,#result.error{color:#b91c1c} #result.approved{color:#15803d}
`;

const OUTCOME: Record<string, string> = {
  approved: 'Payment approved',
  pending: 'Payment submitted for review',
  declined: 'Payment declined',
  canceled: 'Payment canceled',
};

const NOT_FOUND = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Payment session not found</title><style>${STYLE}</style></head>
<body><main><h1>Payment session not found</h1><p class="muted">This payment link is not valid. Go back to the site you came from and start the payment again.</p></main></body></html>`;

function page(i: IntentRow & { credential_display?: string | null; operator_settings?: OperatorSettings }, operatorName: string, token: string): string {
  const verb = i.direction === 'cash_in' ? 'Deposit' : 'Withdrawal';
  const open = i.status === 'created';
  const sandbox = i.environment === 'sandbox';
  const stepUp = open && i.step_up === true;
  // Where the outcome is posted: the operator's allowed_origins when set (the Widget's setting), else any window.
  const targets = i.operator_settings?.allowed_origins?.length ? i.operator_settings.allowed_origins : ['*'];
  const state = { intent_id: i.id, status: i.status, redirect: redirectTarget(i), s: token, decision: `/pay/${i.operator_id}/${i.id}/decision`, step_up: stepUp, targets };
  const stepUpForm = stepUp ? `
 <h2 data-testid="step-up">Verify it's you</h2>
 <p class="muted">Your bank asks you to confirm this payment${i.credential_display ? ` with ${esc(i.credential_display)}` : ''}. Enter the 6-digit code sent to your phone.</p>
 <label for="code" class="label">One-time code</label>
 <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" pattern="[0-9]{6}" placeholder="123456" aria-describedby="code-hint">
 <div id="code-hint" class="muted small">${sandbox ? 'Sandbox: any 6 digits.' : 'The code expires in 10 minutes.'}</div>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${verb} ${dollars(i.amount)} · ${esc(operatorName)}</title>
<style>${STYLE}</style></head>
<body><main>
 ${sandbox ? '<span class="sandbox" data-testid="sandbox-badge">SANDBOX</span>' : ''}
 <h1>${esc(operatorName)}</h1>
 <div class="muted" data-testid="direction">${verb}</div>
 <div class="amount" data-testid="amount">${dollars(i.amount)}</div>
 <div class="muted">${esc(i.currency)} · ${verb === 'Deposit' ? 'from' : 'to'} your ${i.rail === 'card' ? 'card' : 'bank account'}</div>
 ${stepUpForm}
 ${open ? `<div class="actions">
  <button class="primary" id="approve" data-action="approve">${stepUp ? 'Verify and pay' : `Approve ${verb.toLowerCase()}`}</button>
  <button id="cancel" data-action="cancel">Cancel</button>
  ${sandbox ? `<button id="decline" data-action="decline">${stepUp ? 'Fail verification (sandbox)' : 'Decline (sandbox)'}</button>` : ''}
 </div>` : ''}
 <div id="result" role="status" aria-live="polite" class="${open ? '' : esc(i.status)}">${open ? '' : `${OUTCOME[i.status] ?? i.status}${i.decline_category ? `: ${esc(i.decline_category.replace(/_/g, ' '))}` : ''}`}</div>
</main>
<script>
(function(){
  // In an iframe (a step-up inside the operator's page) the page sits closer to the frame's edges.
  if (window.parent !== window) document.documentElement.className = 'embedded';
  var state = ${JSON.stringify(state).replace(/</g, '\\u003c')};
  var OUTCOME = ${JSON.stringify(OUTCOME)};
  var result = document.getElementById('result');
  function finish(r){
    result.className = r.status;
    result.textContent = (OUTCOME[r.status] || r.status) + (r.decline_category ? ': ' + r.decline_category.replace(/_/g, ' ') : '');
    var buttons = document.querySelectorAll('button'); for (var i = 0; i < buttons.length; i++) buttons[i].remove();
    if (r.redirect) { setTimeout(function(){ window.location.assign(r.redirect); }, 600); return; }
    var target = window.opener || (window.parent !== window ? window.parent : null);
    if (target) state.targets.forEach(function(origin){ target.postMessage({ source: 'cashwire', intent_id: r.intent_id, status: r.status }, origin); });
  }
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
      return reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-store')
        // The URL carries the session token: never hand it to the redirect target (or anything else) as a Referer.
        .header('Referrer-Policy', 'no-referrer')
        .send(page(i, i.operator_name, req.query.s!));
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
