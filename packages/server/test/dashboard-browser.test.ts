/**
 * The dashboard in a real headless Chromium, real clicks: sign in with a key, see an event in the list, filter by
 * type, open it, see its delivery's failed attempt (a real receiver answering 500), Resend, see the second attempt
 * succeed, sign out. Screenshots at 1280 and 390 px go to /tmp/dashboard-shots/.
 */
import { mkdirSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';
import { launchChromium, watch } from './browser.js';

const SHOTS = '/tmp/dashboard-shots';
let s: TestServer;
let keys: Keys;
let api: Api;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;
let browser: BrowserContext;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  s = await startTestServer();
  keys = await newOperator(s, 'Acme <Casino> & Co');
  api = client(s.url, keys.sandbox);
  rx = await startReceiver();
  harness = testWorkers(s);
  browser = await launchChromium('cw-dashboard-');
});
afterAll(async () => {
  await harness?.reset(rx);
  await browser?.close();
  await rx?.close();
  await s?.stop();
});

async function shots(page: Page, name: string): Promise<void> {
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: `${SHOTS}/${name}-${width === 1280 ? 'desktop' : '390'}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

describe('the dashboard in Chromium', () => {
  it('signs in, lists and filters events, shows the attempts of a failed delivery, resends, signs out', async () => {
    const userId = await newUser(api);
    // An event of another type, for the filter to leave out.
    await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100 }, 'cancel');
    // A payment whose webhook fails once (500), as seen by a real receiver.
    rx.setResponder(() => ({ status: 500, body: 'receiver down' }));
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 4200, webhook_url: `${rx.url}/hook`, tag: 'order-77' });
    const worker = harness.make();
    expect(await worker.tick()).toBe(1);
    expect(rx.received).toHaveLength(1);
    const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0];

    const page = await browser.newPage();
    const problems = watch(page);
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${s.url}/dashboard/events`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');

    // A wrong key first: the form again, with an error.
    await page.fill('#key', 'cw_sk_test_wrong');
    await page.click('#sign-in');
    await expect.poll(() => page.textContent('[data-testid=error]')).toContain('not valid');
    problems.length = 0; // the 401 of the wrong key was expected
    await shots(page, 'sign-in-error');

    await page.fill('#key', keys.sandbox);
    await page.click('#sign-in');
    await page.waitForURL('**/dashboard/events');
    expect(await page.textContent('[data-testid=environment]')).toBe('SANDBOX');
    expect(await page.textContent('header')).toContain('Acme <Casino> & Co');
    const rows = page.locator('[data-testid=event-row]');
    expect(await rows.count()).toBeGreaterThan(1);
    expect(await page.textContent('tbody')).toContain(ev.id);
    await shots(page, 'events');

    // Filter by type: only that type is left.
    await page.fill('#type', ev.type);
    await page.click('#filter');
    await page.waitForURL((u) => u.searchParams.get('type') === ev.type);
    const types = await page.locator('[data-testid=event-link]').allTextContents();
    expect(types.length).toBeGreaterThan(0);
    expect(types.every((t) => t === ev.type)).toBe(true);
    // Filter by delivery status `failed`? The delivery is pending its retry: `pending` has it, `dead` has nothing.
    await page.selectOption('#status', 'dead');
    await page.click('#filter');
    await page.waitForURL((u) => u.searchParams.get('status') === 'dead');
    expect(await page.locator('[data-testid=no-events]').count()).toBe(1);
    await page.selectOption('#status', 'pending');
    await page.click('#filter');
    await page.waitForURL((u) => u.searchParams.get('status') === 'pending');
    expect(await page.locator('[data-testid=event-link]').count()).toBe(1);

    // Open it: the delivery and its failed attempt.
    await page.click(`[data-testid=event-link]`);
    await page.waitForURL(`**/dashboard/events/${ev.id}`);
    expect(await page.textContent('[data-testid=event-type]')).toBe(ev.type);
    expect(await page.textContent('[data-testid=event-data]')).toContain('"amount": 4200');
    expect(await page.locator('[data-testid=delivery]').count()).toBe(1);
    expect(await page.textContent('[data-testid=delivery-status]')).toBe('pending');
    const attempts = page.locator('[data-testid=attempt]');
    expect(await attempts.count()).toBe(1);
    expect(await attempts.first().textContent()).toContain('HTTP 500');
    expect(await attempts.first().textContent()).toContain('receiver down');
    expect(await attempts.first().textContent()).toMatch(/\d+ ms/);
    await shots(page, 'event-failed');

    // Resend: the pending delivery is due now; the receiver is back; a tick delivers it.
    rx.setResponder(() => ({ status: 200, body: 'ok' }));
    await page.click('#resend');
    await page.waitForURL((u) => u.searchParams.get('resent') === '1');
    expect(await page.textContent('[data-testid=notice]')).toContain('Resent');
    expect(await worker.tick()).toBe(1);
    expect(rx.received).toHaveLength(2);
    await page.reload();
    expect(await page.textContent('[data-testid=delivery-status]')).toBe('succeeded');
    expect(await attempts.count()).toBe(2);
    expect(await attempts.nth(1).textContent()).toContain('HTTP 200');
    await shots(page, 'event-resent');

    // Sign out: back to the form; the events page is out of reach again.
    await page.click('#sign-out');
    await page.waitForURL('**/dashboard/sign-in');
    await page.goto(`${s.url}/dashboard/events`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
    expect(problems).toEqual([]);
    await page.close();
  });
});
