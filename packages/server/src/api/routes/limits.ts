/**
 * Limit requests over HTTP. With an API key: PATCH /user/{id} (the operator's answer, the update-user call),
 * POST /user/{id}/limits_request, GET /user/{id}/limits_request, POST /simulate/limits_decision (sandbox). With the
 * payment page's session token instead: POST /pay/{op}/{id}/limits_request, which the page's "Request a higher limit"
 * form (limitsSection, below) posts to.
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import {
  latestLimitRequest, requestLimitForUser, requestLimitFromPage, simulateLimitsDecision, updateUser, type PageLimits,
} from '../../payments/users/limits.js';
import type { IntentRow } from '../../store/rows.js';
import { keyAuth } from '../auth.js';
import { CreateUserBody, errorsOf, IdParams, Nullable } from '../schemas.js';
import { esc, scriptJson } from './hosted-brand.js';

const Str = (max: number) => Type.String({ minLength: 1, maxLength: max });
const Cents = (description: string) => Type.Integer({ minimum: 1, maximum: 10_000_000_00, description: `integer cents; ${description}` });
const Count = (description: string, maximum = 1e15) => Type.Integer({ minimum: 0, maximum, description });

const RequestedLimit = Cents("the daily limit the user asks for; more than the one in force. None: the user asks for a review");
const LimitRequestBody = Type.Object({ requested_daily_limit: Type.Optional(RequestedLimit) });
const PageLimitRequestBody = Type.Object({ s: Str(128), requested_daily_limit: Type.Optional(RequestedLimit) });
const DecisionBody = Type.Object({
  user_id: Str(64),
  decision: Type.Union([Type.Literal('approved'), Type.Literal('partial'), Type.Literal('declined')]),
  approved_daily_limit: Type.Optional(Cents('the new daily limit: required for approved and partial (partial: less than requested), refused for declined')),
});

const OperatorStats = Type.Object({
  lifetime_deposits: Type.Optional(Count('integer cents the user deposited with you, all time')),
  lifetime_withdrawals: Type.Optional(Count('integer cents the user withdrew, all time')),
  deposits_last_30_days: Type.Optional(Count('integer cents deposited in the last 30 days')),
  withdrawals_last_30_days: Type.Optional(Count('integer cents withdrawn in the last 30 days')),
  deposit_count: Type.Optional(Count('number of deposits, all time')),
  account_age_days: Type.Optional(Count('days since the user opened their account with you', 100 * 366)),
  chargebacks: Type.Optional(Count('number of chargebacks or returned payments, all time')),
});
const OtherProcessorLimit = Type.Object({
  processor: Str(100),
  daily_limit: Cents("the user's daily limit with that processor"),
});
const PatchUserBody = Type.Object({
  operator_stats: Type.Optional(OperatorStats),
  other_processors_limits: Type.Optional(Type.Array(OtherProcessorLimit, { maxItems: 20, description: 'replaces the list sent before' })),
  email: Type.Optional(CreateUserBody.properties.email),
  phone_number: Type.Optional(Str(20)),
  address: Type.Optional(CreateUserBody.properties.address),
});

const OperatorInfo = Type.Object({
  operator_stats: Type.Optional(OperatorStats),
  other_processors_limits: Type.Optional(Type.Array(OtherProcessorLimit)),
  updated_at: Type.Optional(Type.String()),
});
export const LimitRequest = Type.Object({
  id: Type.String({ description: 'limreq_…' }),
  user_id: Type.String(),
  intent_id: Nullable(Type.String({ description: 'the payment whose page the user asked from; null when the operator asked' })),
  status: Type.Union(['requested', 'approved', 'partial', 'declined'].map((s) => Type.Literal(s))),
  requested_daily_limit: Nullable(Type.Integer()),
  approved_daily_limit: Nullable(Type.Integer()),
  currency: Type.Literal('USD'),
  operator_info: Nullable(OperatorInfo),
  created_at: Type.String(),
  decided_at: Nullable(Type.String()),
});
const PageLimitRequestResponse = Type.Object({
  status: Type.String(), requested_daily_limit: Nullable(Type.Integer()), daily_limit: Type.Integer(), currency: Type.Literal('USD'),
});
const AnyObject = Type.Object({}, { additionalProperties: true });
/** The user as GET /user/{id} answers it. */
const User = Type.Object({
  id: Type.String(), tag: Nullable(Type.String()), name: AnyObject, email: Type.String(), phone_number: Type.Optional(Type.String()),
  address: AnyObject, date_of_birth: Type.String(), government_id: AnyObject, identity_verified: Type.Boolean(), status: Type.String(),
  payment_credentials: Type.Array(AnyObject),
  limits: Type.Object({ daily_limit: Type.Integer({ description: 'cents: the daily limit in force' }), currency: Type.Literal('USD') }),
  created_at: Type.String(),
});
const PageParams = Type.Object({ op: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 128 }) });

