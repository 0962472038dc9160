/**
 * The API reference at /docs in a real browser (Debian's Chromium): Swagger UI renders the operations of
 * /openapi.json, and every request the page makes goes to Cashwire itself (no CDN: it works offline). The landing page
 * links to it.
 */
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers.js';
import { launchChromium, watch } from './browser.js';

describe('/docs in Chromium', () => {
  let s: TestServer;
  let browser: BrowserContext;
  beforeAll(async () => {
    s = await startTestServer();
    browser = await launchChromium('cw-docs-');
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('renders the operations from the OpenAPI document, with every request same-origin and no errors', async () => {
    const page = await browser.newPage();
    const problems = watch(page);
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    const csp: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
    });
    // From the landing page, as a newcomer would.
    await page.goto(`${s.url}/`);
    await page.getByRole('link', { name: 'API reference' }).click();
    await page.waitForURL(`${s.url}/docs`);
    const op = page.locator('.opblock-summary', { hasText: '/intent' }).filter({ has: page.locator('.opblock-summary-method', { hasText: 'POST' }) });
    await op.first().waitFor({ timeout: 15_000 });
    const text = await page.locator('#swagger-ui').innerText();
    expect(text).toContain('Cashwire API');
    expect(text).toMatch(/POST\s*\n?\s*\/intent\b/);
    expect(text).toContain('/webhook/endpoints');
    // Open one operation: its schema renders too.
    await op.first().click();
    await page.locator('.opblock-body').first().waitFor();
    const origin = new URL(s.url).origin;
    const elsewhere = requested.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin);
    expect(elsewhere).toEqual([]);
    expect(requested.some((u) => u.endsWith('/docs/json'))).toBe(true);
    expect(requested.some((u) => u.includes('/docs/static/swagger-ui-bundle.js'))).toBe(true);
    expect(problems).toEqual([]);
    expect(csp).toEqual([]);
    await page.close();
  });
});
