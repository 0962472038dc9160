/**
 * The endpoints pages in a real headless Chromium, real clicks: create an endpoint and see its secret once (loaded
 * again: gone), open it, edit it, reveal its secret, send a test event and see it delivered (its event page opened from
 * the link shown after sending, the request verified with the SDK), recover a failed delivery; a stuck fifo endpoint's
 * head in the list. Screenshots at 1280 and 390 px go to /tmp/dashboard-shots/endpoint-*.
 */
import { verify } from '@cashwire/webhooks';
import { describe, expect, it } from 'vitest';
import { shots, useBrowserSetup } from './dashboard-kit.js';

const setup = useBrowserSetup('Endpoint <Browser> & Co', 'cw-dashboard-endpoints-');

describe('the endpoints pages in Chromium', () => {
  it('creates, edits, reveals, sends a test event and sees it delivered, recovers', async () => {
    const worker = setup.harness.make();
    const { page, problems } = await setup.signedIn();
    await page.click('#nav-endpoints');
    await page.waitForURL('**/dashboard/endpoints');

    // Create: the secret once.
    await page.fill('#ep-url', `${setup.rx.url}/browser-hook`);
    await page.fill('#ep-events', 'intent.approved');
    await page.selectOption('#ep-format', 'standard');
    await page.click('#create-endpoint');
    await page.waitForSelector('[data-testid=secret]');
    const secret = (await page.textContent('[data-testid=secret]'))!;
    expect(secret).toMatch(/^whsec_/);
    await shots(page, 'endpoint-created');
    await page.goto(`${setup.s.url}/dashboard/endpoints`);
    await page.reload();
    expect(await page.locator('[data-testid=secret]').count()).toBe(0);
    expect(await page.content()).not.toContain(secret);

    // Open it.
    const row = page.locator('[data-testid=endpoint-row]', { hasText: `${setup.rx.url}/browser-hook` });
    const id = (await row.getAttribute('data-endpoint-id'))!;
    await row.locator('[data-testid=manage]').click();
    await page.waitForURL(`**/dashboard/endpoints/${id}`);
    expect(await page.textContent('[data-testid=endpoint-id]')).toBe(id);
    expect(await page.inputValue('#edit-url')).toBe(`${setup.rx.url}/browser-hook`);

    // Edit: an error first (the form again, with it), then a good change.
    await page.fill('#edit-url', 'ftp://nope.example/x');
    await page.click('#save-endpoint');
    await page.waitForSelector('[data-testid=edit-error]');
    expect(await page.textContent('[data-testid=edit-error]')).toContain('http or https');
    expect(await page.inputValue('#edit-url')).toBe('ftp://nope.example/x');
    problems.length = 0; // the 400 was expected
    await shots(page, 'endpoint-edit-error');
    await page.fill('#edit-url', `${setup.rx.url}/browser-hook-2`);
    await page.fill('#edit-events', 'intent.approved, refund.approved');
    await page.click('#save-endpoint');
    await page.waitForURL((u) => u.searchParams.get('done') === 'edited');
    expect(await page.textContent('[data-testid=notice]')).toContain('Saved');
    expect(await page.inputValue('#edit-url')).toBe(`${setup.rx.url}/browser-hook-2`);
    expect((await setup.api.get(`/webhook/endpoints/${id}`)).body.events).toEqual(['intent.approved', 'refund.approved']);

    // Reveal: on an explicit click, on its own page.
    expect(await page.content()).not.toContain(secret);
    await page.click('#reveal');
    await page.waitForURL(`**/dashboard/endpoints/${id}/secret`);
    expect(await page.textContent('[data-testid=secret]')).toBe(secret);
    expect(await page.textContent('[data-testid=secret-card]')).toContain('Anyone with this secret');
    await shots(page, 'endpoint-secret');
    await page.goto(`${setup.s.url}/dashboard/endpoints/${id}`);

    // A test event: sent, delivered by a worker, its event page opened from the link shown.
    await page.selectOption('#test-type', 'refund.approved');
    await page.click('#send-test');
    await page.waitForSelector('[data-testid=test-event-link]');
    expect(await page.textContent('[data-testid=notice]')).toContain('refund.approved');
    expect(await page.inputValue('#test-type')).toBe('refund.approved');
    await shots(page, 'endpoint-test-sent');
    expect(await worker.tick()).toBe(1);
    const got = setup.rx.received.find((r) => r.path === '/browser-hook-2')!;
    expect(got).toBeTruthy();
    const event = await verify('standard', { body: got.body, headers: got.headers as Record<string, string>, secrets: secret, now: setup.s.clock.now() });
    expect(event.type).toBe('refund.approved');
    await page.click('[data-testid=test-event-link]');
    await page.waitForURL('**/dashboard/events/evt_*');
    expect(await page.textContent('[data-testid=event-type]')).toBe('refund.approved');
    expect(await page.textContent('[data-testid=event-data]')).toContain('refund_test_');
    expect(await page.textContent('[data-testid=delivery-status]')).toBe('succeeded');
    expect(await page.textContent('[data-testid=attempt]')).toContain('HTTP 200');
    await shots(page, 'endpoint-test-event');

    // Recover: a delivery that ended failed (one attempt allowed, a 500) is sent again from the form's default window.
    await setup.api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 1 } } });
    setup.rx.setResponder(() => ({ status: 500, body: 'down' }));
    const failed = await setup.api.post(`/webhook/endpoints/${id}/test`, { type: 'intent.approved' });
    expect(await worker.tick()).toBe(1);
    expect((await setup.api.get(`/events/${failed.body.event_id}`)).body.deliveries[0].status).toBe('expired');
    await setup.api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 10 } } });
    setup.rx.setResponder(() => ({ status: 200, body: 'ok' }));
    await page.goto(`${setup.s.url}/dashboard/endpoints/${id}`);
    // A bad window first.
    const since = await page.inputValue('#recover-since');
    const until = await page.inputValue('#recover-until');
    await page.fill('#recover-since', until);
    await page.fill('#recover-until', since);
    await page.click('#recover');
    await page.waitForSelector('[data-testid=recover-error]');
    expect(await page.textContent('[data-testid=recover-error]')).toContain('since must be before until');
    problems.length = 0;
    await page.fill('#recover-since', since);
    await page.fill('#recover-until', until);
    await page.click('#recover');
    await page.waitForURL((u) => u.searchParams.get('recovered') === '1');
    expect(await page.textContent('[data-testid=notice]')).toContain('Recovered: 1 delivery');
    await shots(page, 'endpoint-recovered');
    const n = setup.rx.received.length;
    expect(await worker.tick()).toBe(1);
    expect(setup.rx.received.length).toBe(n + 1);
    expect(JSON.parse(setup.rx.received.at(-1)!.body).type).toBe('intent.approved');

    // A stuck fifo endpoint: its head in the list's health.
    const fifo = await setup.api.post('/webhook/endpoints', { url: `${setup.rx.url}/fifo-stuck`, events: ['*'], format: 'pushcash', ordering: 'fifo' });
    setup.rx.setResponder((r) => (r.path === '/fifo-stuck' ? { status: 503, body: 'busy' } : { status: 200 }));
    const head = await setup.api.post(`/webhook/endpoints/${fifo.body.id}/test`, { type: 'intent.approved' });
    await setup.api.post(`/webhook/endpoints/${fifo.body.id}/test`, { type: 'intent.settled' });
    await worker.tick();
    await page.click('#nav-endpoints');
    await page.waitForURL('**/dashboard/endpoints');
    const fifoRow = page.locator('[data-testid=endpoint-row]', { hasText: `${setup.rx.url}/fifo-stuck` });
    const headText = (await fifoRow.locator('[data-testid=fifo-head]').textContent())!;
    expect(headText).toContain(head.body.event_id);
    expect(headText).toContain('1 attempt');
    expect(headText).toContain('last HTTP 503');
    await shots(page, 'endpoint-list');
    expect(problems).toEqual([]);
    await page.close();
  });
});