export const limitRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);
  type P = { Params: Static<typeof IdParams> };

  app.patch<P & { Body: Static<typeof PatchUserBody> }>('/user/:id', {
    schema: {
      params: IdParams, body: PatchUserBody, response: { 200: User, ...errorsOf(400, 401, 404, 409) },
      summary: "Update a user: the answer to a limit request (operator_stats, other_processors_limits: stored with the open request, 409 without one) and the user's email, phone_number, address (the rules of POST /user)",
    },
    onRequest: auth('read'),
  }, async (req) => updateUser(deps, req.caller, req.params.id, req.body));

  app.post<P & { Body: Static<typeof LimitRequestBody> }>('/user/:id/limits_request', {
    schema: {
      params: IdParams, body: LimitRequestBody, response: { 200: LimitRequest, ...errorsOf(400, 401, 404) },
      summary: 'The user asks for a higher daily limit (user.limits_request); while one is open, the open one is the answer',
    },
    onRequest: auth('create'),
  }, async (req) => requestLimitForUser(deps, req.caller, req.params.id, req.body));

  app.get<P>('/user/:id/limits_request', {
    schema: { params: IdParams, response: { 200: LimitRequest, ...errorsOf(401, 404) }, summary: "The user's latest limit request" },
    onRequest: auth('read'),
  }, async (req) => latestLimitRequest(deps, req.caller, req.params.id));

  app.post<{ Body: Static<typeof DecisionBody> }>('/simulate/limits_decision', {
    schema: {
      body: DecisionBody, response: { 200: LimitRequest, ...errorsOf(400, 401, 403, 404, 409) },
      summary: "Sandbox: decide the user's open limit request: approved or partial (sets the daily limit), declined",
    },
    onRequest: auth('read'),
  }, async (req) => simulateLimitsDecision(deps, req.caller, req.body));

  app.post<{ Params: Static<typeof PageParams>; Body: Static<typeof PageLimitRequestBody> }>('/pay/:op/:id/limits_request', {
    schema: { params: PageParams, body: PageLimitRequestBody, response: { 200: PageLimitRequestResponse, ...errorsOf(400, 403, 404) }, hide: true },
  }, async (req) => requestLimitFromPage(deps, req.params.op, req.params.id, req.body));
};

// ---- The payment page's section ---------------------------------------------------------------------------------

