/**
 * The event page in a real headless Chromium, real clicks: a delivery that failed (500 with headers of the receiver's
 * own), its attempt expanded (the request as sent with its signature header, the answer's headers and excerpt),
 * Retry now (due at once, a worker tick delivers it), then Resend (a new delivery). Screenshots at 1280 and 390 px go
 * to /tmp/dashboard-shots/event-detail-*.png; at 390 px nothing is wider than the screen.
 */
import { describe, expect, it } from 'vitest';
import { newUser, payThroughPage } from './helpers.js';
import { shots, useBrowserSetup } from './dashboard-kit.js';

const setup = useBrowserSetup('Acme & Co', 'cw-event-');

describe('the event page in Chromium', () => {
  it('shows a failed attempt in detail, retries it now, then resends the event', async () => {
    const ep = (await setup.api.post('/webhook/endpoints', {
      url: `${setup.rx.url}/hooks/a-rather-long-path/that-has-to-wrap-on-a-phone?tenant=acme-casino-production-eu-west-1&verbose=true`, events: ['intent.approved'],
    })).body as { id: string; secret: string };
    setup.rx.setResponder(() => ({
      status: 500,
      headers: { 'x-debug-id': 'dbg-7f3a9c', 'x-long-header': 'a-very-long-header-value-without-any-spaces-'.repeat(6), 'retry-after': '120' },
      body: Buffer.concat([Buffer.from('{"error":"database is down","trace":"'), Buffer.from([0x00, 0xff]), Buffer.from('"}')]),
    }));
    const { intent } = await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: await newUser(setup.api), amount: 4200 });
    const ev = (await setup.api.get(`/events?intent_id=${intent.id}`)).body.data[0] as { id: string };
    const worker = setup.harness.make();
    expect(await worker.tick()).toBe(1);
    expect(setup.rx.received).toHaveLength(1);

    const { page, problems } = await setup.signedIn();
    await page.goto(`${setup.s.url}/dashboard/events/${ev.id}`);
    expect(await page.textContent('[data-testid=delivery-status]')).toBe('pending');
    const attempts = page.locator('[data-testid=attempt]');
    expect(await attempts.count()).toBe(1);
    expect(await page.textContent('[data-testid=attempt-result]')).toBe('HTTP 500');

    // Collapsed until clicked; then the request as sent and the answer.
    const detail = page.locator('[data-testid=attempt-detail]').first();
    expect(await page.locator('[data-testid=request-headers]').first().isVisible()).toBe(false);
    await detail.locator('summary').click();
    await expect.poll(() => page.locator('[data-testid=request-headers]').first().isVisible()).toBe(true);
    const sent = setup.rx.received[0]!;
    const reqHeaders = await page.locator('[data-testid=request-headers]').first().textContent();
    expect(reqHeaders).toContain('x-webhook-signature');
    expect(reqHeaders).toContain(String(sent.headers['x-webhook-signature']));
    expect(reqHeaders).not.toContain(ep.secret);
    expect(await page.textContent('[data-testid=request-body]')).toBe(JSON.stringify(JSON.parse(sent.body), null, 2));
    expect(await page.textContent('[data-testid=response-headers]')).toContain('dbg-7f3a9c');
    expect(await page.textContent('[data-testid=response-excerpt]')).toContain('database is down');
    expect(await page.textContent('[data-testid=excerpt-note]')).toContain('not valid UTF-8');
    await shots(page, 'event-detail-failed', { fits390: true });

    // Retry now: due at once; the receiver is back; a tick delivers it.
    setup.rx.setResponder(() => ({ status: 200, body: 'ok' }));
    await page.click('[data-testid=retry-now]');
    await page.waitForURL((u) => u.searchParams.has('retried'));
    expect(await page.textContent('[data-testid=notice]')).toContain('Retrying now');
    expect(await worker.tick()).toBe(1);
    expect(setup.rx.received).toHaveLength(2);
    await page.reload();
    expect(await page.textContent('[data-testid=delivery-status]')).toBe('succeeded');
    expect(await attempts.count()).toBe(2);
    expect(await attempts.nth(1).locator('[data-testid=attempt-result]').textContent()).toBe('HTTP 200');
    expect(await page.locator('[data-testid=retry-now]').count()).toBe(0);
    await attempts.nth(1).locator('summary').click();
    await expect.poll(() => attempts.nth(1).locator('[data-testid=request-headers]').isVisible()).toBe(true);
    expect(await attempts.nth(1).locator('[data-testid=request-headers]').textContent()).toContain(String(setup.rx.received[1]!.headers['x-webhook-signature']));
    // A success keeps no response headers.
    expect(await attempts.nth(1).locator('[data-testid=response-headers]').count()).toBe(0);
    await shots(page, 'event-detail-retried', { fits390: true });

    // Resend: a new delivery of the same event.
    await page.click('#resend');
    await page.waitForURL((u) => u.searchParams.get('resent') === '1');
    expect(await page.textContent('[data-testid=notice]')).toContain('Resent');
    expect(await page.locator('[data-testid=delivery]').count()).toBe(2);
    expect(await worker.tick()).toBe(1);
    expect(setup.rx.received).toHaveLength(3);
    expect(setup.rx.received[2]!.headers['x-webhook-id']).toBe(setup.rx.received[0]!.headers['x-webhook-id']);
    await page.reload();
    expect(await page.locator('[data-testid=delivery-status]').allTextContents()).toEqual(['succeeded', 'succeeded']);
    expect(problems).toEqual([]);
    await page.close();
  });
});
