/**
 * window.PushCash.Widget (dist/push.umd.js) in a real headless Chromium, against the real widget page
 * (packages/server widgetPage, served here by a small stand-in for the page's two endpoints): option checks, styling,
 * the postMessage protocol and its origin checks in both directions, and every error code of tokenize().
 * Three loopback servers are three origins: the merchant's site, the widget's host, and a third one.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, listenOnLoopback } from '../../server/test/browser.js';
import { widgetErrorPage, widgetPage, type WidgetPageState } from '../../server/src/api/routes/widget-page.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const distFile = join(pkgDir, 'dist', 'push.umd.js');
const CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors *";

let browser: BrowserContext;
let site: Server, host: Server, third: Server;
let siteUrl: string, hostUrl: string, thirdUrl: string;
/** What the widget host's endpoints received. */
const received: { path: string; body: Record<string, string> }[] = [];

function readJson(req: IncomingMessage): Promise<Record<string, string>> {
  return new Promise((resolve) => {
    let b = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (b += c));
    req.on('end', () => resolve(b ? JSON.parse(b) : {}));
  });
}

const html = (res: ServerResponse, body: string, status = 200, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP, ...headers }).end(body);
const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

/** A page on the widget's host that answers the SDK's hello like the real one, then never answers tokenize. */
const SILENT = `<!doctype html><body>silent<script>
window.addEventListener('message', function (e) {
  if (e.source === parent && e.data && e.data.type === 'hello') parent.postMessage({ source: 'pushcash-widget', v: 1, type: 'ready', valid: true }, e.origin);
});</script></body>`;

/** On the third origin: a page that pretends to be the widget, posting to any origin. */
const IMPOSTOR = `<!doctype html><body>impostor<script>
function lie() {
  parent.postMessage({ source: 'pushcash-widget', v: 1, type: 'ready', valid: true }, '*');
  parent.postMessage({ source: 'pushcash-widget', v: 1, type: 'resize', height: 999 }, '*');
}
lie(); setInterval(lie, 100);
window.addEventListener('message', function (e) {
  if (e.data && e.data.type === 'tokenize') parent.postMessage({ source: 'pushcash-widget', v: 1, type: 'tokenized', id: e.data.id, token: 'token_forged' }, '*');
});</script></body>`;

