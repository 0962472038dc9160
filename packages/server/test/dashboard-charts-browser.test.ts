/**
 * The charts in a real headless Chromium: an hour of attempt history (written into the attempt log: outcomes and
 * latencies that vary by minute) plus two deliveries through a real worker to a real receiver, and queue samples
 * taken by the sampler; the page draws three Chart.js charts with one point per minute (read back from the Chart.js
 * instances themselves), refreshes on its timer (the page's clock run forward: no sleeping), switches to 6 h, and
 * says "No deliveries in this window" for production; a refresh that fails (a 500, a dropped connection) says so and
 * the next one draws; the refresh stops on pagehide and starts again (once) on a pageshow from the back/forward cache.
 * Screenshots at 1280 and 390 px to /tmp/dashboard-shots/.
 */
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { sampleQueue } from '../src/delivery/stats.js';
import { newUser, payThroughPage } from './helpers.js';
import { openPage, shots as shotsOf, signInWithKey, useBrowserSetup } from './dashboard-kit.js';

const MIN = 60_000;
const setup = useBrowserSetup('Acme <Charts> & Co', 'cw-charts-');
let endpointId: string;
let seeded = 0;

const q = (sql: string, params: unknown[] = []) => setup.s.running.deps.db.query(sql, params);

/** `count` deliveries of the endpoint made `agoMin` minutes ago, each with one attempt of `outcome`, or pending. */
async function history(agoMin: number, count: number, outcome: string | 'pending', latency: (k: number) => number): Promise<void> {
  const t = new Date(setup.s.clock.now().getTime() - agoMin * MIN);
  for (let k = 0; k < count; k++) {
    const n = ++seeded;
    await q(`INSERT INTO events (operator_id, environment, id, type, data, created_at) VALUES ($1, 'sandbox', $2, 'intent.approved', '{}', $3)`, [setup.keys.id, `evt_seed${n}`, t]);
    await q(`INSERT INTO deliveries (operator_id, id, environment, event_id, endpoint_id, lane, url, format, payload_version, status, next_attempt_at, created_at)
             VALUES ($1, $2, 'sandbox', $3, $4, 'ep:' || $4, 'https://hooks.example/x', 'pushcash', '2024-05', $5, $6, $6)`,
    [setup.keys.id, `dlv_seed${n}`, `evt_seed${n}`, endpointId, outcome === 'pending' ? 'pending' : outcome === 'retry' ? 'pending' : outcome, new Date(t.getTime() + 10 * MIN)]);
    if (outcome !== 'pending') {
      // Within the minute of `t`, whatever the second `t` is: no attempt spills into the next bucket (past the window).
      await q(`INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, outcome) VALUES ($1, $2, 1, 'seed', $3, $4, $5)`,
        [setup.keys.id, `dlv_seed${n}`, new Date(Math.floor(t.getTime() / MIN) * MIN + 1_000 + k * 500), latency(k), outcome]);
    }
  }
}

beforeAll(async () => {
  endpointId = (await setup.api.post('/webhook/endpoints', { url: `${setup.rx.url}/ep`, events: ['*'] })).body.id;
  // An hour of history, minute by minute, sampled as it goes: a backlog that builds up and drains.
  const start = setup.s.clock.now().getTime();
  setup.s.clock.set(start - 59 * MIN);
  for (let m = 59; m >= 1; m--) {
    const wave = Math.round(6 + 5 * Math.sin(m / 6));
    await history(0, wave, 'succeeded', (k) => 20 + ((k * 37 + m * 11) % 60));
    if (m % 4 === 0) await history(0, 2, 'retry', () => 900 + m * 10);
    if (m % 9 === 0) await history(0, 1, 'failed', () => 1500);
    if (m % 17 === 0) await history(0, 1, 'expired', () => 0);
    if (m > 20 && m < 40) await history(0, 3, 'pending', () => 0);
    if (m === 20) await q(`UPDATE deliveries SET status = 'succeeded' WHERE operator_id = $1 AND status = 'pending' AND id LIKE 'dlv_seed%'`, [setup.keys.id]);
    await sampleQueue(setup.s.running.deps.db, setup.s.clock.now());
    setup.s.clock.advance(MIN);
  }
  setup.s.clock.set(start);
  // What the history left pending is done (no worker may try its made-up URL).
  await q(`UPDATE deliveries SET status = 'succeeded' WHERE operator_id = $1 AND status = 'pending' AND id LIKE 'dlv_seed%'`, [setup.keys.id]);
  // And two real deliveries now, through a worker, to the receiver.
  const userId = await newUser(setup.api);
  for (const amount of [100, 200]) await payThroughPage(setup.s, setup.api, { direction: 'cash_in', user_id: userId, amount });
  const w = setup.harness.make();
  let n = 0;
  for (let k; (k = await w.tick()) > 0;) n += k;
  expect(n).toBe(2);
  await sampleQueue(setup.s.running.deps.db, setup.s.clock.now());
});

