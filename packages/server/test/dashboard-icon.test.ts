/**
 * The icon (assets/dashboard/icon.svg) over HTTP: served as image/svg+xml with the other assets' cache headers, linked
 * from the dashboard's layout (signed in or not) and the landing page, and allowed by each page's
 * Content-Security-Policy; /favicon.ico stays the JSON 404 of every unknown path.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWN_ASSETS } from '../src/api/routes/dashboard/assets.js';
import { newOperator, startTestServer, type Keys, type TestServer } from './helpers.js';
import { dashboardClient } from './dashboard-kit.js';

const ICON = '/dashboard/assets/icon.svg';
const LINK = `<link rel="icon" type="image/svg+xml" href="${ICON}">`;

let s: TestServer;
let keys: Keys;

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s);
});
afterAll(() => s?.stop());

const { get, signIn } = dashboardClient(() => s.url);

/** The sources a CSP directive allows (`img-src 'self' data:` → ["'self'", 'data:']), none when it is absent. */
function sources(csp: string | null, directive: string): string[] {
  const d = (csp ?? '').split(';').map((x) => x.trim().split(/\s+/)).find(([name]) => name === directive);
  return d ? d.slice(1) : [];
}

describe('the dashboard icon', () => {
  it('is served as image/svg+xml, cached like the other assets, the file as it is', async () => {
    const r = await get(ICON);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/svg+xml');
    expect(r.headers.get('cache-control')).toBe((await get('/dashboard/assets/htmx.min.js')).headers.get('cache-control'));
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    const body = await r.text();
    expect(body).toBe(readFileSync(path.join(OWN_ASSETS, 'icon.svg'), 'utf8'));
    expect(body).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    // No other .svg name is served from the assets folder.
    expect((await get('/dashboard/assets/charts.svg')).status).toBe(404);
  });

  it('is linked from the layout, signed in or not, and the dashboard CSP allows it', async () => {
    const { cookie } = await signIn(keys.sandbox);
    for (const [page, c] of [['/dashboard/sign-in', undefined], ['/dashboard/events', cookie], ['/dashboard/charts', cookie]] as const) {
      const r = await get(page, c);
      expect(r.status, page).toBe(200);
      expect(await r.text(), page).toContain(LINK);
      expect(sources(r.headers.get('content-security-policy'), 'img-src'), page).toContain("'self'");
    }
  });

  it('is linked from the landing page, whose CSP allows it', async () => {
    const r = await fetch(`${s.url}/`);
    expect(await r.text()).toContain(LINK);
    expect(sources(r.headers.get('content-security-policy'), 'img-src')).toContain("'self'");
  });

  it('/favicon.ico is still the JSON 404 of an unknown path', async () => {
    const r = await fetch(`${s.url}/favicon.ico`);
    expect(r.status).toBe(404);
    expect((await r.json()).error.code).toBe('route_not_found');
  });
});
