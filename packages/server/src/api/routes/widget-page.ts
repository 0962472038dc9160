/**
 * The Widget's hosted page (the `url` of POST /user/{id}/url): a card form, or a sandbox bank sign-in, made to live in
 * an iframe that `window.PushCash.Widget` (packages/button) puts on the operator's page. Pure: state in, HTML out.
 *
 * Everything is inline (the page is served with `default-src 'none'; style-src 'unsafe-inline'; script-src
 * 'unsafe-inline'; connect-src 'self'`; `img-src` adds the origin of the operator's logo when its branding has one). Card data goes only to this page's own POST /widget/card; the parent window
 * gets the token, by postMessage, and only once it has proved its origin:
 *   parent → page  {source: 'pushcash-sdk', type: 'hello', styling} | {…, type: 'style', styling} | {…, type: 'tokenize', id}
 *   page → parent  {source: 'pushcash-widget', v: 1, type: 'ready', valid, method} | {…, 'resize', height} |
 *                  {…, 'valid', valid} | {…, 'tokenized', id, token} | {…, 'error', id?, code, message, fields?, server_code?}
 * The page accepts messages only from window.parent and only from an origin in `allowedOrigins` (any when null); the
 * first such message fixes the parent's origin, and the page posts only to it. A parent whose origin is not allowed
 * gets no answer at all, and the page shows that the form is not enabled for that site.
 */
import { logoOrigin, palette } from '../../domain/branding.js';

export interface WidgetPageState {
  nonce: string;
  /** null: the user picks card or bank account. */
  type: 'card_only' | 'secure_debit' | 'apple_pay' | null;
  direction: 'cash_in' | 'cash_out';
  sandbox: boolean;
  operatorName: string;
  /** Parent origins allowed to talk to the widget; null = any (the sandbox, with no allowed_origins set). */
  allowedOrigins: string[] | null;
  /**
   * The operator's branding (operator settings `branding`): the name in the title, a small logo beside the form's
   * note, the accent on the button, focus rings and the selected tab. None: the default look.
   */
  branding?: { displayName: string; logoUrl: string | null; accentColor: string | null };
}

/** The widget's own accent colours, used when the operator sets none (unchanged from before branding). */
const DEFAULT_ACCENT = { accent: '#1d4ed8', onAccent: '#ffffff', ink: '#1d4ed8', tint: '#e8edfb' };

/** The accent as CSS variables: `--ac` (button), `--on-ac` (its text), `--ac-ink` (focus rings, the selected tab's mark), `--ac-hover`. */
function accentCss(accentColor: string | null | undefined): string {
  const p = palette(accentColor, DEFAULT_ACCENT);
  const hover = p === DEFAULT_ACCENT ? '#1a43b8' : darken(p.accent, 0.1);
  return `:root{--ac:${p.accent};--on-ac:${p.onAccent};--ac-ink:${p.ink};--ac-hover:${hover}${p === DEFAULT_ACCENT ? '' : `;--ac-sel:${p.ink}`}}`;
}

function darken(hex: string, by: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `#${[(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => Math.round(v * (1 - by)).toString(16).padStart(2, '0')).join('')}`;
}

