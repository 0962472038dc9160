/**
 * The object pages in a real headless Chromium, real clicks: sign in, open Intents from the nav, click an intent, see
 * its events, click through to the event's page; the users page and a user's; refunds, disputes and transfers with
 * their details; then a production key's session seeing none of the sandbox's objects. Screenshots at 1280 and
 * 390 px go to /tmp/dashboard-shots/objects-*.png; at 390 px no page is wider than the screen.
 */
import { createHmac } from 'node:crypto';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { client, newUser, payThroughPage } from './helpers.js';
import { openPage, shots as shotsOf, signInWithKey, useBrowserSetup } from './dashboard-kit.js';

const setup = useBrowserSetup('Acme <Casino> & Co', 'cw-dashboard-objects-');
let userId: string;
let intentId: string;
let refundId: string;
let disputeId: string;
let transferId: string;

beforeAll(async () => {
  userId = await newUser(setup.api, { tag: 'player-<7>' });
  await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 500 }, 'decline');
  setup.s.clock.advance(1000);
  const refunded = await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 9900 });
  refundId = (await setup.api.post('/refund', { intent_id: refunded.intent.id })).body.id;
  setup.s.clock.advance(1000);
  const disputed = await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 25000 });
  disputeId = (await setup.api.post('/simulate/dispute', { intent_id: disputed.intent.id, code: 'R10' })).body.id;
  setup.s.clock.advance(1000);
  const { intent } = await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 123456, tag: 'order-42' });
  intentId = intent.id;
  await setup.api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 900000 });
  const ob = (await setup.api.post('/sendcash/onboarding', { webhook_url: 'http://127.0.0.1:9/sendcash' })).body;
  const sig = createHmac('sha256', ob.secret_key).update('sc_user_1:ref-77:1111:0690000031:044').digest('hex');
  const t = await client(setup.s.url).post('/sendcash/charges', {
    publicKey: ob.public_key, signature: sig, userId: 'sc_user_1', paymentReference: 'ref-77', amount: '11.11', destinationAccountNumber: '0690000031', destinationBankCode: '044',
  });
  transferId = t.body.transfer?.id ?? t.body.id;
});

/** Screenshots at 1280 and 390 px; at 390 px the page must not scroll sideways. */
const shots = (page: Page, name: string) => shotsOf(page, `objects-${name}`, { fits390: true });

