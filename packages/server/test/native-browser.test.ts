/**
 * Push Native in a real headless Chromium, against a real Cashwire server: a merchant's cashier page on its own origin
 * loads /sdk/push.umd.js and embeds `new PushCash.Widget({selector, url})`; the user types a card (or signs in to the
 * sandbox bank) inside the iframe; the merchant page calls tokenize() and its backend authorizes with the token. The
 * step-up page, shown in an iframe by the merchant page, ends with a postMessage the page listens for. A parent
 * origin that the operator has not allowed gets no token.
 *
 * Screenshots of what the user sees go to /tmp/native-shots/ (never into the repo).
 */
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type BrowserContext, type Frame, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';
import { launchChromium, listenOnLoopback, watch } from './browser.js';

const SHOTS = '/tmp/native-shots';
const TEST_CARD = '5555555555554444';

let s: TestServer;
let browser: BrowserContext;
let site: Server;
let siteUrl: string;
/** The merchant's operators, by the name the cashier page's `op` parameter gives: its backend holds their keys. */
const ops: Record<string, { keys: Keys; api: Api }> = {};

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      try {
        resolve(body ? JSON.parse(body) : {});
      } catch (e) {
        reject(e);
      }
    });
  });
}

/**
 * The merchant's cashier page, as the reference integration writes it: a 212 px container, the Widget built from
 * the URL its backend got, a pay button that tokenizes and asks the backend to authorize; a 202 shows the step-up
 * page in an iframe, whose postMessage ends the payment.
 */