/** The logo, small: it shares the note's line under the form. */
function logoHtml(b: WidgetPageState['branding']): string {
  if (!b?.logoUrl || !logoOrigin(b.logoUrl)) return '';
  return `<img class="logo" src="${esc(b.logoUrl)}" alt="${esc(b.displayName)}" data-testid="brand-logo" decoding="async" referrerpolicy="no-referrer">`;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** JSON for a <script> block: no `</script>`, no `<!--`, no line separators. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

/** The same strict CSS color pattern as the SDK's (packages/button/src/widget.ts): no url(), var(), `;` or braces. */
const N = '\\s*[+-]?(?:\\d+(?:\\.\\d+)?|\\.\\d+)%?\\s*';
const COLOR_SOURCE = `^(?:#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})|(?:rgba?|hsla?)\\((?:${N},${N},${N}(?:,${N})?|${N}\\s${N}\\s${N}(?:/${N})?)\\)|[a-z]{3,24})$`;

/** An allowed origin as the browser writes event.origin: scheme://host[:port], lower case, no trailing slash. */
function normalizeOrigin(o: string): string {
  try {
    const u = new URL(o);
    return u.origin.toLowerCase();
  } catch {
    return o.trim().replace(/\/+$/, '').toLowerCase();
  }
}

const FONT = 'system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif';

/**
 * Compact on purpose: with the tabs, the card form is about 130 px high in a wide iframe and under 200 px at 390 px
 * (two rows), so it fits the 212 px container of the reference integration. Each field keeps a line for its error, so
 * an error does not make the page taller.
 */
const STYLE = `
:root{--bg:#fff;--fg:#14213d;--fs:15px;--r:8px;--pad:6px;color-scheme:light}
*{box-sizing:border-box}
html,body{margin:0;padding:0;background:transparent}
body{font-family:${FONT};font-size:var(--fs);line-height:1.25;color:var(--fg);-webkit-text-size-adjust:100%}
.w{background:var(--bg);padding:var(--pad);overflow:hidden}
.muted{color:#5c677d;color:color-mix(in srgb,var(--fg) 72%,var(--bg))}
.tabs{display:flex;gap:4px;margin:0 0 6px;padding:3px;border-radius:calc(var(--r) + 2px);background:color-mix(in srgb,var(--fg) 7%,var(--bg));width:max-content;max-width:100%}
.tab{font:inherit;font-size:.85em;font-weight:600;border:0;border-radius:var(--r);padding:.3em .9em;background:transparent;color:inherit;cursor:pointer;white-space:nowrap}
.tab[aria-selected=true]{background:var(--bg);box-shadow:0 1px 3px #0002,inset 0 -2px 0 var(--ac-sel,transparent)}
.tab:focus-visible,.btn:focus-visible{outline:2px solid var(--ac-ink,#1d4ed8);outline-offset:1px}
.grid{display:flex;flex-wrap:wrap;column-gap:8px}
.f{min-width:0}
.f-num{flex:1 1 100%}.f-exp{flex:1 1 0}.f-cvv{flex:1 1 0}
@media (min-width:440px){.f-num{flex:1 1 0}.f-exp{flex:0 0 6.6em}.f-cvv{flex:0 0 5.4em}}
.f-user,.f-pass{flex:1 1 0}
@media (max-width:279px){.f-user,.f-pass{flex:1 1 100%}}
label{display:block;font-size:.8em;font-weight:600;margin:0 0 2px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.box{position:relative}
input{display:block;width:100%;font:inherit;font-size:1em;line-height:1.25;height:2.4em;margin:0;padding:0 .7em;border:1px solid #8792a2;border:1px solid color-mix(in srgb,var(--fg) 42%,var(--bg));border-radius:var(--r);background:var(--bg);color:var(--fg);outline:none;-webkit-appearance:none;appearance:none}
input::placeholder{color:#5c677d;color:color-mix(in srgb,var(--fg) 55%,var(--bg));opacity:1}
input:focus{border-color:var(--ac-ink,#1d4ed8);box-shadow:0 0 0 2px #1d4ed833;box-shadow:0 0 0 2px color-mix(in srgb,var(--ac-ink,#1d4ed8) 20%,transparent)}
input[aria-invalid=true]{border-color:#b91c1c}
input[aria-invalid=true]:focus{box-shadow:0 0 0 2px #b91c1c33}
input:disabled{opacity:.75;cursor:default}
#cc-number{padding-right:5.6em;font-variant-numeric:tabular-nums;letter-spacing:.02em}
.brand{position:absolute;right:.6em;top:50%;transform:translateY(-50%);font-size:.68em;font-weight:700;letter-spacing:.06em;text-transform:uppercase;pointer-events:none}
.err{min-height:1.25em;font-size:.74em;line-height:1.25em;padding-top:1px;color:#b91c1c;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.foot{display:flex;align-items:flex-start;gap:6px;min-height:1.3em;font-size:.76em;line-height:1.3;margin-top:1px}
#p-bank .foot{margin-top:5px}
.foot:empty{display:none}
.sandbox{flex:none;display:inline-block;line-height:1.3;background:#fff3cd;color:#7a5a00;border-radius:4px;padding:1px 6px;font-size:.9em;font-weight:700;letter-spacing:.03em}
.note{min-width:0;overflow-wrap:anywhere}
.note.ok{color:#15803d;font-weight:600}.note.bad{color:#b91c1c;font-weight:600}
.btn{display:block;width:100%;font:inherit;font-size:.95em;font-weight:600;height:2.4em;padding:0 1em;border-radius:var(--r);border:1px solid var(--ac,#1d4ed8);background:var(--ac,#1d4ed8);color:var(--on-ac,#fff);cursor:pointer;white-space:nowrap}
.btn:hover{background:var(--ac-hover,#1a43b8)}.btn:disabled{opacity:.6;cursor:wait}
.logo{flex:none;display:block;margin-left:auto;height:auto;width:auto;max-height:1.3em;max-width:6em;object-fit:contain}
.bar{display:flex;align-items:center;gap:8px;margin:0 0 6px}.bar .tabs{margin:0}.bar .logo{max-height:22px;max-width:120px}
.linked{display:flex;align-items:center;gap:.6em;padding:.55em .8em;border:1px solid #15803d;border-radius:var(--r);margin:2px 0 6px}
.linked .tick{flex:none;display:inline-flex;align-items:center;justify-content:center;width:1.4em;height:1.4em;border-radius:50%;background:#15803d;color:#fff;font-size:.8em;font-weight:700}
.linked strong{font-weight:600}
.msg{margin:0;padding:.2em 0;font-size:.92em}
.msg strong{display:block;margin-bottom:.25em;font-size:1.02em}
[hidden]{display:none!important}
`;

function cardPanel(sandbox: boolean, tabs: boolean, logo: string): string {
  return `<section id="p-card" class="panel"${tabs ? ' role="tabpanel" aria-labelledby="t-card"' : ''}>
 <form id="card-form" novalidate autocomplete="on" aria-label="Card details">
  <div class="grid">
   <div class="f f-num"><label for="cc-number">Card number</label>
    <div class="box"><input id="cc-number" name="cardnumber" type="text" inputmode="numeric" autocomplete="cc-number" autocorrect="off" spellcheck="false" placeholder="1234 1234 1234 1234" maxlength="23" aria-describedby="cc-number-err cc-brand" aria-invalid="false"><span class="brand muted" id="cc-brand"></span></div>
    <div class="err" id="cc-number-err" aria-live="polite"></div></div>
   <div class="f f-exp"><label for="cc-exp">Expiry</label>
    <input id="cc-exp" name="exp-date" type="text" inputmode="numeric" autocomplete="cc-exp" autocorrect="off" spellcheck="false" placeholder="MM / YY" maxlength="7" aria-describedby="cc-exp-err" aria-invalid="false">
    <div class="err" id="cc-exp-err" aria-live="polite"></div></div>
   <div class="f f-cvv"><label for="cc-cvv">CVV</label>
    <input id="cc-cvv" name="cvc" type="text" inputmode="numeric" autocomplete="cc-csc" autocorrect="off" spellcheck="false" placeholder="123" maxlength="4" aria-describedby="cc-cvv-err" aria-invalid="false">
    <div class="err" id="cc-cvv-err" aria-live="polite"></div></div>
  </div>
 </form>
 <div class="foot">${sandbox ? '<span class="sandbox" data-testid="sandbox-badge">SANDBOX</span>' : ''}<span class="note muted" id="card-note" role="status" aria-live="polite">${sandbox ? 'Test card 5555 5555 5555 4444 · any future date · any 3 digits' : ''}</span>${logo}</div>
</section>`;
}

function bankPanel(sandbox: boolean, tabs: boolean, logo: string): string {
  return `<section id="p-bank" class="panel"${tabs ? ' role="tabpanel" aria-labelledby="t-bank" hidden' : ''}>
 <form id="bank-form" novalidate aria-label="Bank sign-in">
  <div class="grid">
   <div class="f f-user"><label for="bank-user">Bank username</label><input id="bank-user" name="username" type="text" autocomplete="username" autocapitalize="none" autocorrect="off" spellcheck="false" aria-describedby="bank-err"></div>
   <div class="f f-pass"><label for="bank-pass">Password</label><input id="bank-pass" name="password" type="password" autocomplete="current-password" aria-describedby="bank-err"></div>
  </div>
  <div class="err" id="bank-err" aria-live="polite"></div>
  <button class="btn" id="bank-submit" type="submit">Sign in to your bank</button>
 </form>
 <div id="bank-linked" class="linked" hidden><span class="tick" aria-hidden="true">✓</span><span><strong id="bank-account"></strong> <span class="muted">linked</span></span></div>
 <div class="foot">${sandbox ? '<span class="sandbox">SANDBOX</span>' : ''}<span class="note muted" id="bank-note" role="status" aria-live="polite">${sandbox ? 'Sandbox bank: username mxuser · password password' : ''}</span>${logo}</div>
</section>`;
}

const APPLE_PAY_PANEL = `<section id="p-apple" class="panel"><p class="msg"><strong>Apple Pay opens in the app</strong>
<span class="muted">This link carries an Apple Pay session for the Push Apple Pay plugin in your app. There is no form to fill in here.</span></p></section>`;

export function widgetPage(state: WidgetPageState): string {
  // No type: the user picks card or bank account; for a withdrawal only the bank account, as cards deposit only.
  const tabs = state.type === null && state.direction === 'cash_in';
  const method = state.type === 'secure_debit' || (state.type === null && state.direction === 'cash_out') ? 'bank'
    : state.type === 'apple_pay' ? 'apple_pay' : 'card';
  const client = {
    nonce: state.nonce,
    method,
    tabs,
    allowed: state.allowedOrigins === null ? null : state.allowedOrigins.map(normalizeOrigin),
  };
  // The logo sits beside the tabs when there are tabs, else on the note's line under the form: never a line of its own.
  const logo = logoHtml(state.branding);
  const footLogo = tabs ? '' : logo;
  const panels =
    method === 'apple_pay' ? APPLE_PAY_PANEL : method === 'bank' ? bankPanel(state.sandbox, false, footLogo) : cardPanel(state.sandbox, tabs, footLogo) + (tabs ? bankPanel(state.sandbox, true, footLogo) : '');
  const tabBar = tabs
    ? `<div class="tabs" role="tablist" aria-label="Payment method">
  <button class="tab" type="button" role="tab" id="t-card" aria-controls="p-card" aria-selected="true" data-method="card">Card</button>
  <button class="tab" type="button" role="tab" id="t-bank" aria-controls="p-bank" aria-selected="false" tabindex="-1" data-method="bank">Bank account</button>
 </div>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Payment details · ${esc(state.branding?.displayName ?? state.operatorName)}</title>
<style>${STYLE}${accentCss(state.branding?.accentColor)}</style></head>
<body><div class="w" id="w" data-method="${method}">
 <div id="blocked" class="msg" role="alert" hidden><strong>This payment form is not enabled for this site.</strong><span class="muted" id="blocked-why"></span></div>
 <div id="form">
 ${tabs && logo ? `<div class="bar">${tabBar}${logo}</div>` : tabBar}
 ${panels}
 </div>
</div>
<script>
(function(){
  'use strict';
  var S = ${scriptJson(client)};
  var COLOR = new RegExp(${scriptJson(COLOR_SOURCE)}, 'i');
  var PX = { '--fs': [12, 24], '--r': [0, 24], '--pad': [0, 32] };
  var KEYS = { background: '--bg', color: '--fg', fontSize: '--fs', borderRadius: '--r', padding: '--pad' };
  var BRAND = { visa: 'Visa', mastercard: 'Mastercard', amex: 'Amex', discover: 'Discover', unknown: '' };
  var BRAND_LONG = { visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', discover: 'Discover', unknown: 'Card' };
  var FIELD_NAME = { card_number: 'card number', expiry: 'expiry date', cvv: 'CVV', bank_sign_in: 'bank sign-in' };
  var base = location.pathname.replace(/\\/?$/, '/');
  var framed = window.parent !== window;
  var parentOrigin = null, blocked = false, method = S.method;
  var token = null, dead = null, cardBusy = null, bankBusy = null, lastValid = null;
  function $(id){ return document.getElementById(id); }
  // A logo that does not load is taken away rather than shown broken.
  Array.prototype.forEach.call(document.querySelectorAll('img.logo'), function(l){
    function gone(){ if (l.parentNode) l.parentNode.removeChild(l); }
    if (l.complete && !l.naturalWidth) gone(); else l.addEventListener('error', gone);
  });

  // ---- the parent: learn its origin from the first valid message, then talk only to it ----
  function allowed(o){ return S.allowed === null || S.allowed.indexOf(String(o).toLowerCase()) >= 0; }
  function send(m){
    if (!parentOrigin || blocked) return;
    m.source = 'pushcash-widget'; m.v = 1;
    try { window.parent.postMessage(m, parentOrigin); } catch (e) { /* the parent navigated away */ }
  }
  function block(origin){
    blocked = true; parentOrigin = null;
    $('form').hidden = true;
    var inputs = document.querySelectorAll('input,button'); for (var i = 0; i < inputs.length; i++) inputs[i].disabled = true;
    $('blocked').hidden = false;
    $('blocked-why').textContent = (origin && origin !== 'null' ? origin : 'This site') + ' is not one of the sites this payment form may be embedded in.';
  }
  if (framed && location.ancestorOrigins && location.ancestorOrigins.length && !allowed(location.ancestorOrigins[0])) block(location.ancestorOrigins[0]);
  window.addEventListener('message', function(e){
    if (!framed || e.source !== window.parent || blocked) return;
    var d = e.data;
    if (!d || typeof d !== 'object' || d.source !== 'pushcash-sdk') return;
    if (parentOrigin === null) {
      if (!e.origin || e.origin === 'null') return;
      if (!allowed(e.origin)) { block(e.origin); return; }
      parentOrigin = e.origin;
    } else if (e.origin !== parentOrigin) return;
    if (d.type === 'hello') { style(d.styling); send({ type: 'ready', valid: isValid(), method: method }); lastValid = isValid(); size(true); }
    else if (d.type === 'style') style(d.styling);
    else if (d.type === 'tokenize' && typeof d.id === 'string') tokenize(d.id.slice(0, 100));
  });

  // ---- styling from the SDK, checked again here ----
  function style(st){
    if (!st || typeof st !== 'object') return;
    var root = document.documentElement.style;
    for (var k in KEYS) {
      if (!Object.prototype.hasOwnProperty.call(st, k)) continue;
      var v = st[k], prop = KEYS[k];
      if (prop === '--bg' || prop === '--fg') {
        if (typeof v === 'string' && v.length <= 64 && COLOR.test(v.trim())) root.setProperty(prop, v.trim());
      } else {
        var n = typeof v === 'number' ? v : typeof v === 'string' && /^\\d{1,3}(\\.\\d+)?px$/.test(v.trim()) ? parseFloat(v) : NaN;
        if (isFinite(n) && n >= PX[prop][0] && n <= PX[prop][1]) root.setProperty(prop, n + 'px');
      }
    }
    size(true);
  }

  // ---- the page's height, for the SDK to size the iframe ----
  var lastHeight = -1;
  function size(force){
    var h = Math.ceil($('w').getBoundingClientRect().height);
    if (!force && h === lastHeight) return;
    lastHeight = h;
    send({ type: 'resize', height: h });
  }
  if (typeof ResizeObserver === 'function') new ResizeObserver(function(){ size(false); }).observe($('w'));
  else window.addEventListener('resize', function(){ size(false); });

  // ---- card checks (the same as the server's) ----
  function digits(s){ return String(s).replace(/\\D/g, ''); }
  function luhn(p){ var sum = 0; for (var i = 0; i < p.length; i++) { var d = p.charCodeAt(p.length - 1 - i) - 48; if (i % 2) { d *= 2; if (d > 9) d -= 9; } sum += d; } return sum % 10 === 0; }
  function brandOf(p){
    if (/^4/.test(p)) return 'visa';
    var p4 = Number(p.slice(0, 4));
    if (/^5[1-5]/.test(p) || (p.length >= 4 && p4 >= 2221 && p4 <= 2720)) return 'mastercard';
    if (/^3[47]/.test(p)) return 'amex';
    if (/^(6011|65|64[4-9])/.test(p)) return 'discover';
    return 'unknown';
  }
  function maxDigits(b){ return b === 'amex' ? 15 : 19; }
  function groupNumber(p, b){
    var sizes = b === 'amex' ? [4, 6, 5] : [4, 4, 4, 4, 3], out = [], at = 0;
    for (var i = 0; i < sizes.length && at < p.length; i++) { out.push(p.slice(at, at + sizes[i])); at += sizes[i]; }
    return out.join(' ');
  }
  var F = { number: $('cc-number'), exp: $('cc-exp'), cvv: $('cc-cvv') };
  var touched = { number: false, exp: false, cvv: false };
  function expParts(){ var d = digits(F.exp ? F.exp.value : ''); return { m: d.slice(0, 2), y: d.slice(2, 4) }; }
  function problem(field){
    if (field === 'number') {
      var p = digits(F.number.value);
      if (!p) return 'Enter the card number';
      if (p.length < 12 || !luhn(p)) return 'This card number is not valid';
      if (p.length < (brandOf(p) === 'amex' ? 15 : 13)) return 'This card number is incomplete';
      return '';
    }
    if (field === 'exp') {
      var e = expParts();
      if (!e.m && !e.y) return 'Enter the expiry date';
      if (e.m.length < 2 || e.y.length < 2) return 'Enter the expiry as MM / YY';
      var m = +e.m, y = 2000 + +e.y;
      if (m < 1 || m > 12) return 'The month must be 01 to 12';
      var now = new Date();
      if (Date.UTC(y, m, 1) <= now.getTime()) return 'This card has expired';
      if (y > now.getUTCFullYear() + 20) return 'The expiry year is too far away';
      return '';
    }
    var c = digits(F.cvv.value), len = brandOf(digits(F.number.value)) === 'amex' ? 4 : 3;
    if (!c) return 'Enter the CVV';
    if (c.length !== len) return 'The CVV has ' + len + ' digits';
    return '';
  }
  var ERR = { number: 'cc-number-err', exp: 'cc-exp-err', cvv: 'cc-cvv-err' };
  function showError(field, text){
    $(ERR[field]).textContent = text || '';
    F[field].setAttribute('aria-invalid', text ? 'true' : 'false');
  }
  function refresh(field){
    var p = problem(field);
    // An error appears after the field is left (or at tokenize); while typing it only goes away.
    if (touched[field] || !p) showError(field, touched[field] ? p : '');
  }
  function cardInvalidFields(){
    var out = [];
    if (problem('number')) out.push('card_number');
    if (problem('exp')) out.push('expiry');
    if (problem('cvv')) out.push('cvv');
    return out;
  }

  function isValid(){
    if (token) return true;
    if (dead || method === 'apple_pay') return false;
    if (method === 'bank') return false;
    return cardInvalidFields().length === 0;
  }
  function validity(){
    var v = isValid();
    if (v === lastValid) return;
    lastValid = v;
    send({ type: 'valid', valid: v });
  }

  function note(id, text, cls){ var n = $(id); if (!n) return; n.textContent = text; n.className = 'note ' + (cls || 'muted'); }

  if (F.number) {
    F.number.addEventListener('input', function(){
      var el = F.number, caret = el.selectionStart == null ? el.value.length : el.selectionStart;
      var before = digits(el.value.slice(0, caret)).length;
      var p = digits(el.value), b = brandOf(p);
      p = p.slice(0, maxDigits(b));
      var v = groupNumber(p, b);
      el.value = v;
      var pos = 0, seen = 0;
      while (pos < v.length && seen < before) { if (/\\d/.test(v.charAt(pos))) seen++; pos++; }
      if (document.activeElement === el) try { el.setSelectionRange(pos, pos); } catch (e) {}
      $('cc-brand').textContent = p.length >= 1 ? BRAND[b] : '';
      refresh('number');
      if (touched.cvv || digits(F.cvv.value)) refresh('cvv');
      validity();
      // A complete number of a known brand (15 digits for Amex, 16 for the others) moves on to the expiry.
      if (b !== 'unknown' && p.length === (b === 'amex' ? 15 : 16) && !problem('number') && pos === v.length) F.exp.focus();
    });
    F.exp.addEventListener('input', function(ev){
      var el = F.exp, d = digits(el.value).slice(0, 4);
      if (d.length === 1 && +d > 1) d = '0' + d;
      var deleting = ev && typeof ev.inputType === 'string' && ev.inputType.indexOf('delete') === 0;
      el.value = d.length > 2 ? d.slice(0, 2) + ' / ' + d.slice(2) : d.length === 2 && !deleting ? d + ' / ' : d;
      refresh('exp');
      validity();
      if (d.length === 4 && !problem('exp')) F.cvv.focus();
    });
    F.cvv.addEventListener('input', function(){
      var el = F.cvv, d = digits(el.value).slice(0, brandOf(digits(F.number.value)) === 'amex' ? 4 : 3);
      if (el.value !== d) el.value = d;
      refresh('cvv');
      validity();
    });
    ['number', 'exp', 'cvv'].forEach(function(k){
      F[k].addEventListener('blur', function(){ if (F[k].value) touched[k] = true; refresh(k); });
    });
    $('card-form').addEventListener('submit', function(e){ e.preventDefault(); });
  }

  // ---- the bank sign-in ----
  function signIn(){
    if (bankBusy || token || dead) return bankBusy;
    var u = $('bank-user').value.trim(), pw = $('bank-pass').value;
    if (!u || !pw) { $('bank-err').textContent = !u ? 'Enter your bank username' : 'Enter your bank password'; ($(!u ? 'bank-user' : 'bank-pass')).focus(); return null; }
    $('bank-err').textContent = '';
    var btn = $('bank-submit');
    btn.disabled = true; btn.textContent = 'Signing in…';
    bankBusy = call('bank', { nonce: S.nonce, username: u, password: pw }).then(function(r){
      bankBusy = null;
      btn.disabled = false; btn.textContent = 'Sign in to your bank';
      if (r.token) {
        token = r.token;
        var c = r.credential || {};
        $('bank-account').textContent = (c.bank_name || 'Bank account') + (c.account_last4 ? ' ••' + c.account_last4 : '');
        $('bank-form').hidden = true; $('bank-linked').hidden = false;
        note('bank-note', 'Your bank account is linked', 'ok');
        lockTabs();
        validity();
        return r;
      }
      if (r.error.code === 'session_expired') expire();
      else $('bank-err').textContent = r.error.server_code === 'bank_sign_in_failed' ? 'That username and password did not work; try again' : r.error.message;
      return r;
    });
    return bankBusy;
  }
  if ($('bank-form')) $('bank-form').addEventListener('submit', function(e){ e.preventDefault(); signIn(); });

  // ---- the page's endpoints ----
  function call(path, body){
    return fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' })
      .then(function(res){
        return res.json().catch(function(){ return {}; }).then(function(j){
          if (res.ok && j && typeof j.token === 'string') return { token: j.token, credential: j.credential };
          var e = (j && j.error) || {};
          var sc = typeof e.code === 'string' ? e.code : 'http_' + res.status;
          if (res.status === 403) return { error: { code: 'session_expired', server_code: sc, message: 'this widget session has expired or was already used (' + sc + '); get a new widget URL from POST /user/{id}/url' } };
          return { error: { code: 'tokenization_failed', server_code: sc, field: e.field, message: 'the server refused (' + sc + ')' + (e.message ? ': ' + e.message : '') } };
        });
      }, function(){ return { error: { code: 'tokenization_failed', server_code: 'network_error', message: 'could not reach the server (network error); try again' } }; });
  }

  function expire(){
    dead = { code: 'session_expired', message: 'this widget session has expired or was already used; get a new widget URL from POST /user/{id}/url' };
    var inputs = document.querySelectorAll('#form input, #form button'); for (var i = 0; i < inputs.length; i++) inputs[i].disabled = true;
    note('card-note', 'This form has expired. Reload the page to start again.', 'bad');
    note('bank-note', 'This form has expired. Reload the page to start again.', 'bad');
    validity();
  }

  var SERVER_FIELD = { pan: 'number', exp_month: 'exp', exp_year: 'exp', cvv: 'cvv' };
  var SERVER_TEXT = { invalid_card_number: 'This card number is not valid', card_expired: 'This card has expired', invalid_expiry: 'Enter a valid expiry date', invalid_cvv: 'This CVV is not valid' };
  function tokenizeCard(){
    var p = digits(F.number.value), e = expParts();
    var body = { nonce: S.nonce, pan: p, cvv: digits(F.cvv.value), exp_month: e.m, exp_year: e.y };
    return call('card', body).then(function(r){
      if (r.token) {
        token = r.token;
        var c = r.credential || {}, b = c.brand && BRAND_LONG[c.brand] ? BRAND_LONG[c.brand] : BRAND_LONG[brandOf(p)];
        F.number.value = '•••• ' + (c.card_last4 || p.slice(-4)); F.cvv.value = '•••';
        F.number.disabled = F.exp.disabled = F.cvv.disabled = true;
        note('card-note', '✓ ' + b + ' ••' + (c.card_last4 || p.slice(-4)) + ' saved', 'ok');
        lockTabs();
        validity();
        return r;
      }
      if (r.error.code === 'session_expired') { expire(); return r; }
      var f = SERVER_FIELD[r.error.field];
      if (f) {
        touched[f] = true;
        showError(f, SERVER_TEXT[r.error.server_code] || 'Check this field');
        r.error.fields = [f === 'number' ? 'card_number' : f === 'exp' ? 'expiry' : 'cvv'];
      } else note('card-note', 'Something went wrong; try again', 'bad');
      return r;
    });
  }

  function answer(id, r){
    if (r.token) send({ type: 'tokenized', id: id, token: r.token });
    else send({ type: 'error', id: id, code: r.error.code, message: r.error.message, fields: r.error.fields, server_code: r.error.server_code });
  }
  function formInvalid(id, fields){
    var names = fields.map(function(f){ return FIELD_NAME[f] || f; });
    send({ type: 'error', id: id, code: 'form_invalid', fields: fields,
      message: fields[0] === 'bank_sign_in' ? 'the bank account is not linked yet: sign in to your bank first' : 'the card form is not complete or not valid: check the ' + names.join(', ') });
  }
  function tokenize(id){
    if (token) return send({ type: 'tokenized', id: id, token: token });
    if (dead) return send({ type: 'error', id: id, code: dead.code, message: dead.message });
    if (method === 'apple_pay') return send({ type: 'error', id: id, code: 'unsupported_type', message: 'this widget URL is for Apple Pay, which runs in the app with the Push Apple Pay plugin; tokenize() works with card_only and secure_debit URLs' });
    if (method === 'bank') {
      if (bankBusy) { bankBusy.then(function(){ tokenize(id); }); return; }
      return formInvalid(id, ['bank_sign_in']);
    }
    if (cardBusy) { cardBusy.then(function(r){ answer(id, r); }); return; }
    var bad = cardInvalidFields();
    if (bad.length) {
      ['number', 'exp', 'cvv'].forEach(function(k){ touched[k] = true; refresh(k); });
      return formInvalid(id, bad);
    }
    cardBusy = tokenizeCard().then(function(r){ cardBusy = null; return r; });
    cardBusy.then(function(r){ answer(id, r); });
  }

  // ---- tabs: card or bank account ----
  var tabs = document.querySelectorAll('.tab');
  function pick(m, focus){
    if (token || dead) return;
    method = m;
    for (var i = 0; i < tabs.length; i++) {
      var on = tabs[i].getAttribute('data-method') === m;
      tabs[i].setAttribute('aria-selected', on ? 'true' : 'false');
      tabs[i].tabIndex = on ? 0 : -1;
      if (on && focus) tabs[i].focus();
    }
    $('p-card').hidden = m !== 'card';
    $('p-bank').hidden = m !== 'bank';
    validity();
  }
  function lockTabs(){
    for (var i = 0; i < tabs.length; i++) if (tabs[i].getAttribute('data-method') !== method) tabs[i].disabled = true;
  }
  for (var i = 0; i < tabs.length; i++) {
    tabs[i].addEventListener('click', function(){ pick(this.getAttribute('data-method'), false); });
    tabs[i].addEventListener('keydown', function(e){
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight' && e.key !== 'Home' && e.key !== 'End') return;
      e.preventDefault();
      pick(e.key === 'ArrowLeft' || e.key === 'Home' ? 'card' : 'bank', true);
    });
  }
})();
</script></body></html>`;
}

/**
 * The page for a nonce that is not valid (unknown, expired or spent). It answers the SDK's hello, to the origin that
 * sent it (never '*'), with `{type: 'error', code: 'session_expired'}`, so tokenize() rejects with that code at once;
 * what it says is only that this link no longer works.
 */
export function widgetErrorPage(title: string, message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)}</title><style>${STYLE}</style></head>
<body><div class="w" id="w"><p class="msg" role="alert"><strong>${esc(title)}</strong><span class="muted">${esc(message)}</span></p></div>
<script>
(function(){
  var M = ${scriptJson({ title, message })};
  if (window.parent === window) return;
  window.addEventListener('message', function(e){
    var d = e.data;
    if (e.source !== window.parent || !d || typeof d !== 'object' || d.source !== 'pushcash-sdk' || d.type !== 'hello' || !e.origin || e.origin === 'null') return;
    var h = Math.ceil(document.getElementById('w').getBoundingClientRect().height);
    e.source.postMessage({ source: 'pushcash-widget', v: 1, type: 'resize', height: h }, e.origin);
    e.source.postMessage({ source: 'pushcash-widget', v: 1, type: 'error', code: 'session_expired', message: 'the widget session is not valid: ' + M.title + ': ' + M.message }, e.origin);
  });
})();
</script></body></html>`;
}