const dollars = (cents: number) => `$${(cents / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

const LIMITS_CSS = `
 .cw-limits{margin-top:24px;padding-top:16px;border-top:1px solid #e3e7ef}
 .cw-limits h2{font-size:1rem;margin:0}
 .cw-limits .now{margin:6px 0 0} .cw-limits .now strong{font-size:1.15rem}
 .cw-limits details{margin-top:12px}
 .cw-limits summary{cursor:pointer;font-weight:600;color:var(--ink,#1d4ed8);padding:6px 0;width:max-content;max-width:100%}
 .cw-limits summary:focus-visible,.cw-limits input:focus-visible{outline:3px solid var(--ring,#93c5fd);outline-offset:2px;border-radius:4px}
 .cw-limits .field{display:flex;align-items:center;gap:6px;border:1px solid #8792a2;border-radius:8px;padding:0 12px;background:#fff}
 .cw-limits .field:focus-within{outline:3px solid var(--ring,#93c5fd);outline-offset:1px}
 .cw-limits .field input{font:inherit;font-size:1.1rem;border:0;outline:0;padding:10px 0;width:100%;min-width:0;background:transparent}
 .cw-limits .field input:focus-visible{outline:0}
 .cw-limits input[type=submit]{font:inherit;font-weight:600;margin-top:12px;width:100%;border-radius:8px;padding:10px 16px;cursor:pointer;
   background:var(--accent,#1d4ed8);border:1px solid var(--accent,#1d4ed8);color:var(--on-accent,#fff)}
 .cw-limits input[type=submit]:disabled{opacity:.6;cursor:wait}
 .cw-limits [aria-invalid=true]{color:#b91c1c}
 #cw-limits-result{margin-top:10px} #cw-limits-result:empty{margin:0} #cw-limits-result.error{color:#b91c1c} #cw-limits-result.sent{color:#15803d;font-weight:600}
`;

/**
 * The payment page's limits section, for an intent made with `display_limits: true` (else ''): the user's daily
 * limit in force and, unless a request is open already, a "Request a higher limit" disclosure with a small form (the
 * amount wanted, optional, in dollars) that posts `{s, requested_daily_limit?}` (cents) to
 * POST /pay/{op}/{id}/limits_request. Pure: HTML with its own CSS and a small inline script. The controls are a
 * <summary> and an <input type="submit">, never <button>s, so the page's own script (which disables and removes its
 * buttons while it decides the payment) leaves them alone: the user can ask after a decline.
 */
export function limitsSection(
  intent: Pick<IntentRow, 'operator_id' | 'id' | 'session_token' | 'display_limits' | 'status' | 'decline_category'>,
  limits: PageLimits | null,
  sandbox: boolean,
): string {
  if (intent.display_limits !== true || !limits) return '';
  const open = limits.open_request;
  const openText = open
    ? `You asked for a higher limit${open.requested_daily_limit ? ` of ${dollars(open.requested_daily_limit)} a day` : ''}. You will hear back once it is reviewed.`
    : '';
  const state = { url: `/pay/${intent.operator_id}/${intent.id}/limits_request`, s: intent.session_token, limit: limits.daily_limit };
  // Declined for its limit: the form is open already.
  const expanded = intent.status === 'declined' && intent.decline_category === 'limit_exceeded';
  return `
 <section class="cw-limits" data-testid="limits" aria-labelledby="cw-limits-title">
  <style>${LIMITS_CSS}</style>
  <h2 id="cw-limits-title">Your daily limit</h2>
  <p class="now"><strong data-testid="daily-limit">${dollars(limits.daily_limit)}</strong> <span class="muted">a day, ${esc(limits.currency)}</span></p>
  <p id="cw-limits-open" class="muted" data-testid="limits-request-open"${open ? '' : ' hidden'}>${esc(openText)}</p>
  <details id="cw-limits-ask"${open ? ' hidden' : ''}${expanded ? ' open' : ''}>
   <summary data-testid="limits-request-toggle">Request a higher limit</summary>
   <form id="cw-limits-form" novalidate>
    <label class="label" for="cw-limits-amount">Daily limit you need <span class="muted">(optional)</span></label>
    <div class="field"><span aria-hidden="true">$</span><input id="cw-limits-amount" name="requested_daily_limit" inputmode="decimal" autocomplete="off"
      placeholder="${esc((limits.daily_limit * 2 / 100).toLocaleString('en-US'))}" aria-describedby="cw-limits-hint" data-testid="limits-request-amount"></div>
    <div id="cw-limits-hint" class="muted small">In US dollars, more than ${dollars(limits.daily_limit)}. Leave it empty to ask for a review.</div>
    <input type="submit" value="Send request" data-testid="limits-request-submit">
   </form>
  </details>
  <div id="cw-limits-result" role="status" aria-live="polite" data-testid="limits-result"></div>
  ${sandbox ? '<p class="muted small" data-testid="limits-sandbox">Sandbox: decide it with <code>POST /simulate/limits_decision</code>.</p>' : ''}
 </section>
 <script>
 (function(){
  var cfg = ${scriptJson(state)};
  var form = document.getElementById('cw-limits-form'), amount = document.getElementById('cw-limits-amount');
  var result = document.getElementById('cw-limits-result'), ask = document.getElementById('cw-limits-ask'), openNote = document.getElementById('cw-limits-open');
  if (!form) return;
  var send = form.querySelector('input[type=submit]');
  function money(c){ return '$' + (c / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }
  function fail(msg, field){
    result.className = 'error'; result.textContent = msg;
    if (field) { amount.setAttribute('aria-invalid', 'true'); amount.focus(); }
  }
  amount.addEventListener('input', function(){ amount.removeAttribute('aria-invalid'); if (result.className === 'error') { result.className = ''; result.textContent = ''; } });
  form.addEventListener('submit', function(e){
    e.preventDefault();
    var raw = amount.value.replace(/[\\s,$]/g, '');
    var body = { s: cfg.s };
    if (raw !== '') {
      if (!/^[0-9]{1,8}(\\.[0-9]{1,2})?$/.test(raw)) return fail('Enter an amount in dollars, like 5000 or 5,000.00.', true);
      var cents = Math.round(parseFloat(raw) * 100);
      if (cents <= cfg.limit) return fail('Enter more than your current limit of ' + money(cfg.limit) + '.', true);
      body.requested_daily_limit = cents;
    }
    send.disabled = true; result.className = ''; result.textContent = 'Sending…';
    fetch(cfg.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(function(res){ return res.json().then(function(j){ return { ok: res.ok, j: j }; }); })
      .then(function(x){
        send.disabled = false;
        if (!x.ok) return fail((x.j.error && x.j.error.message) || 'Something went wrong: try again.', x.j.error && x.j.error.field === 'requested_daily_limit');
        ask.hidden = true;
        openNote.textContent = 'You asked for a higher limit' + (x.j.requested_daily_limit ? ' of ' + money(x.j.requested_daily_limit) + ' a day' : '') + '. You will hear back once it is reviewed.';
        openNote.hidden = false;
        result.className = 'sent'; result.textContent = 'Request sent';
      })
      .catch(function(){ send.disabled = false; fail('Network error: try again.'); });
  });
 })();
 </script>`;
}
