import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import {
  createTransfer, getTransfer, keysByPublicKey, loadForPayer, onboard, payerDecision, rotateSecretKey, simulateTransfer,
} from '../../payments/sendcash/sendcash.js';
import { authenticate } from '../auth.js';
import { DomainError } from '../errors.js';
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

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

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

  for (const [path, status] of [['complete', 'Completed'], ['fail', 'Failed']] as const) {
    app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof PayerBody> }>(`/simulate/transfer/:id/${path}`, {
      schema: { params: IdParams, body: PayerBody, summary: `Sandbox: mark a pending transfer ${status}` }, onRequest: read,
    }, async (req) => simulateTransfer(deps, req.caller, req.params.id, status, req.body ?? {}));
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
    const sandbox = t.environment === 'sandbox';
    const state = JSON.stringify({ t: req.query.t, decision: `/sendcash/pay/${t.operator_id}/${t.id}/decision` }).replace(/</g, '\\u003c');
    return reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Pay by bank transfer · ${esc(t.operator_name)}</title>
<style>body{font-family:system-ui,sans-serif;background:#f4f6fb;margin:0;padding:40px 16px;color:#14213d;display:flex;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001;max-width:440px;width:100%;padding:28px}
.amount{font-size:2rem;font-weight:700;margin:8px 0 16px}dl{display:grid;grid-template-columns:auto 1fr;gap:6px 12px}dt{color:#5c677d}
label{display:block;margin-top:10px;font-size:.9rem}input,select{width:100%;padding:8px;border:1px solid #c5cbd8;border-radius:6px;font:inherit;box-sizing:border-box}
.actions{display:flex;gap:8px;margin-top:20px}button{font:inherit;padding:10px 14px;border-radius:8px;border:1px solid #c5cbd8;background:#fff;cursor:pointer}
button.primary{background:#0b6e4f;border-color:#0b6e4f;color:#fff;flex:1}button:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}
#result{margin-top:16px;font-weight:600}.sandbox{background:#fff3cd;color:#7a5a00;border-radius:4px;padding:2px 8px;font-size:.75rem;font-weight:600}</style></head>
<body><main>
${sandbox ? '<span class="sandbox">SANDBOX</span>' : ''}
<h1 style="font-size:1.1rem">${esc(t.operator_name)}</h1>
<div class="amount" data-testid="amount">₦${naira(t.amount_kobo)}</div>
<dl><dt>Reference</dt><dd data-testid="reference">${esc(t.reference)}</dd><dt>To account</dt><dd>${esc(t.destination_account_number)}</dd><dt>Bank code</dt><dd>${esc(t.destination_bank_code)}</dd></dl>
${t.status === 'Pending' ? `<form id="payer">
<label>Account name <input name="senderAccountName" required value="${sandbox ? 'Sandbox Payer' : ''}"></label>
<label>Account number <input name="sourceAccountNumber" required inputmode="numeric" value="${sandbox ? '0123456789' : ''}"></label>
<label>Account type <select name="sourceAccountType"><option value="personal">personal</option><option value="business">business</option></select></label>
<label>Bank code <input name="sourceBankCode" required value="${sandbox ? '058' : ''}"></label>
<div class="actions"><button class="primary" type="submit" data-action="complete">I have sent the transfer</button>${sandbox ? '<button type="button" data-action="fail">Fail (sandbox)</button>' : ''}</div>
</form>` : ''}
<div id="result" role="status" aria-live="polite">${t.status === 'Pending' ? '' : `Transfer ${esc(t.status.toLowerCase())}`}</div>
</main>
<script>(function(){var s=${state};var f=document.getElementById('payer');if(!f)return;var r=document.getElementById('result');
function go(action){var d={t:s.t,action:action};new FormData(f).forEach(function(v,k){d[k]=v;});
f.querySelectorAll('button').forEach(function(b){b.disabled=true;});r.textContent='Processing…';
fetch(s.decision,{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(d)}).then(function(x){return x.json().then(function(j){return{ok:x.ok,j:j};});})
.then(function(x){if(!x.ok){r.textContent=(x.j.error&&x.j.error.message)||'Something went wrong';return;}f.remove();r.textContent='Transfer '+x.j.status.toLowerCase();
if(window.opener)window.opener.postMessage({source:'cashwire-sendcash',reference:x.j.reference,status:x.j.status},'*');});}
f.addEventListener('submit',function(e){e.preventDefault();go('complete');});
var fb=f.querySelector('[data-action=fail]');if(fb)fb.addEventListener('click',function(){go('fail');});})();</script>
</body></html>`);
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
