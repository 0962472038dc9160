/**
 * The hosted payment session page (the intent's `url`), driven in a real headless Chromium: what the end user sees,
 * what their clicks and key presses do to the intent, and how the page hands the outcome back to the operator
 * (redirect, or postMessage to the opener / embedding window).
 */
import { createServer, type Server } from 'node:http';
import { type BrowserContext, type Frame, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DECLINE_MESSAGES } from '../src/domain/decline-messages.js';
import { client, newOperator, newUser, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';
import { launchChromium, listenOnLoopback } from './browser.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let prodApi: Api;
let browser: BrowserContext;

/** The operator's own site: the redirect target, a page that opens the payment in a popup, one that embeds it. */
let site: Server;
let siteUrl: string;
const received: URL[] = [];
/** The Referer header each /return request carried, by intent id. */
const referers = new Map<string, string | undefined>();

const LISTENER = `<script>
  window.__messages = []; window.__origins = [];
  window.addEventListener('message', function (e) { window.__messages.push(e.data); window.__origins.push(e.origin); });
</script>`;

function startSite(): Promise<void> {
  site = createServer((req, res) => {
    const u = new URL(req.url ?? '/', siteUrl);
    received.push(u);
    if (u.pathname === '/return') referers.set(u.searchParams.get('intent_id') ?? '', req.headers.referer);
    const target = JSON.stringify(u.searchParams.get('u') ?? '');
    const html = (body: string) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><html><body>${body}</body></html>`);
    if (u.pathname === '/return') return html('<h1 id="back">Back at the casino</h1>');
    if (u.pathname === '/opener') return html(`${LISTENER}<button id="open" onclick='window.open(${target}, "cashwire")'>Deposit</button>`);
    if (u.pathname === '/embed') return html(`${LISTENER}<iframe id="pay" width="480" height="520" src=${JSON.stringify(u.searchParams.get('u') ?? '')}></iframe>`);
    res.writeHead(404).end();
  });
  return listenOnLoopback(site).then((url) => {
    siteUrl = url;
  });
}

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'Acme Casino');
  api = client(s.url, keys.sandbox);
  prodApi = client(s.url, keys.production);
  await startSite();
  browser = await launchChromium('cw-chromium-');
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
  await s?.stop();
});

// Every test opens its own pages; close them so one test's tabs never leak into the next.
afterEach(async () => {
  await Promise.all(browser.pages().map((p) => p.close()));
});

async function createIntent(body: Record<string, unknown>, on: Api = api) {
  const r = await on.post('/intent', { currency: 'USD', direction: 'cash_in', amount: 5000, ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { id: string; url: string; status: string };
}

async function intent(id: string, on: Api = api) {
  const r = await on.get(`/intent/${id}`);
  expect(r.status).toBe(200);
  return r.body as { id: string; status: string; decline_category: string | null };
}

async function eventTypes(id: string): Promise<string[]> {
  const r = await api.get(`/events?intent_id=${encodeURIComponent(id)}`);
  expect(r.status).toBe(200);
  return (r.body.data as { type: string; intent_id: string }[]).map((e) => {
    expect(e.intent_id).toBe(id);
    return e.type;
  });
}

/** Waits until the page (or frame) shows a decided outcome, and returns its text. */
async function outcome(p: Page | Frame): Promise<string> {
  const result = p.locator('#result:is(.approved, .pending, .declined, .canceled, .error)');
  await result.waitFor();
  return (await result.textContent()) ?? '';
}

const text = async (p: Page | Frame, selector: string) => ((await p.locator(selector).textContent()) ?? '').trim();

/** What the result line says for a decline: the outcome, then the sentence for the payer (never the raw category). */
const declineText = (category: keyof typeof DECLINE_MESSAGES) => `Payment declined ${DECLINE_MESSAGES[category]}`;

/** Records every text the result line shows, outside the page, so it survives the page navigating away. */
async function recordResults(p: Page): Promise<string[]> {
  const seen: string[] = [];
  await p.exposeBinding('__cwResult', (_src, t: string) => void seen.push(t));
  await p.addInitScript(() => {
    document.addEventListener('DOMContentLoaded', () => {
      const r = document.getElementById('result');
      if (!r) return;
      new MutationObserver(() => (window as unknown as { __cwResult(t: string): void }).__cwResult(r.textContent ?? '')).observe(r, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
  });
  return seen;
}

describe('hosted payment page', () => {
  it('shows the operator, amount, direction and the sandbox badge', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 5000 });
    const page = await browser.newPage();
    const res = await page.goto(i.url);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['cache-control']).toBe('no-store');

    expect(await text(page, 'h1')).toBe('Acme Casino');
    expect(await text(page, '[data-testid=direction]')).toBe('Deposit');
    expect(await text(page, '[data-testid=amount]')).toBe('$50.00');
    expect(await text(page, '[data-testid=sandbox-badge]')).toBe('SANDBOX');
    expect(await page.title()).toBe('Deposit $50.00 · Acme Casino');
    expect(await page.getByRole('button').allTextContents()).toEqual(['Approve deposit', 'Cancel', 'Decline (sandbox)']);
    expect(await text(page, '#result')).toBe('');
    await page.screenshot({ path: '/tmp/hosted-page.png', fullPage: true });

    // Opening the page changes nothing.
    expect((await intent(i.id)).status).toBe('created');
    expect(await eventTypes(i.id)).toEqual([]);
  });

  it('formats large amounts with separators and escapes the operator name', async () => {
    const other = await newOperator(s, `<img src=x onerror="window.__xss=1"> O'Brien & Sons`);
    const otherApi = client(s.url, other.sandbox);
    const user = await newUser(otherApi);
    const i = await createIntent({ user_id: user, amount: 123456, direction: 'cash_in' }, otherApi);
    const page = await browser.newPage();
    await page.goto(i.url);
    expect(await text(page, 'h1')).toBe(`<img src=x onerror="window.__xss=1"> O'Brien & Sons`);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await text(page, '[data-testid=amount]')).toBe('$1,234.56');
  });

  it('production pages have no sandbox badge and no Decline button', async () => {
    const user = await newUser(prodApi);
    const i = await createIntent({ user_id: user, amount: 2500 }, prodApi);
    const page = await browser.newPage();
    await page.goto(i.url);
    expect(await text(page, '[data-testid=amount]')).toBe('$25.00');
    expect(await page.locator('[data-testid=sandbox-badge]').count()).toBe(0);
    expect(await page.getByText('SANDBOX').count()).toBe(0);
    expect(await page.getByRole('button').allTextContents()).toEqual(['Approve deposit', 'Cancel']);
    // Even a hand-made decline request is refused outside the sandbox.
    const u = new URL(i.url);
    const r = await client(s.url).post(`${u.pathname}/decision`, { s: u.searchParams.get('s'), action: 'decline' });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect((await intent(i.id, prodApi)).status).toBe('created');
  });

  it('approve: redirects to redirect_url with intent_id and status=approved', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 5000, redirect_url: `${siteUrl}/return?order=42` });
    const page = await browser.newPage();
    const results = await recordResults(page);
    await page.goto(i.url);
    expect(await text(page, '[data-testid=amount]')).toBe('$50.00');
    expect(await text(page, '[data-testid=direction]')).toBe('Deposit');

    await page.getByRole('button', { name: 'Approve deposit' }).click();
    await page.waitForURL((u) => u.origin === siteUrl && u.pathname === '/return');

    const back = new URL(page.url());
    expect(back.searchParams.get('intent_id')).toBe(i.id);
    expect(back.searchParams.get('status')).toBe('approved');
    expect(back.searchParams.get('order')).toBe('42');
    const hit = received.filter((u) => u.pathname === '/return' && u.searchParams.get('intent_id') === i.id);
    expect(hit).toHaveLength(1);
    expect(Object.fromEntries(hit[0]!.searchParams)).toEqual({ order: '42', intent_id: i.id, status: 'approved' });
    expect(await text(page, '#back')).toBe('Back at the casino');
    // The payment URL carries the session token; the redirect target must not learn it from the Referer.
    expect(referers.has(i.id)).toBe(true);
    expect(referers.get(i.id)).toBeUndefined();
    // Before leaving, the page told the user what happened.
    expect(results).toContain('Payment approved');

    const after = await intent(i.id);
    expect(after.status).toBe('approved');
    expect(after.decline_category).toBeNull();
    expect(await eventTypes(i.id)).toEqual(['intent.approved']);
  });

  it('cancel: redirects with status=canceled and records intent.canceled', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 7500, redirect_url: `${siteUrl}/return` });
    const page = await browser.newPage();
    const results = await recordResults(page);
    await page.goto(i.url);
    expect(await text(page, '[data-testid=amount]')).toBe('$75.00');

    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForURL((u) => u.origin === siteUrl && u.pathname === '/return');

    const hit = received.filter((u) => u.pathname === '/return' && u.searchParams.get('intent_id') === i.id);
    expect(hit).toHaveLength(1);
    expect(hit[0]!.searchParams.get('status')).toBe('canceled');
    expect(results).toContain('Payment canceled');
    expect((await intent(i.id)).status).toBe('canceled');
    expect(await eventTypes(i.id)).toEqual(['intent.canceled']);
  });

  it('sandbox Decline button: declined with insufficient_funds', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 5000 });
    const page = await browser.newPage();
    await page.goto(i.url);
    await page.getByRole('button', { name: 'Decline (sandbox)' }).click();

    expect(await outcome(page)).toBe(declineText('insufficient_funds'));
    expect(await page.locator('#result').getAttribute('class')).toBe('declined');
    expect(await page.getByRole('button').count()).toBe(0);
    const after = await intent(i.id);
    expect(after.status).toBe('declined');
    expect(after.decline_category).toBe('insufficient_funds');
    expect(await eventTypes(i.id)).toEqual(['intent.declined']);
  });

  it('sandbox magic amount 2200: Approve ends declined for insufficient funds', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 2200, direction: 'cash_in' });
    const page = await browser.newPage();
    await page.goto(i.url);
    expect(await text(page, '[data-testid=amount]')).toBe('$22.00');
    await page.getByRole('button', { name: 'Approve deposit' }).click();

    expect(await outcome(page)).toBe(declineText('insufficient_funds'));
    const after = await intent(i.id);
    expect(after.status).toBe('declined');
    expect(after.decline_category).toBe('insufficient_funds');
    expect(await eventTypes(i.id)).toEqual(['intent.declined']);
  });

  it('no redirect_url, opened as a popup: the opener receives the outcome by postMessage', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 5000 });
    const opener = await browser.newPage();
    await opener.goto(`${siteUrl}/opener?u=${encodeURIComponent(i.url)}`);
    const [popup] = await Promise.all([opener.waitForEvent('popup'), opener.click('#open')]);
    await popup.waitForLoadState();
    expect(await text(popup, '[data-testid=amount]')).toBe('$50.00');

    await popup.getByRole('button', { name: 'Approve deposit' }).click();
    expect(await outcome(popup)).toBe('Payment approved');
    // No redirect: the popup stays on the payment page.
    expect(new URL(popup.url()).origin).toBe(new URL(s.url).origin);

    await opener.waitForFunction(() => (window as unknown as { __messages: unknown[] }).__messages.length > 0);
    const got = await opener.evaluate(() => {
      const w = window as unknown as { __messages: unknown[]; __origins: string[] };
      return { messages: w.__messages, origins: w.__origins };
    });
    expect(got.messages).toEqual([{ source: 'cashwire', intent_id: i.id, status: 'approved' }]);
    expect(got.origins).toEqual([new URL(s.url).origin]);
    expect((await intent(i.id)).status).toBe('approved');
    expect(await eventTypes(i.id)).toEqual(['intent.approved']);
  });

  it('no redirect_url, embedded in an iframe: the parent receives the outcome by postMessage', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 1999 });
    const parent = await browser.newPage();
    await parent.goto(`${siteUrl}/embed?u=${encodeURIComponent(i.url)}`);
    const frame = parent.frames().find((f) => f !== parent.mainFrame());
    expect(frame).toBeDefined();
    await frame!.waitForLoadState();
    expect(await text(frame!, '[data-testid=amount]')).toBe('$19.99');
    expect(await text(frame!, '[data-testid=sandbox-badge]')).toBe('SANDBOX');

    await frame!.getByRole('button', { name: 'Approve deposit' }).click();
    expect(await outcome(frame!)).toBe('Payment approved');

    await parent.waitForFunction(() => (window as unknown as { __messages: unknown[] }).__messages.length > 0);
    const messages = await parent.evaluate(() => (window as unknown as { __messages: unknown[] }).__messages);
    expect(messages).toEqual([{ source: 'cashwire', intent_id: i.id, status: 'approved' }]);
    expect((await intent(i.id)).status).toBe('approved');
  });

  it('a wrong or missing session token is "Payment session not found" with HTTP 404', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user });
    const other = await createIntent({ user_id: user, amount: 1000 });
    const page = await browser.newPage();
    const u = new URL(i.url);

    const bad = new URL(u);
    bad.searchParams.set('s', 'x'.repeat(u.searchParams.get('s')!.length));
    const wrongTokenOfSameLength = await page.goto(bad.toString());
    expect(wrongTokenOfSameLength?.status()).toBe(404);
    expect(wrongTokenOfSameLength?.headers()['content-type']).toMatch(/^text\/html/);
    expect(wrongTokenOfSameLength?.headers()['cache-control']).toBe('no-store');
    expect(await text(page, 'h1')).toBe('Payment session not found');
    expect(await page.getByRole('button').count()).toBe(0);
    expect(await page.locator('[data-testid=amount]').count()).toBe(0);

    // Another intent's valid token does not open this one.
    bad.searchParams.set('s', new URL(other.url).searchParams.get('s')!);
    expect((await page.goto(bad.toString()))?.status()).toBe(404);
    expect(await text(page, 'h1')).toBe('Payment session not found');

    const missing = await page.goto(`${u.origin}${u.pathname}`);
    expect(missing?.status()).toBe(404);
    expect(await text(page, 'h1')).toBe('Payment session not found');

    const unknown = await page.goto(`${u.origin}${u.pathname.replace(i.id, `${i.id}x`)}${u.search}`);
    expect(unknown?.status()).toBe(404);
    expect(await text(page, 'h1')).toBe('Payment session not found');

    expect((await intent(i.id)).status).toBe('created');
  });

  it('an already-decided intent shows its outcome and no buttons', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 5000 });
    const page = await browser.newPage();
    await page.goto(i.url);
    await page.getByRole('button', { name: 'Approve deposit' }).click();
    expect(await outcome(page)).toBe('Payment approved');

    // Reopening the link (a reload, a second tab, the back button) shows the outcome, not the buttons.
    const again = await browser.newPage();
    expect((await again.goto(i.url))?.status()).toBe(200);
    expect(await text(again, '#result')).toBe('Payment approved');
    expect(await again.locator('#result').getAttribute('class')).toBe('approved');
    expect(await again.getByRole('button').count()).toBe(0);
    expect(await text(again, '[data-testid=amount]')).toBe('$50.00');

    const declined = await createIntent({ user_id: user, amount: 2200 });
    await again.goto(declined.url);
    await again.getByRole('button', { name: 'Approve deposit' }).click();
    expect(await outcome(again)).toBe(declineText('insufficient_funds'));
    await again.reload();
    expect(await text(again, '#result')).toBe(declineText('insufficient_funds'));
    expect(await again.getByRole('button').count()).toBe(0);

    // A page left open in another tab cannot decide it a second time.
    const stale = await createIntent({ user_id: user, amount: 3000 });
    const tabA = await browser.newPage();
    const tabB = await browser.newPage();
    await tabA.goto(stale.url);
    await tabB.goto(stale.url);
    await tabA.getByRole('button', { name: 'Cancel' }).click();
    expect(await outcome(tabA)).toBe('Payment canceled');
    await tabB.getByRole('button', { name: 'Approve deposit' }).click();
    expect(await outcome(tabB)).toBe('this payment is already canceled');
    expect((await intent(stale.id)).status).toBe('canceled');
    expect(await eventTypes(stale.id)).toEqual(['intent.canceled']);
  });

  it('a server error while deciding lets the user try again', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 5000 });
    const page = await browser.newPage();
    await page.goto(i.url);
    // The first decision request fails as a crashed server would answer; later ones go through.
    let failed = 0;
    await page.route('**/decision', async (route) => {
      if (failed++ === 0) {
        return route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'internal_error', message: 'an unexpected error occurred; it was logged' } }) });
      }
      return route.continue();
    });
    await page.getByRole('button', { name: 'Approve deposit' }).click();
    expect(await outcome(page)).toBe('an unexpected error occurred; it was logged');
    await page.locator('#approve:enabled').waitFor();
    expect((await intent(i.id)).status).toBe('created');

    await page.getByRole('button', { name: 'Approve deposit' }).click();
    expect(await outcome(page)).toBe('Payment approved');
    expect(failed).toBe(2);
    expect((await intent(i.id)).status).toBe('approved');
  });

  it('keyboard: Tab reaches Approve first, and Enter approves', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 4200 });
    const page = await browser.newPage();
    await page.goto(i.url);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('approve');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Approve deposit');
    await page.keyboard.press('Enter');

    expect(await outcome(page)).toBe('Payment approved');
    expect((await intent(i.id)).status).toBe('approved');
    expect(await eventTypes(i.id)).toEqual(['intent.approved']);
  });

  it('keyboard: Tab on to Cancel and Space cancels', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 4200 });
    const page = await browser.newPage();
    await page.goto(i.url);
    await page.locator('#approve').focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('cancel');
    await page.keyboard.press('Space');

    expect(await outcome(page)).toBe('Payment canceled');
    expect((await intent(i.id)).status).toBe('canceled');
  });

  it('a withdrawal before any deposit is declined with deposit_required', async () => {
    const user = await newUser(api);
    const i = await createIntent({ user_id: user, amount: 5000, direction: 'cash_out' });
    const page = await browser.newPage();
    await page.goto(i.url);
    expect(await text(page, '[data-testid=direction]')).toBe('Withdrawal');
    expect(await text(page, '[data-testid=amount]')).toBe('$50.00');
    expect(await page.title()).toBe('Withdrawal $50.00 · Acme Casino');
    await page.getByRole('button', { name: 'Approve withdrawal' }).click();

    expect(await outcome(page)).toBe(declineText('deposit_required'));
    const after = await intent(i.id);
    expect(after.status).toBe('declined');
    expect(after.decline_category).toBe('deposit_required');
    expect(await eventTypes(i.id)).toEqual(['intent.declined']);

    // After a deposit, the same user's withdrawal goes through.
    const dep = await createIntent({ user_id: user, amount: 10000, direction: 'cash_in' });
    await page.goto(dep.url);
    await page.getByRole('button', { name: 'Approve deposit' }).click();
    expect(await outcome(page)).toBe('Payment approved');
    const out = await createIntent({ user_id: user, amount: 5000, direction: 'cash_out' });
    await page.goto(out.url);
    await page.getByRole('button', { name: 'Approve withdrawal' }).click();
    expect(await outcome(page)).toBe('Payment approved');
    expect((await intent(out.id)).status).toBe('approved');
  });
});