describe('the object pages in Chromium', () => {
  it('opens intents, clicks an intent, sees its events, clicks through to the event page', async () => {
    const { page, problems } = await setup.signedIn();
    await page.click('#nav-intents');
    await page.waitForURL('**/dashboard/intents');
    expect(await page.locator('[data-testid=intent-row]').count()).toBe(4);
    expect(await page.locator('[data-testid=intent-row]').first().textContent()).toContain('$1,234.56');
    await shots(page, 'intents');

    // The status filter, by the form.
    await page.selectOption('#status', 'declined');
    await page.click('#filter');
    await page.waitForURL('**/dashboard/intents?status=declined');
    expect(await page.locator('[data-testid=intent-row]').count()).toBe(1);
    await page.goto(`${setup.s.url}/dashboard/intents`);

    await page.click(`[data-testid=intent-row] a[href="/dashboard/intents/${intentId}"]`);
    await page.waitForURL(`**/dashboard/intents/${intentId}`);
    expect(await page.textContent('[data-testid=object-status]')).toBe('approved');
    expect(await page.textContent('[data-testid=object-amount]')).toBe('$1,234.56');
    const links = page.locator('[data-testid=object-event-link]');
    await expect.poll(() => links.count()).toBeGreaterThan(0);
    const types = await links.allTextContents();
    expect(types).toContain('intent.approved');
    await shots(page, 'intent');

    const first = await links.first().getAttribute('href');
    await links.first().click();
    await page.waitForURL(`**${first}`);
    expect(await page.textContent('[data-testid=event-type]')).toBe(types[0]);

    // Back to the intent, then its user.
    await page.goBack();
    await page.click('[data-testid=user-link]');
    await page.waitForURL(`**/dashboard/users/${userId}`);
    expect(await page.locator('[data-testid=intent-row]').count()).toBe(4);
    expect(await page.locator('[data-testid=object-event-link]').allTextContents()).toEqual(['user.limits_request']);
    expect(await page.textContent('body')).toContain('player-<7>');
    await shots(page, 'user');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows the users, refunds, disputes and transfers pages and their details', async () => {
    const { page, problems } = await openPage(setup.browser);
    await page.goto(`${setup.s.url}/dashboard/events`);
    await page.click('#nav-users');
    await page.waitForURL('**/dashboard/users');
    expect(await page.locator('[data-testid=user-row]').count()).toBe(1);
    await shots(page, 'users');

    await page.click('#nav-refunds');
    await page.waitForURL('**/dashboard/refunds');
    expect(await page.locator('[data-testid=refund-row]').textContent()).toContain('$99.00');
    await shots(page, 'refunds');
    await page.click(`a[href="/dashboard/refunds/${refundId}"]`);
    await page.waitForURL(`**/dashboard/refunds/${refundId}`);
    expect(await page.locator('[data-testid=object-event-link]').allTextContents()).toEqual(['refund.approved']);
    await shots(page, 'refund');

    await page.click('#nav-disputes');
    await page.waitForURL('**/dashboard/disputes');
    await shots(page, 'disputes');
    await page.click(`a[href="/dashboard/disputes/${disputeId}"]`);
    await page.waitForURL(`**/dashboard/disputes/${disputeId}`);
    expect(await page.textContent('[data-testid=reason-code]')).toBe('R10');
    expect(await page.locator('[data-testid=object-event-link]').allTextContents()).toEqual(['dispute.created']);
    await shots(page, 'dispute');
    // From the dispute to its intent.
    await page.click('[data-testid=intent-link]');
    await page.waitForURL('**/dashboard/intents/*');
    expect(await page.locator('[data-testid=dispute-link]').count()).toBe(1);

    await page.click('#nav-transfers');
    await page.waitForURL('**/dashboard/transfers');
    expect(await page.locator('[data-testid=transfer-row]').textContent()).toContain('₦11.11');
    await shots(page, 'transfers');
    await page.click(`a[href="/dashboard/transfers/${transferId}"]`);
    await page.waitForURL(`**/dashboard/transfers/${transferId}`);
    expect(await page.locator('[data-testid=object-event-link]').allTextContents()).toEqual(['Payment.Status']);
    await shots(page, 'transfer');

    expect(problems).toEqual([]);

    const r = await page.goto(`${setup.s.url}/dashboard/intents/${'x'.repeat(300)}`);
    expect(r!.status()).toBe(404);
    expect(await page.textContent('[data-testid=error]')).toContain('There is no intent');
    await shots(page, 'not-found');
    await page.close();
  });

  it("a production key's session sees none of the sandbox's objects", async () => {
    const page = await setup.browser.newPage();
    await page.goto(`${setup.s.url}/dashboard/events`);
    await page.click('#sign-out');
    await page.waitForURL('**/dashboard/sign-in');
    await signInWithKey(page, setup.s.url, setup.keys.production);
    expect(await page.textContent('[data-testid=environment]')).toBe('PRODUCTION');
    for (const nav of ['intents', 'users', 'refunds', 'disputes', 'transfers']) {
      await page.click(`#nav-${nav}`);
      await page.waitForURL(`**/dashboard/${nav}`);
      expect(await page.locator('[data-testid=empty]').count(), nav).toBe(1);
      expect(await page.locator('tbody tr').count(), nav).toBe(0);
    }
    await page.click('#nav-intents');
    await shots(page, 'production-intents');
    const r = await page.goto(`${setup.s.url}/dashboard/intents/${intentId}`);
    expect(r!.status()).toBe(404);
    expect(await page.textContent('[data-testid=error]')).toContain('in production');
    await page.close();
  });
});
