/**
 * The payment page's limits section (an intent made with display_limits: true) in Chromium: the user sees their
 * daily limit, asks for a higher one after a decline over it, and the decision (sandbox simulator) shows on the page.
 */
import { mkdirSync } from 'node:fs';
import { type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, startTestServer, type Api, type TestServer } from './helpers.js';
import { launchChromium, watch } from './browser.js';

const SHOTS = '/tmp/limits-shots';
let s: TestServer;
let api: Api;
let browser: BrowserContext;

beforeAll(async () => {
  s = await startTestServer();
  api = client(s.url, (await newOperator(s, 'Lucky Star Casino')).sandbox);
  await api.call('PATCH', '/operator/settings', { limits: { daily_cash_in: 10_000 } }); // $100 a day
  browser = await launchChromium('cw-limits-');
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await s?.stop();
});

describe('the limits section of the payment page', () => {
  it('shows the limit; after a decline over it the user asks for more; the decision shows after a reload', async () => {
    const user = await newUser(api);
    const created = await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 25_000, currency: 'USD', display_limits: true });
    expect(created.status).toBe(200);
    for (const [width, height] of [[1280, 900], [390, 844]]) {
      const page = await browser.newPage();
      await page.setViewportSize({ width, height });
      await page.goto(created.body.url);
      await expect.poll(() => page.getByTestId('daily-limit').textContent()).toBe('$100.00');
      await page.screenshot({ path: `${SHOTS}/before-${width}.png`, fullPage: true });
      await page.close();
    }
    const page = await browser.newPage();
    const problems = watch(page);
    await page.goto(created.body.url);
    await page.locator('#approve').click();
    await expect.poll(() => page.locator('#result').textContent()).toMatch(/declined/i);
    expect((await api.get(`/intent/${created.body.id}`)).body.decline_category).toBe('limit_exceeded');
    // Declined for its limit: the request form is there (opened on reload), after the page's buttons are gone.
    await page.reload();
    await expect.poll(() => page.locator('#cw-limits-ask').getAttribute('open')).not.toBeNull();
    await page.getByTestId('limits-request-amount').fill('50');
    await page.getByTestId('limits-request-submit').click();
    await expect.poll(() => page.getByTestId('limits-result').textContent()).toMatch(/more than your current limit of \$100\.00/);
    await page.getByTestId('limits-request-amount').fill('500');
    await page.getByTestId('limits-request-submit').click();
    await expect.poll(() => page.getByTestId('limits-result').textContent()).toBe('Request sent');
    expect(await page.getByTestId('limits-request-open').textContent()).toMatch(/\$500\.00 a day/);
    await page.screenshot({ path: `${SHOTS}/sent-1280.png`, fullPage: true });
    const asked = await api.get(`/user/${user}/limits_request`);
    expect(asked.body).toMatchObject({ status: 'requested', requested_daily_limit: 50_000 });

    const decided = await api.post('/simulate/limits_decision', { user_id: user, decision: 'approved', approved_daily_limit: 50_000 });
    expect(decided.status, JSON.stringify(decided.body)).toBe(200);
    const again = await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 25_000, currency: 'USD', display_limits: true });
    await page.goto(again.body.url);
    await expect.poll(() => page.getByTestId('daily-limit').textContent()).toBe('$500.00');
    await page.locator('#approve').click();
    await expect.poll(() => page.locator('#result').textContent()).toMatch(/approved/i);
    expect(problems).toEqual([]);
    await page.close();
  });
});