function cashierPage(q: URLSearchParams): string {
  const cfg = {
    op: q.get('op') ?? 'main',
    user: q.get('user'),
    direction: q.get('direction') ?? 'cash_in',
    type: q.get('type'),
    amount: Number(q.get('amount') ?? 2500),
    url: q.get('url'),
    cashwire: new URL(s.url).origin,
  };
  const verb = cfg.direction === 'cash_out' ? 'Withdraw' : 'Deposit';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Lucky Star · ${verb}</title>
<style>
  body{margin:0;font-family:Georgia,serif;background:#eef1f6;color:#1b1b2f}
  header{background:#1b1b2f;color:#fff;padding:14px 24px;font-size:20px}
  main{max-width:560px;margin:24px auto;background:#fff;padding:20px 24px;border-radius:10px;box-shadow:0 1px 6px #0002}
  @media (max-width:600px){main{margin:12px;padding:16px}}
  h1{font-size:22px;margin:0 0 12px}
  #pay{margin-top:12px;font:inherit;font-size:17px;padding:10px 18px;border-radius:6px;border:0;background:#c2410c;color:#fff;cursor:pointer;width:100%}
  #status{min-height:1.4em;font-weight:bold}
  #stepup iframe{width:100%;height:680px;border:1px solid #ccd;border-radius:8px;margin-top:12px}
</style></head>
<body><header>Lucky Star Casino</header>
<main>
  <h1>${verb} $${(cfg.amount / 100).toFixed(2)}</h1>
  <div id="payment-container" style="height:212px"></div>
  <button id="pay" type="button">${verb} $${(cfg.amount / 100).toFixed(2)}</button>
  <p id="status" role="status"></p>
  <div id="stepup"></div>
</main>
<script src="${s.url}/sdk/push.umd.js"></script>
<script>
  var cfg = ${JSON.stringify(cfg)};
  var statusEl = document.getElementById('status');
  window.t = { valid: 0, messages: [], tokens: [], errors: [] };
  function show(text) { statusEl.textContent = text; }
  function post(path, body) {
    return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }
  function start(url) {
    window.t.url = url;
    window.t.widget = new window.PushCash.Widget({ selector: '#payment-container', url: url, onValid: function () { window.t.valid++; } });
  }
  (cfg.url ? Promise.resolve({ body: { url: cfg.url } }) : post('/api/widget-url', { op: cfg.op, user: cfg.user, direction: cfg.direction, type: cfg.type }))
    .then(function (r) { start(r.body.url); });
  window.addEventListener('message', function (e) {
    if (e.origin !== cfg.cashwire || !e.data || e.data.source !== 'cashwire') return;
    window.t.messages.push(e.data);
    fetch('/api/intent/' + encodeURIComponent(e.data.intent_id) + '?op=' + cfg.op).then(function (r) { return r.json(); })
      .then(function (i) { show('Payment ' + i.status); document.getElementById('stepup').innerHTML = ''; });
  });
  document.getElementById('pay').addEventListener('click', function () {
    show('Processing…');
    window.t.widget.tokenize().then(function (res) {
      window.t.tokens.push(res.token);
      return post('/api/authorize', { op: cfg.op, token: res.token, amount: cfg.amount, direction: cfg.direction }).then(function (r) {
        window.t.authorized = r;
        if (r.status === 202) {
          show('Verify the payment');
          var f = document.createElement('iframe');
          f.id = 'stepup-frame'; f.title = 'Verify the payment'; f.src = r.body.url;
          document.getElementById('stepup').appendChild(f);
          return;
        }
        show('Payment ' + r.body.status + (r.body.decline_category ? ' (' + r.body.decline_category + ')' : ''));
      });
    }).catch(function (err) {
      window.t.errors.push({ code: err.code, message: err.message, fields: err.fields });
      show('Tokenization error: ' + err.code + ': ' + err.message);
    });
  });
</script></body></html>`;
}

/** The merchant's site and its backend (which holds the operators' keys and calls the Cashwire API). */
function startSite(): Promise<void> {
  site = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    void (async () => {
      if (u.pathname === '/cashier') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(cashierPage(u.searchParams));
      if (req.method === 'POST' && u.pathname === '/api/widget-url') {
        const b = await readJson(req);
        const r = await ops[String(b.op)]!.api.post(`/user/${b.user}/url`, { direction: b.direction, ...(b.type ? { type: b.type } : {}) });
        return json(r.status, r.body);
      }
      if (req.method === 'POST' && u.pathname === '/api/authorize') {
        const b = await readJson(req);
        const r = await ops[String(b.op)]!.api.post('/authorize', { amount: b.amount, currency: 'USD', direction: b.direction, token: b.token });
        return json(r.status, r.body);
      }
      if (u.pathname.startsWith('/api/intent/')) {
        const r = await ops[u.searchParams.get('op') ?? 'main']!.api.get(`/intent/${u.pathname.slice('/api/intent/'.length)}`);
        return json(r.status, r.body);
      }
      res.writeHead(404).end();
    })().catch((e) => json(500, { error: String(e) }));
  });
  return listenOnLoopback(site).then((url) => {
    siteUrl = url;
  });
}

async function addOperator(name: string, label: string): Promise<{ keys: Keys; api: Api }> {
  const keys = await newOperator(s, label);
  ops[name] = { keys, api: client(s.url, keys.sandbox) };
  return ops[name]!;
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  s = await startTestServer();
  await addOperator('main', 'Lucky Star Casino');
  await startSite();
  browser = await launchChromium('cw-native-chromium-');
});

afterEach(async () => {
  await Promise.all(browser.pages().map((p) => p.close()));
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
  await s?.stop();
});


interface T {
  valid: number;
  messages: { source: string; intent_id: string; status: string }[];
  tokens: string[];
  errors: { code: string; message: string; fields?: string[] }[];
  authorized?: { status: number; body: Record<string, any> };
  url: string;
}
const t = (page: Page) => page.evaluate(() => (window as unknown as { t: T }).t);

async function cashier(params: Record<string, string>, width = 1280): Promise<{ page: Page; widget: FrameLocator; problems: string[] }> {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height: 900 });
  const problems = watch(page);
  await page.goto(`${siteUrl}/cashier?${new URLSearchParams(params)}`);
  return { page, widget: page.frameLocator('#payment-container iframe'), problems };
}

/** Waits for the widget to answer the SDK's handshake. */
async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => (window as unknown as { t: { widget?: { ready: boolean } } }).t.widget?.ready === true);
}

/** The iframe's box against its 212 px container, and whether the widget page overflows sideways. */
async function fit(page: Page) {
  const boxes = await page.evaluate(() => {
    const c = document.getElementById('payment-container')!.getBoundingClientRect();
    const f = document.querySelector('#payment-container iframe')!.getBoundingClientRect();
    return { container: { top: c.top, bottom: c.bottom, width: c.width }, frame: { top: f.top, bottom: f.bottom, width: f.width, height: f.height } };
  });
  const frame = page.frames().find((f) => f.url().includes('/widget/')) as Frame;
  const inner = await frame.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    scrollHeight: document.documentElement.scrollHeight,
  }));
  return { ...boxes, inner };
}

async function typeCard(widget: FrameLocator, card = { number: TEST_CARD, exp: '12' + String((new Date().getUTCFullYear() + 3) % 100), cvv: '123' }) {
  await widget.getByLabel('Card number').pressSequentially(card.number);
  await widget.getByLabel('Expiry').pressSequentially(card.exp);
  await widget.getByLabel('CVV').pressSequentially(card.cvv);
}

const statusText = async (page: Page) => ((await page.locator('#status').textContent()) ?? '').trim();

describe('Push Native widget in Chromium', () => {
  it('tokenizes the test card in the iframe; the merchant authorizes the token and shows "approved"', async () => {
    const user = await newUser(ops.main!.api);
    const { page, widget, problems } = await cashier({ user, type: 'card_only' });
    await ready(page);
    await expect.poll(() => widget.locator('body').textContent()).toContain('Test card 5555 5555 5555 4444');
    await expect(widget.getByTestId('sandbox-badge').textContent()).resolves.toBe('SANDBOX');

    // Before the form is complete: form_invalid, naming the fields; the iframe shows the errors next to them.
    await page.click('#pay');
    await expect.poll(() => statusText(page)).toMatch(/^Tokenization error: form_invalid: /);
    let tt = await t(page);
    expect(tt.errors[0]).toMatchObject({ code: 'form_invalid', fields: ['card_number', 'expiry', 'cvv'] });
    expect(tt.errors[0]!.message).toMatch(/card number, expiry date, CVV/);
    await expect(widget.locator('#cc-number-err').textContent()).resolves.toBe('Enter the card number');
    await expect(widget.getByLabel('Card number').getAttribute('aria-invalid')).resolves.toBe('true');
    expect(tt.valid).toBe(0);

    // A number that fails the Luhn check is shown as such after blur; fixing it clears the error.
    const number = widget.getByLabel('Card number');
    await number.pressSequentially('5555555555554443');
    await widget.getByLabel('Expiry').focus();
    await expect(widget.locator('#cc-number-err').textContent()).resolves.toBe('This card number is not valid');
    await number.fill('');
    await number.pressSequentially(TEST_CARD);
    await expect(number.inputValue()).resolves.toBe('5555 5555 5555 4444');
    await expect(widget.locator('#cc-brand').textContent()).resolves.toBe('Mastercard');
    await expect(widget.locator('#cc-number-err').textContent()).resolves.toBe('');
    const yy = String((new Date().getUTCFullYear() + 3) % 100);
    await widget.getByLabel('Expiry').pressSequentially('12' + yy);
    await expect(widget.getByLabel('Expiry').inputValue()).resolves.toBe(`12 / ${yy}`);
    expect((await t(page)).valid).toBe(0);
    await widget.getByLabel('CVV').pressSequentially('123');
    await expect.poll(async () => (await t(page)).valid).toBe(1); // onValid fired once the form became valid

    const shot = await fit(page);
    await page.screenshot({ path: `${SHOTS}/card-desktop.png`, fullPage: true });
    // The widget's page sized the iframe to its content, which fits the 212 px container, and nothing overflows.
    expect(shot.frame.height).toBeGreaterThan(80);
    expect(shot.frame.bottom).toBeLessThanOrEqual(shot.container.bottom + 0.5);
    expect(shot.inner.scrollWidth).toBeLessThanOrEqual(shot.inner.clientWidth);

    await page.click('#pay');
    await expect.poll(() => statusText(page)).toBe('Payment approved');
    tt = await t(page);
    expect(tt.tokens).toHaveLength(1);
    expect(tt.tokens[0]).toMatch(/^token_/);
    expect(tt.authorized).toMatchObject({ status: 200, body: { status: 'approved', credential: { last4: '4444' } } });
    await expect(widget.locator('#card-note').textContent()).resolves.toBe('✓ Mastercard ••4444 saved');
    await expect(widget.getByLabel('Card number').isDisabled()).resolves.toBe(true);

    // The nonce is spent: a second tokenize() gives the same token.
    const again = await page.evaluate(() => (window as unknown as { t: { widget: { tokenize(): Promise<{ token: string }> } } }).t.widget.tokenize());
    expect(again).toEqual({ token: tt.tokens[0] });
    expect(problems).toEqual([]);

    // Loading the spent URL again: the 403 page; tokenize() says why at once.
    const { page: p2, widget: w2 } = await cashier({ url: tt.url });
    await expect.poll(() => w2.locator('body').textContent()).toContain('This payment form has expired');
    await p2.click('#pay');
    await expect.poll(() => statusText(p2)).toMatch(/^Tokenization error: session_expired: /);
  });

  it('looks right at 390 px and at 1280 px: the card form, the card-or-bank tabs, the bank sign-in', async () => {
    const user = await newUser(ops.main!.api);
    for (const [width, name] of [[390, 'mobile'], [1280, 'desktop']] as const) {
      for (const type of ['card_only', '', 'secure_debit']) {
        const { page, widget, problems } = await cashier({ user, ...(type ? { type } : {}) }, width);
        await ready(page);
        if (type === 'card_only') {
          await widget.getByLabel('Card number').pressSequentially('4000 0000 0000 0002');
          await widget.getByLabel('Expiry').pressSequentially('0120'); // long expired
          await widget.getByLabel('CVV').focus();
          await expect(widget.locator('#cc-exp-err').textContent()).resolves.toBe('This card has expired');
          await expect(widget.locator('#cc-brand').textContent()).resolves.toBe('Visa');
        }
        if (type === '') {
          await expect(widget.getByRole('tab', { name: 'Card' }).getAttribute('aria-selected')).resolves.toBe('true');
          await expect(widget.getByLabel('Card number').isVisible()).resolves.toBe(true);
        }
        // Let the iframe take its content height before measuring.
        await page.waitForTimeout(150);
        const f = await fit(page);
        expect(f.frame.bottom, `${name} ${type || 'tabs'}: the widget fits its 212 px container`).toBeLessThanOrEqual(f.container.bottom + 0.5);
        expect(f.inner.scrollHeight, `${name} ${type || 'tabs'}: the iframe shows all of its page`).toBeLessThanOrEqual(Math.ceil(f.frame.height) + 1);
        expect(f.inner.scrollWidth, `${name} ${type || 'tabs'}: no sideways overflow`).toBeLessThanOrEqual(f.inner.clientWidth);
        expect(f.frame.width).toBeCloseTo(f.container.width, 0);
        await page.screenshot({ path: `${SHOTS}/${type || 'tabs'}-${name}.png`, fullPage: true });
        if (type === '') {
          await widget.getByRole('tab', { name: 'Bank account' }).click();
          await expect(widget.getByLabel('Bank username').isVisible()).resolves.toBe(true);
          await page.waitForTimeout(150);
          const g = await fit(page);
          expect(g.frame.bottom, `${name} bank tab fits`).toBeLessThanOrEqual(g.container.bottom + 0.5);
          await page.screenshot({ path: `${SHOTS}/tabs-bank-${name}.png`, fullPage: true });
        }
        expect(problems).toEqual([]);
        await page.close();
      }
    }
  });

  it('step-up: a 202 shows the step-up page in an iframe; the code approves it and the merchant page hears so', async () => {
    const user = await newUser(ops.main!.api);
    const { page, widget, problems } = await cashier({ user, type: 'card_only', amount: '3300' });
    await ready(page);
    await typeCard(widget);
    await expect.poll(async () => (await t(page)).valid).toBe(1);
    await page.click('#pay');
    await expect.poll(() => statusText(page)).toBe('Verify the payment');
    const tt = await t(page);
    expect(tt.authorized!.status).toBe(202);
    const { id, url } = tt.authorized!.body as { id: string; url: string };
    expect(id).toMatch(/^intent_/);
    expect(new URL(url).origin).toBe(new URL(s.url).origin);

    const step = page.frameLocator('#stepup-frame');
    await expect.poll(() => step.getByTestId('step-up').textContent()).toBeTruthy();
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 1000 });
      await page.waitForTimeout(100);
      await page.screenshot({ path: `${SHOTS}/step-up-${width}.png`, fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 1000 });
    // Not verified yet: the intent waits.
    expect((await ops.main!.api.get(`/intent/${id}`)).body.status).toBe('created');
    await step.locator('#code').fill('123456');
    await step.locator('#approve').click();

    await expect.poll(async () => (await t(page)).messages).toEqual([{ source: 'cashwire', intent_id: id, status: 'approved' }]);
    await expect.poll(() => statusText(page)).toBe('Payment approved');
    expect((await ops.main!.api.get(`/intent/${id}`)).body.status).toBe('approved');
    expect(problems).toEqual([]);
  });

  it('withdraws to a bank account linked by the sandbox bank sign-in in the widget', async () => {
    const api = ops.main!.api;
    const user = await newUser(api);
    // A deposit first: a cash_out needs one.
    const deposit = await api.post('/token', { user_id: user, type: 'card_only' });
    expect((await api.post('/authorize', { amount: 5000, currency: 'USD', direction: 'cash_in', token: deposit.body.token })).status).toBe(200);

    const { page, widget, problems } = await cashier({ user, type: 'secure_debit', direction: 'cash_out', amount: '1500' });
    await ready(page);
    await expect.poll(() => widget.locator('body').textContent()).toContain('mxuser');
    // Before sign-in: no token yet.
    await page.click('#pay');
    await expect.poll(() => statusText(page)).toMatch(/^Tokenization error: form_invalid: .*sign in to your bank/);
    expect((await t(page)).errors[0]!.fields).toEqual(['bank_sign_in']);

    // A wrong password is refused in the page.
    await widget.getByLabel('Bank username').fill('mxuser');
    await widget.getByLabel('Password').fill('nope');
    await widget.getByRole('button', { name: 'Sign in to your bank' }).click();
    await expect.poll(() => widget.locator('#bank-err').textContent()).toBe('That username and password did not work; try again');

    await widget.getByLabel('Password').fill('password');
    await widget.getByLabel('Password').press('Enter');
    await expect.poll(() => widget.locator('#bank-linked').isVisible()).toBe(true);
    await expect(widget.locator('#bank-account').textContent()).resolves.toMatch(/^\S.* ••\d{4}$/);
    await expect.poll(async () => (await t(page)).valid).toBe(1);
    await page.screenshot({ path: `${SHOTS}/bank-linked-desktop.png`, fullPage: true });

    await page.click('#pay');
    await expect.poll(() => statusText(page)).toBe('Payment approved');
    expect((await t(page)).authorized).toMatchObject({ status: 200, body: { status: 'approved', direction: 'cash_out' } });
    // The 400 of the wrong password is the only failed request.
    expect(problems.filter((p) => !p.includes('/widget/bank'))).toEqual([]);
  });

  it('a card from the widget cannot withdraw: the merchant page shows the decline', async () => {
    const api = ops.main!.api;
    const user = await newUser(api);
    const deposit = await api.post('/token', { user_id: user, type: 'card_only' });
    expect((await api.post('/authorize', { amount: 5000, currency: 'USD', direction: 'cash_in', token: deposit.body.token })).status).toBe(200);
    const { page, widget } = await cashier({ user, type: 'card_only', direction: 'cash_out', amount: '1000' });
    await ready(page);
    await typeCard(widget);
    await page.click('#pay');
    await expect.poll(() => statusText(page)).toBe('Payment declined (credential_not_withdrawable)');
    expect((await t(page)).authorized).toMatchObject({ status: 401, body: { status: 'declined', decline_category: 'credential_not_withdrawable' } });
  });

  it('a parent origin the operator has not allowed gets no token; an allowed one does', async () => {
    const other = await addOperator('strict', 'Strict Casino');
    expect((await other.api.call('PATCH', '/operator/settings', { allowed_origins: ['https://elsewhere.example'] })).status).toBe(200);
    const user = await newUser(other.api);
    const got = await other.api.post(`/user/${user}/url`, { direction: 'cash_in', type: 'card_only' });
    expect(got.status).toBe(200);
    const csp = (await fetch(got.body.url)).headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/frame-ancestors https:\/\/elsewhere\.example(;|$)/);

    const { page, widget } = await cashier({ op: 'strict', url: got.body.url });
    await page.waitForTimeout(800);
    expect(await page.evaluate(() => (window as unknown as { t: { widget: { ready: boolean } } }).t.widget.ready)).toBe(false);
    // The browser refuses to show the form at all (frame-ancestors), so there is no card field to type into.
    await expect(widget.getByLabel('Card number').count()).resolves.toBe(0);
    await page.click('#pay');
    await expect.poll(() => statusText(page)).toMatch(/^Tokenization error: widget_not_ready: /);
    await page.screenshot({ path: `${SHOTS}/not-allowed-desktop.png`, fullPage: true });

    // Once the merchant's origin is allowed, the same kind of URL works from it.
    expect((await other.api.call('PATCH', '/operator/settings', { allowed_origins: ['https://elsewhere.example', siteUrl] })).status).toBe(200);
    const ok = await cashier({ op: 'strict', user, type: 'card_only' });
    await ready(ok.page);
    await typeCard(ok.widget);
    await ok.page.click('#pay');
    await expect.poll(() => statusText(ok.page)).toBe('Payment approved');
  });
});