/** Screenshots at 1280 and 390 px, each once the visible chart has been resized to fit the width. */
const shots = (page: Page, name: string) => shotsOf(page, name, {
  ready: () => expect.poll(() => page.evaluate(() => {
    const c = document.querySelector('canvas:not([hidden])') as HTMLCanvasElement | null;
    return !c || c.getBoundingClientRect().width <= document.documentElement.clientWidth;
  })).toBe(true),
});

/** What each Chart.js instance on the page holds: its type, its datasets (label, number of points, sum). */
function drawn(page: Page) {
  return page.evaluate(() => {
    const Chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): any } }).Chart;
    return [...document.querySelectorAll('canvas')].map((c) => {
      const ch = Chart.getChart(c as HTMLCanvasElement);
      return {
        id: c.id,
        points: c.getAttribute('data-points'),
        labels: ch ? ch.data.labels.length : 0,
        sets: ch ? ch.data.datasets.map((d: any) => ({ label: d.label, n: d.data.length, sum: d.data.reduce((a: number, b: number | null) => a + (b ?? 0), 0) })) : [],
        width: c.getBoundingClientRect().width,
      };
    });
  });
}

describe('the charts in Chromium', () => {
  it('draws outcomes, latency and queue depth with one point per minute, refreshes, and fits 390 px', async () => {
    const { page, problems } = await openPage(setup.browser);
    await page.clock.install();
    await signInWithKey(page, setup.s.url, setup.keys.sandbox);
    await page.click('#nav-charts');
    await page.waitForURL('**/dashboard/charts');
    await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe('1');
    const charts = await drawn(page);
    expect(charts.map((c) => c.id)).toEqual(['chart-outcomes', 'chart-latency', 'chart-queue']);
    for (const c of charts) {
      expect(c.points).toBe('60');
      expect(c.labels).toBe(60);
      for (const d of c.sets) expect(d.n).toBe(60);
    }
    const [outcomes, latency, queue] = charts;
    expect(outcomes!.sets.map((d) => d.label)).toEqual(['succeeded', 'retry', 'failed', 'expired', 'held']);
    const api1 = (await setup.api.get('/webhook/stats')).body;
    const sumOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(outcomes!.sets.map((d) => d.sum)).toEqual(['succeeded', 'retry', 'failed', 'expired', 'held'].map((o) => sumOf(api1.attempts[o])));
    expect(outcomes!.sets[0]!.sum).toBeGreaterThan(300);
    expect(latency!.sets.map((d) => d.label)).toEqual(['p50', 'p99']);
    expect(queue!.sets.map((d) => d.label)).toEqual(['pending', 'due']);
    expect(queue!.sets[0]!.sum).toBeGreaterThan(0);
    expect(await page.isVisible('[data-testid=chart-outcomes-empty]')).toBe(false);
    await shots(page, 'charts');

    // At 390 px: no canvas wider than the page. First the charts are redrawn at 1280 (the screenshots end there): a
    // resize to 1280 still on its way (Chart.js redraws on the next animation frame) would otherwise land after the
    // canvases were seen to fit 390 (from the 390 screenshot) and make the page 1050 px wide again.
    await expect.poll(async () => (await drawn(page)).every((c) => c.width > 390)).toBe(true);
    await page.setViewportSize({ width: 390, height: 900 });
    await expect.poll(async () => (await drawn(page)).every((c) => c.width > 200 && c.width <= 390)
      && await page.evaluate(() => document.documentElement.scrollWidth) <= 390).toBe(true);
    await page.setViewportSize({ width: 1280, height: 900 });

    // New attempts arrive; the page's refresh timer (20 s, on the page's clock) draws them.
    await history(0, 25, 'failed', () => 3000);
    await page.clock.runFor(21_000);
    await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe('2');
    const after = await drawn(page);
    expect(after[0]!.sets[2]!.sum).toBe(outcomes!.sets[2]!.sum + 25);

    // The 6-hour window: a select change submits the form; 72 five-minute buckets.
    await page.selectOption('#window', '6h');
    await page.waitForURL((u) => u.searchParams.get('window') === '6h');
    await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe('1');
    expect((await drawn(page)).map((c) => c.labels)).toEqual([72, 72, 72]);
    // One endpoint: the seeded history is the endpoint's, the two real deliveries too.
    await page.selectOption('#endpoint', endpointId);
    await page.waitForURL((u) => u.searchParams.get('endpoint') === endpointId);
    await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe('1');
    expect((await drawn(page))[0]!.sets[0]!.sum).toBe(outcomes!.sets[0]!.sum);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('says "No deliveries in this window" for an environment without any', async () => {
    const { page, problems } = await setup.signedIn(setup.keys.production);
    await page.goto(`${setup.s.url}/dashboard/charts`);
    await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe('1');
    expect(await page.isVisible('[data-testid=chart-outcomes-empty]')).toBe(true);
    expect(await page.textContent('[data-testid=chart-outcomes-empty]')).toBe('No deliveries in this window.');
    expect(await page.isVisible('#chart-outcomes')).toBe(false);
    expect(await page.isVisible('#chart-latency')).toBe(false);
    // The queue was sampled (nothing pending in production): a flat line at zero, not "no samples".
    expect(await page.isVisible('#chart-queue')).toBe(true);
    await shots(page, 'charts-empty');
    expect(problems).toEqual([]);
    await page.close();
  });
  it('keeps refreshing after a failed refresh, says so until one succeeds, starts again on a back/forward pageshow, stops signed out', async () => {
    const { page, problems } = await openPage(setup.browser);
    await page.clock.install();
    await signInWithKey(page, setup.s.url, setup.keys.sandbox);
    // Every fetch of the series, counted as the page makes it (before it is answered).
    let fetched = 0;
    await page.route('**/dashboard/charts/data?*', (route) => {
      fetched++;
      return route.continue();
    });
    await page.goto(`${setup.s.url}/dashboard/charts`);
    await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe('1');
    expect(fetched).toBe(1);
    const failedSum = async () => (await drawn(page))[0]!.sets[2]!.sum;
    const before = await failedSum();
    expect(await page.isVisible('[data-testid=charts-retry]')).toBe(false);

    // The next refresh is answered 500, the one after it never reaches the server (a dropped connection).
    await page.route('**/dashboard/charts/data?*', (route) => {
      fetched++;
      return route.fulfill({ status: 500, contentType: 'text/html', body: '<!doctype html><p>down</p>' });
    }, { times: 1 });
    await page.clock.runFor(21_000);
    await expect.poll(() => page.getAttribute('#charts', 'data-failed')).toBe('1');
    expect(await page.isVisible('[data-testid=charts-retry]')).toBe(true);
    expect(await page.textContent('[data-testid=charts-retry]')).toBe('Could not refresh; retrying.');
    await shots(page, 'charts-retrying');
    await page.route('**/dashboard/charts/data?*', (route) => {
      fetched++;
      return route.abort('connectionreset');
    }, { times: 1 });
    await page.clock.runFor(21_000);
    await expect.poll(() => page.getAttribute('#charts', 'data-failed')).toBe('2');
    expect([await page.getAttribute('#charts', 'data-drawn'), await page.getAttribute('#charts', 'data-stopped'), fetched]).toEqual(['1', null, 3]);

    // The next tick succeeds: it draws what arrived meanwhile, and the note goes.
    await history(0, 4, 'failed', () => 2500);
    await page.clock.runFor(21_000);
    await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe('2');
    expect(await failedSum()).toBe(before + 4);
    expect(await page.isVisible('[data-testid=charts-retry]')).toBe(false);
    expect(fetched).toBe(4);

    // Put away (pagehide): no refresh, however long. A pageshow that is not a restore (persisted false) starts nothing.
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true })));
    await page.clock.runFor(120_000);
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: false })));
    await page.clock.runFor(60_000);
    expect([await page.getAttribute('#charts', 'data-drawn'), fetched]).toEqual(['2', 4]);
    // Restored from the back/forward cache (twice in a row, even): it draws at once, then refreshes on one timer.
    await page.evaluate(() => {
      window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }));
      window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }));
    });
    await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe('3');
    expect(fetched).toBe(6); // one per pageshow; the first one's answer is not drawn
    for (const k of [4, 5]) {
      await page.clock.runFor(21_000);
      await expect.poll(() => page.getAttribute('#charts', 'data-drawn')).toBe(String(k));
      expect(fetched).toBe(k + 3); // one fetch a tick: no timers piled up
    }
    // Signed out meanwhile: the refresh lands on the sign-in page, stops, and says why.
    await setup.browser.clearCookies();
    await page.clock.runFor(21_000);
    await expect.poll(() => page.getAttribute('#charts', 'data-stopped')).toBe('1');
    expect(await page.textContent('[data-testid=charts-retry]')).toBe('Signed out: reload the page to sign in again.');
    await page.clock.runFor(60_000);
    expect([await page.getAttribute('#charts', 'data-drawn'), fetched]).toEqual(['5', 9]);
    // The 500 it was answered once is the only problem.
    expect(problems.filter((p) => !(p.startsWith('500 ') && p.includes('/dashboard/charts/data')))).toEqual([]);
    expect(problems).toHaveLength(1);
    await page.close();
  });
});
