import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { BANKS, bankName } from '../../domain/banks.js';
import type { Branding } from '../../domain/branding.js';
import { SANDBOX_PAYER } from '../../domain/sendcash.js';
import type { Deps } from '../../payments/context.js';
import { brandingOf } from '../../payments/operators/settings.js';
import {
  createTransfer, getTransfer, keysByPublicKey, loadForPayer, onboard, payerDecision, rotateSecretKey, simulateTransfer, type TransferRow,
} from '../../payments/sendcash/sendcash.js';
import { authenticate } from '../auth.js';
import { DomainError } from '../errors.js';
import { BRAND_CSS, LOGO_SCRIPT, WAY_BACK_SCRIPT, brandHeader, esc, paletteCss, scriptJson } from './hosted-brand.js';
import { IdParams } from '../schemas.js';
import { CHECKOUT_SCRIPT } from './transfers-script.js';

const Str = (max: number) => Type.String({ minLength: 1, maxLength: max });
// No bounds here: toKobo decides, so that 0, -1 and 1.005 all get the same `invalid_amount` as "abc".
const Amount = Type.Union([Type.Number(), Type.String({ minLength: 1, maxLength: 20 })], { description: 'currency units, e.g. 100.23' });
const ChargeBody = Type.Object({
  publicKey: Str(100),
  signature: Str(128),
  userId: Str(255),
  paymentReference: Type.Optional(Str(255)),
  transactionReference: Type.Optional(Str(255)),
  amount: Amount,
  destinationAccountNumber: Str(34),
  destinationBankCode: Str(20),
  description: Type.Optional(Type.String({ maxLength: 500 })),
  name: Type.Optional(Type.String({ maxLength: 200 })),
});
const Payer = {
  senderAccountName: Type.Optional(Str(200)),
  sourceAccountNumber: Type.Optional(Str(34)),
  sourceAccountType: Type.Optional(Type.Union([Type.Literal('personal'), Type.Literal('business')])),
  sourceBankCode: Type.Optional(Str(20)),
};
const PayerBody = Type.Object(Payer);
const PageParams = Type.Object({ op: Str(64), id: Str(64) });
const DecisionBody = Type.Object({ t: Str(128), action: Type.Union([Type.Literal('complete'), Type.Literal('fail')]), ...Payer });

function cors(reply: FastifyReply) {
  return reply
    .header('Access-Control-Allow-Origin', '*')
    .header('Access-Control-Allow-Methods', 'POST, OPTIONS')
    .header('Access-Control-Allow-Headers', 'content-type')
    .header('Access-Control-Max-Age', '600');
}

/** Kobo as the payer reads it, exactly and with separators: 1234567891 → "12,345,678.91" (as the hosted page shows dollars). */
const naira = (kobo: number) => `${Math.floor(kobo / 100).toLocaleString('en-US')}.${String(kobo % 100).padStart(2, '0')}`;

/** The page's own colours, used when the operator sets no accent. */
const DEFAULT_PALETTE = { accent: '#0b6e4f', onAccent: '#ffffff', ink: '#0b6e4f', tint: '#e7f1ed', ring: '#93c5fd' };

const PAGE_STYLE = `
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;background:#f4f6fb;margin:0;padding:40px 16px;color:#14213d;display:flex;justify-content:center;line-height:1.4}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001;max-width:440px;width:100%;padding:28px}
h1{font-size:1.1rem} h2{font-size:1rem;margin:22px 0 8px} .muted{color:#5c677d} .small{font-size:.85rem}
.amount{font-size:2rem;font-weight:700;margin:8px 0 16px}
dl{display:grid;grid-template-columns:auto 1fr;gap:6px 12px;margin:12px 0 0;padding:12px 14px;border-radius:8px;background:var(--tint)}
dt{color:#5c677d} dd{margin:0;font-weight:600;overflow-wrap:anywhere} dd.copy{user-select:all;-webkit-user-select:all;font-variant-numeric:tabular-nums}
ol.steps{margin:0;padding-left:1.3em} ol.steps li{margin:6px 0} ol.steps li::marker{color:var(--ink);font-weight:700}
label{display:block;margin-top:12px;font-size:.9rem;font-weight:600}
input,select{display:block;width:100%;margin-top:4px;padding:9px 10px;border:1px solid #8792a2;border-radius:6px;font:inherit;font-weight:400;background:#fff;color:#14213d}
input:focus-visible,select:focus-visible{outline:3px solid var(--ring);outline-offset:1px}
input[aria-invalid=true],select[aria-invalid=true]{border-color:#b91c1c}
.hint,.err{font-size:.85rem;line-height:1.35;margin-top:4px} .hint{font-weight:400;color:#5c677d} .err{color:#b91c1c;font-weight:600} .err:empty{display:none} .hint[hidden]{display:none}
.actions{display:flex;gap:8px;margin-top:20px;flex-wrap:wrap} .actions button{flex:1}
button{font:inherit;padding:10px 14px;border-radius:8px;border:1px solid #c5cbd8;background:#fff;color:#14213d;cursor:pointer}
button.primary{background:var(--accent);border-color:var(--accent);color:var(--on-accent);font-weight:600} .actions button.primary{flex-basis:100%}
button:focus-visible{outline:3px solid var(--ring);outline-offset:2px} button:disabled{opacity:.6;cursor:wait}
#result{margin-top:16px;font-weight:600} #result:empty{margin:0} #result.error{color:#b91c1c} #result.completed{color:#15803d} #result.failed{color:#b91c1c}
.way-back button.close{width:100%}
@media (max-width:480px){body{padding:16px 12px} main{padding:20px}}
.sandbox{display:inline-block;background:#fff3cd;color:#7a5a00;border-radius:4px;padding:2px 8px;font-size:.75rem;font-weight:600;margin-bottom:8px}
${BRAND_CSS}`;

