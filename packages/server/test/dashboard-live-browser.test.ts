/**
 * The events list updating live in a real headless Chromium (htmx and its SSE extension, served by the dashboard
 * itself under its Content-Security-Policy): an event made through the API while the page is open appears without a
 * reload; a type filter keeps applying to what arrives; a pending delivery's status turns to succeeded once a worker
 * delivers it; the time window filters; an earlier page does not update. Screenshots at 1280 and 390 px.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { newUser, payThroughPage } from './helpers.js';
import { shot, useBrowserSetup } from './dashboard-kit.js';

const setup = useBrowserSetup('Live Co', 'cw-dashboard-live-');

const eventIds = (page: Page) => page.locator('[data-testid=event-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event-id')));

describe('the live events list in Chromium', () => {
  it('shows a new event without a reload, keeps the filter, and moves a delivery from pending to succeeded', async () => {
    const userId = await newUser(setup.api);
    const { page, problems } = await setup.signedIn();
    expect(await page.textContent('[data-testid=live-note]')).toContain('live');
    const before = await eventIds(page);

    // A payment made while the page is open: its event appears, pending its delivery.
    setup.rx.setResponder(() => ({ status: 200, body: 'ok' }));
    const { intent } = await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 2500, webhook_url: `${setup.rx.url}/live` });
    const ev = (await setup.api.get(`/events?intent_id=${intent.id}`)).body.data[0];
    await expect.poll(() => eventIds(page), { timeout: 15_000 }).toContain(ev.id);
    expect((await eventIds(page)).length).toBeGreaterThan(before.length);
    const row = page.locator(`[data-event-id="${ev.id}"]`);
    expect(await row.locator('[data-testid=delivery-summary]').textContent()).toBe('pending');
    await shot(page, 'events-live', 1280);

    // A worker delivers it: the row turns to succeeded, still without a reload.
    const worker = setup.harness.make();
    expect(await worker.tick()).toBeGreaterThan(0);
    await expect.poll(() => row.locator('[data-testid=delivery-summary]').textContent(), { timeout: 15_000 }).toBe('succeeded');

    // With a type filter, an event of another type does not come in; one of that type does.
    await page.fill('#type', 'intent.canceled');
    await page.click('#filter');
    await page.waitForURL((u) => u.searchParams.get('type') === 'intent.canceled');
    const shown = await eventIds(page);
    await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 300 });
    const { intent: canceled } = await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 400 }, 'cancel');
    const cancelEv = (await setup.api.get(`/events?intent_id=${canceled.id}&type=intent.canceled`)).body.data[0];
    expect(cancelEv).toBeDefined();
    await expect.poll(() => eventIds(page), { timeout: 15_000 }).toContain(cancelEv.id);
    const types = await page.locator('[data-testid=event-link]').allTextContents();
    expect(types.every((t) => t === 'intent.canceled')).toBe(true);
    expect((await eventIds(page)).length).toBe(shown.length + 1);

    await shot(page, 'events-live', 390);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('filters by a time window (UTC) and says a bad one is bad', async () => {
    const userId = await newUser(setup.api);
    await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount: 100 });
    const { page, problems } = await setup.signedIn();
    const all = await eventIds(page);
    expect(all.length).toBeGreaterThan(0);
    const now = setup.s.clock.now();
    const local = (d: Date) => d.toISOString().slice(0, 19);
    // A window in the future holds nothing; one around now holds them all.
    await page.fill('#from', local(new Date(now.getTime() + 3_600_000)));
    await page.click('#filter');
    await page.waitForURL((u) => u.searchParams.has('from'));
    expect(await page.locator('[data-testid=no-events]').count()).toBe(1);
    await page.fill('#from', local(new Date(now.getTime() - 3_600_000)));
    await page.fill('#to', local(new Date(now.getTime() + 3_600_000)));
    await page.click('#filter');
    await page.waitForURL((u) => u.searchParams.has('to') && !u.searchParams.get('from')!.startsWith(local(new Date(now.getTime() + 3_600_000)).slice(0, 13)));
    expect((await eventIds(page)).length).toBe(all.length);
    // To before from: an error page, not a 500.
    const r = await page.goto(`${setup.s.url}/dashboard/events?from=2026-01-02T00:00&to=2026-01-01T00:00`);
    expect(r!.status()).toBe(400);
    expect(await page.textContent('[data-testid=error]')).toContain('before');
    problems.length = 0; // that 400 was asked for
    expect(problems).toEqual([]);
    await page.close();
  });
});