function startServers(): Promise<void[]> {
  host = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    void (async () => {
      if (u.pathname === '/widget/' && req.method === 'GET') {
        const allowed = u.searchParams.get('allowed');
        const state: WidgetPageState = {
          nonce: u.searchParams.get('nonce') ?? 'op_1.nonce_sandbox',
          type: (u.searchParams.get('type') || null) as WidgetPageState['type'],
          direction: 'cash_in',
          sandbox: u.searchParams.get('sandbox') !== '0',
          operatorName: 'Lucky <Star> & "Co"',
          allowedOrigins: allowed === null ? null : allowed ? allowed.split(',') : [],
        };
        return html(res, widgetPage(state));
      }
      if (req.method === 'POST' && (u.pathname === '/widget/card' || u.pathname === '/widget/bank')) {
        const body = await readJson(req);
        received.push({ path: u.pathname, body });
        await new Promise((r) => setTimeout(r, 150)); // a server takes a moment: calls that overlap must share one request
        if (body.nonce === 'spent') return json(res, 403, { error: { code: 'nonce_invalid', message: 'the nonce is not valid' } });
        if (u.pathname === '/widget/bank') {
          if (body.username !== 'mxuser' || body.password !== 'password') return json(res, 400, { error: { code: 'bank_sign_in_failed', message: 'wrong username or password' } });
          return json(res, 200, { token: 'token_bank', credential: { id: 'cred_b', type: 'secure_debit', bank_name: 'MX Bank', account_last4: '6789' } });
        }
        if (body.pan === '4242424242424242') return json(res, 400, { error: { code: 'invalid_card_number', message: 'pan is not accepted', field: 'pan' } });
        if (body.pan === '4111111111111111') return json(res, 500, { error: { code: 'internal', message: 'boom' } });
        return json(res, 200, { token: 'token_card', credential: { id: 'cred_c', type: 'card_only_debit', card_last4: body.pan!.slice(-4), brand: 'mastercard' } });
      }
      if (u.pathname === '/expired') return html(res, widgetErrorPage('This payment form has expired', 'Close it and start again from the site you came from.'), 403);
      if (u.pathname === '/silent') return html(res, SILENT);
      if (u.pathname === '/hop') return html(res, `<!doctype html><script>location.replace(${JSON.stringify(thirdUrl + '/impostor')})</script>`);
      res.writeHead(404).end();
    })();
  });
  third = createServer((req, res) => (req.url === '/impostor' ? html(res, IMPOSTOR) : res.writeHead(404).end()));
  site = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/push.umd.js') return res.writeHead(200, { 'content-type': 'application/javascript' }).end(readFileSync(distFile));
    if (u.pathname === '/page') {
      return res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cashier</title></head>
<body style="margin:0;padding:24px;font-family:sans-serif">
<div id="payment-container" style="height:212px"></div><div id="other"></div>
<script>
  window.t = { messages: [], valid: 0 };
  // Everything that reaches this window, from any source, as the protocol's fields.
  window.addEventListener('message', function (e) { window.t.messages.push({ origin: e.origin, data: JSON.stringify(e.data) }); });
</script>
<script src="/push.umd.js"></script></body></html>`);
    }
    res.writeHead(404).end();
  });
  return Promise.all([
    listenOnLoopback(site).then((x) => void (siteUrl = x)),
    listenOnLoopback(host).then((x) => void (hostUrl = x)),
    listenOnLoopback(third).then((x) => void (thirdUrl = x)),
  ]);
}

beforeAll(async () => {
  execFileSync(process.execPath, [join(pkgDir, 'build.mjs')], { stdio: 'inherit' });
  await startServers();
  browser = await launchChromium('cw-widget-chromium-');
});

afterEach(async () => {
  received.length = 0;
  await Promise.all(browser.pages().map((p) => p.close()));
});

afterAll(async () => {
  await browser?.close();
  await Promise.all([site, host, third].map((srv) => new Promise<void>((r) => (srv ? srv.close(() => r()) : r()))));
});

interface Logged { type: string; text: string }

async function open(): Promise<{ page: Page; logs: Logged[]; errors: string[] }> {
  const page = await browser.newPage();
  const logs: Logged[] = [];
  const errors: string[] = [];
  page.on('console', (m) => logs.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(siteUrl + '/page');
  return { page, logs, errors };
}

const widgetUrl = (q: Record<string, string> = {}) => `${hostUrl}/widget/?${new URLSearchParams({ client: 'op_1', nonce: 'op_1.nonce_sandbox', mode: 'entry', ...q })}`;

/** Builds `new PushCash.Widget(<options source>)` in the page as window.t.w; reports whether it threw. */
function mount(page: Page, options: string): Promise<{ threw?: string; iframes: number }> {
  return page.evaluate(`(() => {
    try { window.t.w = new window.PushCash.Widget(${options}); }
    catch (e) { return { threw: String(e), iframes: document.querySelectorAll('iframe').length }; }
    return { iframes: document.querySelectorAll('iframe').length };
  })()`);
}

/** window.t.w.tokenize(), settled: {token} or {code, message, fields, serverCode}. */
function tokenize(page: Page): Promise<{ token?: string; code?: string; message?: string; fields?: string[]; serverCode?: string; isError?: boolean }> {
  return page.evaluate(`window.t.w.tokenize().then(
    (r) => r,
    (e) => ({ code: e.code, message: e.message, fields: e.fields, serverCode: e.serverCode, isError: e instanceof Error }))`);
}

const isReady = (page: Page) => page.evaluate(() => (window as unknown as { t: { w: { ready: boolean } } }).t.w.ready);
const waitReady = (page: Page) => page.waitForFunction(() => (window as unknown as { t: { w?: { ready: boolean } } }).t.w?.ready === true);
const frame = (page: Page): FrameLocator => page.frameLocator('#payment-container iframe');
/** WCAG contrast ratio of two colours as getComputedStyle gives them: rgb() or (from color-mix) color(srgb r g b), 0–1. */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const scale = c.startsWith('color(srgb') ? 1 : 255;
    const [r, g, bl] = (c.match(/\d*\.?\d+/g) ?? []).slice(0, 3).map((v) => {
      const x = Number(v) / scale;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * bl!;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

const pushLogs = (logs: Logged[], type: string) => logs.filter((l) => l.type === type && l.text.startsWith('[PushCash]')).map((l) => l.text);

async function typeCard(w: FrameLocator, number = '5555555555554444', exp = '1230', cvv = '123') {
  await w.getByLabel('Card number').pressSequentially(number);
  await w.getByLabel('Expiry').pressSequentially(exp);
  await w.getByLabel('CVV').pressSequentially(cvv);
}

describe('PushCash.Widget: options', () => {
  it('is a constructor on window.PushCash (with new, as the reference calls it, and without); the Button is still there', async () => {
    const { page, errors } = await open();
    const r = await page.evaluate(`(() => {
      var P = window.PushCash, url = ${JSON.stringify(widgetUrl())};
      var a = new P.Widget({ selector: '#payment-container', url: url });
      var b = P.Widget({ selector: '#other', url: url });
      return { types: [typeof P.Widget, typeof P.Button, typeof P.version], instance: a instanceof P.Widget && b instanceof P.Widget,
        methods: [typeof a.tokenize, typeof a.destroy], iframes: document.querySelectorAll('iframe[data-pushcash=widget]').length };
    })()`);
    expect(r).toEqual({ types: ['function', 'function', 'string'], instance: true, methods: ['function', 'function'], iframes: 2 });
    expect(errors).toEqual([]);
  });

  it.each([
    ['no options', 'undefined', /needs an options object; got undefined/],
    ['a missing selector', `{ url: 'https://x.example/widget/' }`, /selector must be a non-empty CSS selector string; got undefined/],
    ['a selector that matches nothing', `{ selector: '#nope', url: 'https://x.example/widget/' }`, /no element matches selector "#nope"/],
    ['an invalid selector', `{ selector: '[[', url: 'https://x.example/widget/' }`, /selector "\[\[" is not a valid CSS selector/],
    ['no url', `{ selector: '#payment-container' }`, /url must be the widget URL/],
    ['a javascript: url', `{ selector: '#payment-container', url: 'javascript:alert(1)' }`, /url must be an http\(s\) URL; got a javascript: URL/],
    ['a data: url', `{ selector: '#payment-container', url: 'data:text/html,<b>x</b>' }`, /got a data: URL/],
    ['an onValid that is not a function', `{ selector: '#payment-container', url: 'https://x.example/', onValid: 'yes' }`, /onValid must be a function; got "yes"/],
    ['a timeout out of range', `{ selector: '#payment-container', url: 'https://x.example/', timeout: 5 }`, /timeout must be a number of milliseconds from 1000 to 120000; got 5/],
  ])('%s: logs [PushCash], mounts nothing, does not throw; tokenize() rejects with invalid_options', async (_name, options, message) => {
    const { page, logs, errors } = await open();
    expect(await mount(page, options)).toEqual({ iframes: 0 });
    const errs = pushLogs(logs, 'error');
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^\[PushCash\] Widget was not mounted: /);
    expect(errs[0]).toMatch(message);
    const r = await tokenize(page);
    expect(r).toMatchObject({ code: 'invalid_options', isError: true });
    expect(r.message).toMatch(message);
    expect(await page.evaluate(() => (window as unknown as { t: { w: { element: unknown } } }).t.w.element)).toBeNull();
    expect(errors).toEqual([]);
  });

  it('resolves a relative url against the page; mounts a full-width iframe that takes the height of the widget page', async () => {
    const { page } = await open();
    // Relative to the merchant's page: the iframe goes to the merchant's own origin (a 404 here), so never ready.
    await mount(page, `{ selector: '#payment-container', url: '/widget/?nonce=x' }`);
    expect(await page.locator('iframe').getAttribute('src')).toBe(siteUrl + '/widget/?nonce=x');
    await page.evaluate(() => (window as unknown as { t: { w: { destroy(): void } } }).t.w.destroy());

    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only' }))} }`);
    await waitReady(page);
    const f = page.locator('#payment-container iframe');
    expect(await f.getAttribute('title')).toBe('Payment details');
    await expect.poll(async () => (await f.boundingBox())!.height).toBeLessThan(212);
    const box = (await f.boundingBox())!;
    const container = (await page.locator('#payment-container').boundingBox())!;
    expect(box.width).toBe(container.width);
    const inner = await frame(page).locator('#w').evaluate((el) => el.getBoundingClientRect().height);
    expect(Math.abs(box.height - Math.ceil(inner))).toBeLessThanOrEqual(1);
  });

  it('styling: the top-level keys and styling {} (which wins) reach the page as CSS variables; bad values are warned about and left out', async () => {
    const { page, logs } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only' }))},
      background: '#fefce8', color: 'red', fontSize: 13, borderRadius: '2px', padding: 10, colour: 'x',
      styling: { color: 'rgb(20, 33, 61)', fontSize: '16px', padding: 'url(x)', borderRadius: 99, background: 'red;}body{display:none', shadow: 1 } }`);
    await waitReady(page);
    const vars = await frame(page).locator('html').evaluate((el) => {
      const cs = getComputedStyle(el);
      return ['--bg', '--fg', '--fs', '--r', '--pad'].map((v) => cs.getPropertyValue(v).trim());
    });
    // styling.padding, borderRadius and background are bad, so the top-level ones stay.
    expect(vars).toEqual(['#fefce8', 'rgb(20, 33, 61)', '16px', '2px', '10px']);
    const input = await frame(page).getByLabel('Card number').evaluate((el) => ({ radius: getComputedStyle(el).borderTopLeftRadius, font: getComputedStyle(el).fontSize }));
    expect(input).toEqual({ radius: '2px', font: '16px' });
    const warns = pushLogs(logs, 'warning');
    expect(warns).toEqual(expect.arrayContaining([
      expect.stringMatching(/unknown Widget option "colour"/),
      expect.stringMatching(/unknown styling option "shadow"/),
      expect.stringMatching(/ignoring styling\.padding: .*got "url\(x\)"/),
      expect.stringMatching(/ignoring styling\.borderRadius: .*from 0 to 24; got 99/),
      expect.stringMatching(/ignoring styling\.background: it must be a CSS color/),
    ]));
    expect(pushLogs(logs, 'error')).toEqual([]);
  });
  it('a dark theme from styling stays readable: labels, typed text, placeholders and hints against the background', async () => {
    const { page } = await open();
    await page.evaluate(() => (document.body.style.background = '#0b1020'));
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl())}, styling: { background: '#111827', color: '#f9fafb', borderRadius: 4 } }`);
    await waitReady(page);
    const w = frame(page);
    await w.getByLabel('Card number').pressSequentially('5555');
    const colors = await w.locator('#w').evaluate((root) => {
      const c = (sel: string, prop: 'color' | 'backgroundColor' = 'color') => getComputedStyle(root.querySelector(sel)!)[prop];
      return { bg: getComputedStyle(root).backgroundColor, label: c('label'), input: c('#cc-number'), inputBg: c('#cc-number', 'backgroundColor'), hint: c('#card-note'), brand: c('#cc-brand') };
    });
    for (const k of ['label', 'input', 'hint', 'brand'] as const) expect(contrast(colors[k], colors.bg), k).toBeGreaterThanOrEqual(4.5);
    expect(contrast(colors.input, colors.inputBg)).toBeGreaterThanOrEqual(4.5);
    await page.screenshot({ path: '/tmp/native-shots/dark-theme.png' }).catch(() => undefined);
  });
});