/**
 * The payer page of a Sendcash charge: what to send where (the beneficiary bank by name), step by step, then the
 * account the payer paid from, checked before it is sent (a 10-digit NUBAN, a bank from the list or a code).
 */
function payerPage(t: TransferRow, brand: Branding, token: string): string {
  const sandbox = t.environment === 'sandbox';
  const pending = t.status === 'Pending';
  const amount = `₦${naira(t.amount_kobo)}`;
  const bank = bankName(t.destination_bank_code);
  const state = {
    t: token, decision: `/sendcash/pay/${t.operator_id}/${t.id}/decision`, status: t.status,
    back: { name: brand.display_name, href: brand.return_url, top: true },
  };
  const payerBank = sandbox ? SANDBOX_PAYER.sourceBankCode : '';
  const options = [`<option value=""${payerBank ? '' : ' selected'}>Choose your bank</option>`,
    ...BANKS.map((b) => `<option value="${esc(b.code)}"${b.code === payerBank ? ' selected' : ''}>${esc(b.name)}</option>`),
    '<option value="other">Another bank (enter its code)</option>'].join('');
  const instructions = pending ? `<section id="how" data-testid="instructions">
<h2>How to pay</h2>
<ol class="steps">
<li>Open your bank's app or internet banking and start a transfer.</li>
<li>Send exactly <strong>${amount}</strong> to account <strong>${esc(t.destination_account_number)}</strong> at <strong>${esc(bank)}</strong>.</li>
<li>Put <strong>${esc(t.reference)}</strong> in the transfer's description (narration) so that your payment can be matched.</li>
<li>When you have sent it, tell us below which account you paid from, and press <strong>I have sent the transfer</strong>.</li>
</ol></section>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Pay by bank transfer · ${esc(brand.display_name)}</title>
<style>${PAGE_STYLE}${paletteCss(brand, DEFAULT_PALETTE)}</style></head>
<body><main>
${sandbox ? '<span class="sandbox">SANDBOX</span>' : ''}
${brandHeader(brand, 'font-size:1.1rem')}
<div class="muted">Pay by bank transfer</div>
<div class="amount" data-testid="amount">${amount}</div>
<dl aria-label="Transfer to"><dt>Bank</dt><dd data-testid="bank-name">${esc(bank)}</dd><dt>Account number</dt><dd class="copy" data-testid="account-number">${esc(t.destination_account_number)}</dd><dt>Amount</dt><dd>${amount}</dd><dt>Reference</dt><dd class="copy" data-testid="reference">${esc(t.reference)}</dd></dl>
${instructions}
${pending ? `<form id="payer" novalidate>
<h2>The account you paid from</h2>
<label for="f-name">Account name</label><input id="f-name" name="senderAccountName" required autocomplete="name" aria-describedby="f-name-err" value="${sandbox ? esc(SANDBOX_PAYER.senderAccountName) : ''}"><div class="err" id="f-name-err" aria-live="polite"></div>
<label for="f-account">Account number</label><input id="f-account" name="sourceAccountNumber" required inputmode="numeric" autocomplete="off" maxlength="14" placeholder="0123456789" aria-describedby="f-account-hint f-account-err" value="${sandbox ? esc(SANDBOX_PAYER.sourceAccountNumber) : ''}"><div class="hint" id="f-account-hint">10 digits (NUBAN)</div><div class="err" id="f-account-err" aria-live="polite"></div>
<label for="f-type">Account type</label><select id="f-type" name="sourceAccountType"><option value="personal">personal</option><option value="business">business</option></select>
<label for="f-bank">Your bank</label><select id="f-bank" name="sourceBankCode" required aria-describedby="f-bank-err">${options}</select>
<div id="f-other" hidden><label for="f-code">Bank code</label><input id="f-code" inputmode="numeric" autocomplete="off" maxlength="6" placeholder="e.g. 090267" aria-describedby="f-bank-err"></div><div class="err" id="f-bank-err" aria-live="polite"></div>
<div class="actions"><button class="primary" type="submit" data-action="complete">I have sent the transfer</button>${sandbox ? '<button type="button" data-action="fail">Fail (sandbox)</button>' : ''}</div>
</form>` : ''}
<div id="result" role="status" aria-live="polite" class="${pending ? '' : esc(t.status.toLowerCase())}">${pending ? '' : `Transfer ${esc(t.status.toLowerCase())}`}</div>
<div id="way-back" class="way-back" hidden></div>
</main>
<script>(function(){
var s = ${scriptJson(state)};
${WAY_BACK_SCRIPT.trim()}
${LOGO_SCRIPT.trim()}
var wb = document.getElementById('way-back');
if (s.status !== 'Pending') { wayBack(wb, s.back); return; }
var f = document.getElementById('payer'), r = document.getElementById('result');
var F = { name: document.getElementById('f-name'), account: document.getElementById('f-account'), bank: document.getElementById('f-bank'), code: document.getElementById('f-code') };
var ERR = { name: 'f-name-err', account: 'f-account-err', bank: 'f-bank-err' };
// An error shows under its field; the account number's takes the place of its hint, so that the form does not move
// when it appears as the field is left (the payer may be clicking the button below at that moment).
function say(k, text){
  document.getElementById(ERR[k]).textContent = text || '';
  if (k === 'account') document.getElementById('f-account-hint').hidden = !!text;
  (k === 'bank' && F.bank.value === 'other' ? F.code : F[k]).setAttribute('aria-invalid', text ? 'true' : 'false');
}
// What the payer typed: an account number of 10 digits (spaces allowed, nothing else), a bank.
function accountDigits(){ return F.account.value.replace(/\\s+/g, ''); }
function problem(k){
  if (k === 'name') return F.name.value.trim() ? '' : 'Enter the name on the account you paid from';
  if (k === 'account') {
    var a = accountDigits();
    if (!a) return 'Enter the account number you paid from';
    if (!/^[0-9]+$/.test(a)) return 'Use digits only (0–9)';
    if (a.length !== 10) return 'Enter 10 digits (you typed ' + a.length + ')';
    return '';
  }
  if (F.bank.value === 'other') return /^[0-9]{3,6}$/.test(F.code.value.trim()) ? '' : 'Enter the code of your bank: 3 to 6 digits';
  return F.bank.value ? '' : 'Choose the bank you paid from';
}
var touched = {};
// Checked when the account number is left, and for every field at submit; after that, as the payer corrects it.
F.account.addEventListener('blur', function(){ if (F.account.value) touched.account = true; if (touched.account) say('account', problem('account')); });
['name', 'account'].forEach(function(k){
  F[k].addEventListener('input', function(){ if (touched[k] || !problem(k)) say(k, touched[k] ? problem(k) : ''); });
});
F.bank.addEventListener('change', function(){
  document.getElementById('f-other').hidden = F.bank.value !== 'other';
  if (F.bank.value === 'other') F.code.focus();
  say('bank', '');
});
F.code.addEventListener('input', function(){ if (!problem('bank')) say('bank', ''); });
function check(){
  var first = null;
  ['name', 'account', 'bank'].forEach(function(k){ var p = problem(k); touched[k] = true; say(k, p); if (p && !first) first = k; });
  if (first) (first === 'bank' && F.bank.value === 'other' ? F.code : F[first]).focus();
  return !first;
}
var SERVER_FIELD = { senderAccountName: 'name', sourceAccountNumber: 'account', sourceBankCode: 'bank' };
function buttons(on){ f.querySelectorAll('button').forEach(function(b){ b.disabled = !on; }); }
function go(action){
  if (!check()) { r.className = 'error'; r.textContent = 'Check the details of the account you paid from'; return; }
  var d = { t: s.t, action: action, senderAccountName: F.name.value.trim(), sourceAccountNumber: accountDigits(),
    sourceAccountType: document.getElementById('f-type').value, sourceBankCode: F.bank.value === 'other' ? F.code.value.trim() : F.bank.value };
  buttons(false); r.className = ''; r.textContent = 'Processing…';
  fetch(s.decision, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(d) })
    .then(function(x){ return x.json().then(function(j){ return { ok: x.ok, status: x.status, j: j }; }); })
    .then(function(x){
      if (!x.ok) {
        var e = x.j.error || {}, k = SERVER_FIELD[e.field];
        r.className = 'error'; r.textContent = e.message || 'Something went wrong';
        if (k) { say(k, problem(k) || 'Check this field'); r.textContent = 'Check the details of the account you paid from'; }
        // A refusal of what was typed, or a server failure, decided nothing: the payer can try again. A 409 is final.
        if (x.status === 400 || x.status >= 500) buttons(true); else wayBack(wb, s.back);
        return;
      }
      f.remove(); var how = document.getElementById('how'); if (how) how.remove();
      r.className = x.j.status.toLowerCase(); r.textContent = 'Transfer ' + x.j.status.toLowerCase();
      wayBack(wb, s.back);
      if (window.opener) window.opener.postMessage({ source: 'cashwire-sendcash', reference: x.j.reference, status: x.j.status }, '*');
    }, function(){ r.className = 'error'; r.textContent = 'Network error: try again'; buttons(true); });
}
f.addEventListener('submit', function(e){ e.preventDefault(); go('complete'); });
var fb = f.querySelector('[data-action=fail]'); if (fb) fb.addEventListener('click', function(){ go('fail'); });
})();</script>
</body></html>`;
}

