/** The cashier page, rendered on the server. The two buttons are Cashwire's PushJS-compatible button. */

const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

/** @param {number} cents */
export const dollars = (cents) => usd.format(cents / 100);

/** @param {unknown} s */
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = `
  *{box-sizing:border-box} body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;background:#f4f6fb;color:#0b1f44}
  main{max-width:560px;margin:32px auto;padding:0 16px} h1{margin:0 0 4px;font-size:28px} h2{font-size:18px;margin:0 0 12px}
  .muted{color:#5b6b82} .card{background:#fff;border:1px solid #dde3ee;border-radius:12px;padding:20px;margin:16px 0}
  .balance{display:flex;justify-content:space-between;align-items:baseline} #balance{font-size:32px;font-weight:700}
  label{display:block;margin-bottom:12px;font-weight:600} input{display:block;width:320px;max-width:100%;margin-top:4px;padding:10px 12px;font:inherit;border:1px solid #b8c2d3;border-radius:8px}
  #message{padding:12px 16px;border-radius:8px;margin:16px 0} #message:empty{display:none}
  #message.approved,#message.settled{background:#e7f6ec;color:#11592c} #message.declined,#message.error{background:#fdecec;color:#8a1c1c}
  #message.canceled,#message.pending,#message.created{background:#eef1f6;color:#33415c}
  table{width:100%;border-collapse:collapse;font-size:14px} td{padding:6px 4px;border-top:1px solid #e6eaf1}
  td.amount{text-align:right;font-variant-numeric:tabular-nums}`;

/**
 * @param {{
 *   cashwireUrl: string,
 *   player: { name: string, balanceCents: number, hasDeposited: boolean,
 *     transactions: import('./db.js').Transaction[] },
 *   message?: { text: string, kind: string } | null,
 * }} view
 */
export function cashierPage({ cashwireUrl, player, message }) {
  const rows = player.transactions
    .map((t) => `<tr data-id="${esc(t.id)}" data-status="${esc(t.status)}">
      <td>${esc(t.direction === 'deposit' ? 'Deposit' : 'Withdrawal')}</td><td class="amount">${dollars(t.amount_cents)}</td>
      <td class="status">${esc(t.status)}${t.decline_category ? ` (${esc(t.decline_category.replace(/_/g, ' '))})` : ''}</td>
      <td class="muted">${esc(`${t.created_at.toISOString().slice(0, 16).replace('T', ' ')} UTC`)}</td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Cashier · Lucky Star Casino</title>
<style>${STYLE}</style>
<script src="${esc(cashwireUrl)}/sdk/push.umd.js"></script>
</head><body><main>
  <h1>Cashier</h1>
  <div class="muted">Lucky Star Casino · <span id="player-name">${esc(player.name)}</span></div>
  <div id="message" role="status" class="${esc(message?.kind ?? '')}">${esc(message?.text ?? '')}</div>
  <section class="card balance"><span>Balance</span><span id="balance">${dollars(player.balanceCents)}</span></section>
  <section class="card" id="deposit-section">
    <h2>Deposit</h2>
    <label>Amount (USD)<input id="deposit-amount" inputmode="decimal" autocomplete="off" value="50.00"></label>
    <div id="deposit-button"></div>
  </section>
  <section class="card" id="withdraw-section"${player.hasDeposited ? '' : ' hidden'}>
    <h2>Withdraw</h2>
    <label>Amount (USD)<input id="withdraw-amount" inputmode="decimal" autocomplete="off" value="20.00"></label>
    <div id="withdraw-button"></div>
  </section>
  ${player.hasDeposited ? '' : '<p class="muted" id="withdraw-note">Withdrawals open after your first deposit.</p>'}
  <section class="card"><h2>History</h2>
    ${rows ? `<table id="history"><tbody>${rows}</tbody></table>` : '<p class="muted" id="history-empty">No transactions yet.</p>'}
  </section>
</main>
<script>
(function () {
  var message = document.getElementById('message');
  function fail(text) { message.className = 'error'; message.textContent = text; }
  if (!window.PushCash) return fail('The payment button could not be loaded. Try again later.');
  // The button calls this on click: our backend records the transaction, creates the intent and answers its url.
  function session(kind) {
    return function () {
      var amount = document.getElementById(kind + '-amount').value;
      return fetch('/api/' + kind, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: amount }) })
        .then(function (res) { return res.json().then(function (j) { return { ok: res.ok, j: j }; }); })
        .then(function (r) {
          if (!r.ok) { fail(r.j.message || 'Something went wrong'); throw new Error(r.j.error); }
          return r.j.url;
        });
    };
  }
  window.PushCash.Button({ selector: '#deposit-button', label: 'Deposit with Push',
    style: { color: 'royal', shape: 'pill', width: 320, height: 48 }, onClick: session('deposit') }).render();
  // Push Cash's rule: no withdrawal button before the first deposit.
  if (${player.hasDeposited ? 'true' : 'false'}) {
    window.PushCash.Button({ selector: '#withdraw-button', label: 'Withdraw with Push',
      style: { color: 'white', shape: 'rect', width: 320, height: 44 }, onClick: session('withdraw') }).render();
  }
})();
</script>
</body></html>`;
}