describe('PushCash.Widget: tokenize()', () => {
  it('card data stays in the iframe: only the page\'s own /widget/card sees it; the parent gets the token, and onValid', async () => {
    const { page, errors } = await open();
    await page.evaluate(`window.t.w = new window.PushCash.Widget({ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only' }))},
      onValid: function () { window.t.valid++; } })`);
    await waitReady(page);
    expect(await tokenize(page)).toMatchObject({ code: 'form_invalid', fields: ['card_number', 'expiry', 'cvv'] });
    await typeCard(frame(page));
    await expect.poll(() => page.evaluate(() => (window as unknown as { t: { valid: number } }).t.valid)).toBe(1);
    // Two calls at once: one request, one token.
    const [a, b] = await page.evaluate(`Promise.all([window.t.w.tokenize(), window.t.w.tokenize()])`) as { token: string }[];
    expect(a).toEqual({ token: 'token_card' });
    expect(b).toEqual({ token: 'token_card' });
    expect(received).toEqual([{ path: '/widget/card', body: { nonce: 'op_1.nonce_sandbox', pan: '5555555555554444', cvv: '123', exp_month: '12', exp_year: '30' } }]);
    expect(await tokenize(page)).toEqual({ token: 'token_card' });
    expect(received).toHaveLength(1);
    const messages = await page.evaluate(() => (window as unknown as { t: { messages: { origin: string; data: string }[] } }).t.messages);
    expect(messages.length).toBeGreaterThan(0);
    for (const m of messages) {
      expect(m.origin).toBe(hostUrl);
      // No digits of the card, and no card field with a value: only the protocol's own fields.
      expect(m.data).not.toMatch(/5555|4444|"123"|"(pan|cvv|exp_month|exp_year)":/);
      expect(Object.keys(JSON.parse(m.data)).every((k) => ['source', 'v', 'type', 'id', 'valid', 'method', 'height', 'token', 'code', 'message', 'fields', 'server_code'].includes(k))).toBe(true);
    }
    expect(messages.map((m) => JSON.parse(m.data).type)).toEqual(expect.arrayContaining(['ready', 'resize', 'valid', 'error', 'tokenized']));
    // Editing after the token is minted is not possible: the nonce is spent.
    await expect(frame(page).getByLabel('Card number').isDisabled()).resolves.toBe(true);
    expect(errors).toEqual([]);
  });

  it('form_invalid names the bad fields, and the page shows why next to each; Amex numbers group 4-6-5 with a 4-digit CVV', async () => {
    const { page } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only' }))} }`);
    await waitReady(page);
    const w = frame(page);
    await w.getByLabel('Card number').pressSequentially('378282246310005');
    await expect(w.getByLabel('Card number').inputValue()).resolves.toBe('3782 822463 10005');
    await expect(w.locator('#cc-brand').textContent()).resolves.toBe('Amex');
    // A complete number moves the focus on to the expiry.
    await expect(w.getByLabel('Expiry').evaluate((el) => el === document.activeElement)).resolves.toBe(true);
    await w.getByLabel('Expiry').pressSequentially('1330');
    await w.getByLabel('CVV').pressSequentially('123');
    const r = await tokenize(page);
    expect(r).toMatchObject({ code: 'form_invalid', fields: ['expiry', 'cvv'] });
    expect(r.message).toBe('the card form is not complete or not valid: check the expiry date, CVV');
    await expect(w.locator('#cc-exp-err').textContent()).resolves.toBe('The month must be 01 to 12');
    await expect(w.locator('#cc-cvv-err').textContent()).resolves.toBe('The CVV has 4 digits');
    await expect(w.getByLabel('CVV').getAttribute('aria-describedby')).resolves.toBe('cc-cvv-err');
    expect(received).toEqual([]);
  });

  it('tokenization_failed carries the server\'s code (and the field, shown in the page); a 5xx too', async () => {
    const { page } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only' }))} }`);
    await waitReady(page);
    await typeCard(frame(page), '4242424242424242');
    const r = await tokenize(page);
    expect(r).toMatchObject({ code: 'tokenization_failed', serverCode: 'invalid_card_number', fields: ['card_number'] });
    expect(r.message).toMatch(/invalid_card_number/);
    await expect(frame(page).locator('#cc-number-err').textContent()).resolves.toBe('This card number is not valid');

    await frame(page).getByLabel('Card number').fill('');
    await frame(page).getByLabel('Card number').pressSequentially('4111111111111111');
    expect(await tokenize(page)).toMatchObject({ code: 'tokenization_failed', serverCode: 'internal' });
    await expect(frame(page).locator('#card-note').textContent()).resolves.toBe('Something went wrong; try again');
  });

  it('session_expired: from the 403 page of a spent nonce at once, and from a 403 of /widget/card', async () => {
    const { page } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(hostUrl + '/expired')} }`);
    await expect.poll(() => tokenize(page)).toMatchObject({ code: 'session_expired' });
    await expect(frame(page).locator('body').textContent()).resolves.toContain('This payment form has expired');

    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only', nonce: 'spent' }))} }`);
    await waitReady(page);
    await typeCard(frame(page));
    const r = await tokenize(page);
    expect(r).toMatchObject({ code: 'session_expired', serverCode: 'nonce_invalid' });
    await expect(frame(page).locator('#card-note').textContent()).resolves.toBe('This form has expired. Reload the page to start again.');
    expect(await tokenize(page)).toMatchObject({ code: 'session_expired' });
  });

  it('the bank sign-in: form_invalid before it, the token after it; a tokenize() during the sign-in waits for it', async () => {
    const { page } = await open();
    await page.evaluate(`window.t.w = new window.PushCash.Widget({ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'secure_debit' }))},
      onValid: function () { window.t.valid++; } })`);
    await waitReady(page);
    const w = frame(page);
    expect(await tokenize(page)).toMatchObject({ code: 'form_invalid', fields: ['bank_sign_in'] });
    await w.getByRole('button', { name: 'Sign in to your bank' }).click();
    await expect(w.locator('#bank-err').textContent()).resolves.toBe('Enter your bank username');
    await w.getByLabel('Bank username').fill('mxuser');
    await w.getByLabel('Password').fill('password');
    await w.getByRole('button', { name: 'Sign in to your bank' }).click();
    expect(await tokenize(page)).toEqual({ token: 'token_bank' });
    await expect(w.locator('#bank-account').textContent()).resolves.toBe('MX Bank ••6789');
    expect(await page.evaluate(() => (window as unknown as { t: { valid: number } }).t.valid)).toBe(1);
    expect(received.map((r) => r.path)).toEqual(['/widget/bank']);
  });

  it('card or bank (no type): tabs, with the arrow keys; tokenize() uses the one shown', async () => {
    const { page } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl())} }`);
    await waitReady(page);
    const w = frame(page);
    await w.getByRole('tab', { name: 'Card' }).focus();
    await w.getByRole('tab', { name: 'Card' }).press('ArrowRight');
    await expect(w.getByRole('tab', { name: 'Bank account' }).getAttribute('aria-selected')).resolves.toBe('true');
    await expect(w.getByLabel('Card number').isVisible()).resolves.toBe(false);
    expect(await tokenize(page)).toMatchObject({ code: 'form_invalid', fields: ['bank_sign_in'] });
    await w.getByRole('tab', { name: 'Bank account' }).press('ArrowLeft');
    expect(await tokenize(page)).toMatchObject({ code: 'form_invalid', fields: ['card_number', 'expiry', 'cvv'] });
  });

  it('apple_pay: a message and no form; tokenize() rejects with unsupported_type', async () => {
    const { page } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'apple_pay' }))} }`);
    await waitReady(page);
    await expect(frame(page).locator('body').textContent()).resolves.toContain('Apple Pay opens in the app');
    expect(await frame(page).locator('input').count()).toBe(0);
    expect(await tokenize(page)).toMatchObject({ code: 'unsupported_type' });
  });

  it('timeout, when the widget does not answer; destroyed, for a pending and for a later call', async () => {
    const { page } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(hostUrl + '/silent')}, timeout: 1000 }`);
    await waitReady(page);
    const t0 = Date.now();
    expect(await tokenize(page)).toMatchObject({ code: 'timeout', isError: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const pending = tokenize(page);
    await page.evaluate(() => (window as unknown as { t: { w: { destroy(): void } } }).t.w.destroy());
    expect(await pending).toMatchObject({ code: 'destroyed' });
    expect(await tokenize(page)).toMatchObject({ code: 'destroyed' });
    expect(await page.locator('iframe').count()).toBe(0);
  });

  it('a second Widget in the same container replaces the first', async () => {
    const { page } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only' }))} }`);
    await page.evaluate(`window.t.first = window.t.w`);
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'secure_debit' }))} }`);
    expect(await page.locator('#payment-container iframe').count()).toBe(1);
    expect(await page.evaluate(`window.t.first.tokenize().catch((e) => e.code)`)).toBe('destroyed');
    await waitReady(page);
    await expect(frame(page).getByLabel('Bank username').count()).resolves.toBe(1);
  });
});

describe('PushCash.Widget: origins, both ways', () => {
  it('the page: a parent origin not in allowedOrigins sees "not enabled", and gets no message at all', async () => {
    const { page } = await open();
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only', allowed: 'https://elsewhere.example' }))} }`);
    const w = frame(page);
    await expect.poll(() => w.locator('#blocked').isVisible()).toBe(true);
    await expect(w.locator('#blocked').textContent()).resolves.toContain('This payment form is not enabled for this site.');
    await expect(w.locator('#blocked').textContent()).resolves.toContain(siteUrl);
    await expect(w.getByLabel('Card number').isDisabled()).resolves.toBe(true);
    await page.waitForTimeout(300);
    expect(await isReady(page)).toBe(false);
    expect(await tokenize(page)).toMatchObject({ code: 'widget_not_ready' });
    expect(await page.evaluate(() => (window as unknown as { t: { messages: unknown[] } }).t.messages)).toEqual([]);
    await page.screenshot({ path: '/tmp/native-shots/page-blocked.png' }).catch(() => undefined);

    // The same page with the merchant's origin in the list works.
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(widgetUrl({ type: 'card_only', allowed: `https://elsewhere.example,${siteUrl}/` }))} }`);
    await waitReady(page);
    await typeCard(frame(page));
    expect(await tokenize(page)).toEqual({ token: 'token_card' });
  });

  it('the SDK: messages from another origin in the iframe, or from another window, are ignored', async () => {
    const { page } = await open();
    // The widget URL's page sends the iframe to a third origin, whose page claims to be the widget.
    await mount(page, `{ selector: '#payment-container', url: ${JSON.stringify(hostUrl + '/hop')} }`);
    await expect.poll(() => page.evaluate(() => (window as unknown as { t: { messages: { origin: string }[] } }).t.messages.length)).toBeGreaterThan(2);
    // A forged answer from the merchant's own window, too.
    await page.evaluate(() => window.postMessage({ source: 'pushcash-widget', v: 1, type: 'ready', valid: true }, '*'));
    await page.waitForTimeout(300);
    expect(await isReady(page)).toBe(false);
    expect(await tokenize(page)).toMatchObject({ code: 'widget_not_ready' });
    const origins = await page.evaluate(() => (window as unknown as { t: { messages: { origin: string }[] } }).t.messages.map((m) => m.origin));
    expect(new Set(origins)).toEqual(new Set([thirdUrl, siteUrl]));
    // Its resize was not applied either.
    expect((await page.locator('#payment-container iframe').boundingBox())!.height).toBe(212);
  });
});