export const sendcashRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const create = async (req: FastifyRequest, reply: FastifyReply) => authenticate(deps, req, reply, 'create');
  const read = async (req: FastifyRequest, reply: FastifyReply) => authenticate(deps, req, reply, 'read');

  app.post<{ Body: { webhook_url: string } }>('/sendcash/onboarding', {
    schema: { body: Type.Object({ webhook_url: Str(2048) }), summary: 'Sendcash: set the webhook URL; the first call returns the Signature Token and the GraphQL keys' },
    onRequest: create,
  }, async (req) => onboard(deps, req.caller, req.body));
  app.post('/sendcash/keys/rotate', { schema: { summary: 'Sendcash: a new GraphQL secret key (the public key stays)' }, onRequest: read },
    async (req) => rotateSecretKey(deps, req.caller));
  app.get<{ Params: Static<typeof IdParams> }>('/sendcash/transfers/:id', { schema: { params: IdParams, summary: 'Sendcash: one transfer' }, onRequest: read },
    async (req) => getTransfer(deps, req.caller, req.params.id));

  // Charges come from the merchant's checkout page (another origin): CORS, and the public key in the body.
  app.options('/sendcash/charges', { schema: { hide: true } }, async (_req, reply) => cors(reply).status(204).send());
  app.post<{ Body: Static<typeof ChargeBody> }>('/sendcash/charges', {
    schema: { body: ChargeBody, summary: 'Sendcash: create a charge, signed with the secret key' },
    // Before parsing and validation, so that every answer (a 400 for a bad body too) is readable by the checkout page.
    onRequest: async (_req, reply) => {
      cors(reply);
    },
  }, async (req, reply) => {
    const keys = await keysByPublicKey(deps, req.body.publicKey);
    if (!keys) throw new DomainError('unknown_public_key');
    const r = await createTransfer(deps, keys, req.body);
    return reply.status(r.statusCode).send(r.transfer);
  });

  for (const path of ['complete', 'fail'] as const) {
    app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof PayerBody> }>(`/simulate/transfer/:id/${path}`, {
      schema: { params: IdParams, body: PayerBody, summary: `Sandbox: ${path} a pending transfer (${path === 'complete' ? 'Completed' : 'Failed'})` }, onRequest: read,
    }, async (req) => simulateTransfer(deps, req.caller, req.params.id, path, req.body ?? {}));
  }

  app.get<{ Params: Static<typeof PageParams>; Querystring: { t?: string } }>('/sendcash/pay/:op/:id', { schema: { params: PageParams, hide: true } }, async (req, reply) => {
    let t;
    try {
      t = await loadForPayer(deps, req.params.op, req.params.id, req.query.t);
    } catch (err) {
      if (err instanceof DomainError && err.code === 'transfer_not_found') {
        return reply.status(404).type('text/html; charset=utf-8').send('<!doctype html><meta charset="utf-8"><title>Not found</title><h1>Transfer not found</h1>');
      }
      throw err;
    }
    const brand = await brandingOf(deps, t.operator_id);
    return reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer')
      .send(payerPage(t, brand, req.query.t!));
  });

  app.post<{ Params: Static<typeof PageParams>; Body: Static<typeof DecisionBody> }>('/sendcash/pay/:op/:id/decision', {
    schema: { params: PageParams, body: DecisionBody, hide: true },
  }, async (req) => {
    const { t, action, ...payer } = req.body;
    return payerDecision(deps, req.params.op, req.params.id, t, action, payer);
  });

  app.get('/sdk/transfers.js', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('application/javascript; charset=utf-8').header('Access-Control-Allow-Origin', '*').header('Cache-Control', 'public, max-age=300')
      .send(CHECKOUT_SCRIPT.replace('__CASHWIRE_BASE__', deps.config.publicUrl)));

};
