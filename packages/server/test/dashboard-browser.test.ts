/**
 * The dashboard in a real headless Chromium, real clicks: sign in with a key, see an event in the list, filter by
 * type, open it, see its delivery's failed attempt (a real receiver answering 500), Resend, see the second attempt
 * succeed, sign out. Then the endpoints page (create with the secret shown once, disable, enable) and the sandbox clock
 * (advance, a retry coming due). Screenshots at 1280 and 390 px go to /tmp/dashboard-shots/.
 */
import { describe, expect, it } from 'vitest';
import { newUser, payThroughPage } from './helpers.js';
import { openPage, shots, useBrowserSetup } from './dashboard-kit.js';

const setup = useBrowserSetup('Acme <Casino> & Co', 'cw-dashboard-');

describe('the dashboard in Chromium', () => {
  it('signs in, lists and filters events, shows the attempts of a failed delivery, resends, signs out', async () => {
    const userId = await newUser(setup.api);
    // An event of another type, for the filter to leave out.
    await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 100 }, 'cancel');
    // A payment whose webhook fails once (500), as seen by a real receiver.
    setup.rx.setResponder(() => ({ status: 500, body: 'receiver down' }));
    const { intent } = await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 4200, webhook_url: `${setup.rx.url}/hook`, tag: 'order-77' });
    const worker = setup.harness.make();
    expect(await worker.tick()).toBe(1);
    expect(setup.rx.received).toHaveLength(1);
    const ev = (await setup.api.get(`/events?intent_id=${intent.id}`)).body.data[0];

    const { page, problems } = await openPage(setup.browser);
    // The layout's icon loads, and no request for /favicon.ico fails (watch() leaves /favicon.ico out, so: here).
    // Checked on this profile's first page: Chromium keeps an icon it has, and does not ask for it again.
    const icon: number[] = [];
    const favicon: string[] = [];
    page.on('response', (r) => {
      const p = new URL(r.url()).pathname;
      if (p === '/dashboard/assets/icon.svg') icon.push(r.status());
      if (p === '/favicon.ico' && r.status() >= 400) favicon.push(`${r.status()} ${r.url()}`);
    });
    page.on('requestfailed', (r) => {
      if (new URL(r.url()).pathname === '/favicon.ico') favicon.push(`failed ${r.url()}`);
    });
    await page.goto(`${setup.s.url}/dashboard/events`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
    await expect.poll(() => icon).toContain(200);

    // A wrong key first: the form again, with an error.
    await page.fill('#key', 'cw_sk_test_wrong');
    await page.click('#sign-in');
    await expect.poll(() => page.textContent('[data-testid=error]')).toContain('not valid');
    problems.length = 0; // the 401 of the wrong key was expected
    await shots(page, 'sign-in-error');

    await page.fill('#key', setup.keys.sandbox);
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
    setup.rx.setResponder(() => ({ status: 200, body: 'ok' }));
    await page.click('#resend');
    await page.waitForURL((u) => u.searchParams.get('resent') === '1');
    expect(await page.textContent('[data-testid=notice]')).toContain('Resent');
    expect(await worker.tick()).toBe(1);
    expect(setup.rx.received).toHaveLength(2);
    await page.reload();
    expect(await page.textContent('[data-testid=delivery-status]')).toBe('succeeded');
    expect(await attempts.count()).toBe(2);
    expect(await attempts.nth(1).textContent()).toContain('HTTP 200');
    await shots(page, 'event-resent');

    // Sign out: back to the form; the events page is out of reach again.
    await page.click('#sign-out');
    await page.waitForURL('**/dashboard/sign-in');
    await page.goto(`${setup.s.url}/dashboard/events`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
    expect(problems).toEqual([]);
    expect(favicon).toEqual([]);
    await page.close();
  });

  it('creates an endpoint and sees its secret once, disables and enables it, advances the clock', async () => {
    const { page, problems } = await setup.signedIn();
    await page.click('#nav-endpoints');
    await page.waitForURL('**/dashboard/endpoints');

    await page.fill('#ep-url', `${setup.rx.url}/endpoint-hook`);
    await page.fill('#ep-events', 'intent.approved, intent.declined');
    await page.selectOption('#ep-format', 'standard');
    await page.click('#create-endpoint');
    await page.waitForSelector('[data-testid=secret]');
    const secret = (await page.textContent('[data-testid=secret]'))!;
    expect(secret).toMatch(/^whsec_/);
    expect(await page.textContent('[data-testid=notice]')).toContain('added');
    const row = page.locator('[data-testid=endpoint-row]', { hasText: `${setup.rx.url}/endpoint-hook` });
    expect(await row.count()).toBe(1);
    expect(await row.textContent()).toContain('intent.approved');
    await shots(page, 'endpoints-created');
    // Once: the list, loaded again, does not show it.
    await page.click('#nav-endpoints');
    await page.waitForURL('**/dashboard/endpoints');
    expect(await page.locator('[data-testid=secret]').count()).toBe(0);
    expect(await page.content()).not.toContain(secret);

    await row.locator('[data-testid=disable]').click();
    await page.waitForURL((u) => u.searchParams.get('done') === 'disabled');
    expect(await row.locator('[data-testid=endpoint-status]').textContent()).toBe('disabled');
    expect(await row.locator('[data-testid=disabled-reason]').textContent()).toContain('operator');
    await shots(page, 'endpoints');
    await row.locator('[data-testid=enable]').click();
    await page.waitForURL((u) => u.searchParams.get('done') === 'enabled');
    expect(await row.locator('[data-testid=endpoint-status]').textContent()).toBe('enabled');

    // The clock: a payment whose webhook fails waits for its retry; advancing from the page makes it due.
    const userId = await newUser(setup.api);
    setup.rx.setResponder(() => ({ status: 500, body: 'down' }));
    await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 700, webhook_url: `${setup.rx.url}/clock-hook` });
    const worker = setup.harness.make();
    const received = setup.rx.received.length;
    expect(await worker.tick()).toBeGreaterThan(0);
    expect(setup.rx.received.length).toBeGreaterThan(received);
    expect(await worker.tick()).toBe(0); // the retry is not due yet
    setup.rx.setResponder(() => ({ status: 200, body: 'ok' }));
    await page.click('#nav-clock');
    await page.waitForURL('**/dashboard/clock');
    const total = (await page.textContent('[data-testid=clock-total]'))!;
    await page.fill('#duration', '1h');
    await page.click('#advance');
    await page.waitForSelector('[data-testid=advanced]');
    expect(await page.textContent('[data-testid=advanced] h2')).toContain('Advanced by 1h');
    expect(Number(await page.textContent('[data-testid=moved-deliveries]'))).toBeGreaterThan(0);
    expect(await page.textContent('[data-testid=clock-total]')).not.toBe(total);
    await shots(page, 'clock');
    const n = setup.rx.received.length;
    expect(await worker.tick()).toBeGreaterThan(0);
    expect(setup.rx.received.length).toBeGreaterThan(n);
    expect(problems).toEqual([]);
    await page.close();
  });
});
