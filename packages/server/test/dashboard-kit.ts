/**
 * What the dashboard's tests share: over HTTP, a client that posts forms and reads pages without following redirects
 * (a 303 is what is being tested) and signs in with a key; in Chromium, the screenshots at 1280 and 390 px, the sign-in
 * through the form, and the usual setup (a server, an operator, a real receiver, workers, a browser). What a single
 * file does differently stays in that file.
 */
import { mkdirSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { client, newOperator, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';
import { launchChromium, watch } from './browser.js';

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;
export type Workers = ReturnType<typeof testWorkers>;

// --- over HTTP ---------------------------------------------------------------------------------------------------

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** The CSRF token of a page's forms (every POST form carries it as a hidden field). */
export const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!;

export type DashboardClient = ReturnType<typeof dashboardClient>;

/**
 * Form POSTs and GETs against the dashboard, redirects not followed. `base` is the server's URL, or a function giving
 * it: a file's server starts in beforeAll, after the top level has made its client.
 */
export function dashboardClient(base: string | (() => string)) {
  const url = (path: string) => (typeof base === 'string' ? base : base()) + path;
  function post(path: string, fields: Record<string, string>, cookie?: string, headers: Record<string, string> = {}) {
    return fetch(url(path), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}), ...headers },
      body: form(fields),
    });
  }
  function get(path: string, cookie?: string) {
    return fetch(url(path), { redirect: 'manual', headers: cookie ? { cookie } : {} });
  }
  /** Signs in with the form (a 303); returns the cookie pair to send back, the Set-Cookie as answered, and where it redirected. */
  async function signIn(key: string): Promise<{ cookie: string; setCookie: string; location: string | null }> {
    const r = await post('/dashboard/sign-in', { key });
    expect(r.status).toBe(303);
    const setCookie = r.headers.get('set-cookie')!;
    return { cookie: setCookie.split(';')[0]!, setCookie, location: r.headers.get('location') };
  }
  return { post, get, signIn, csrfOf };
}

// --- in Chromium -------------------------------------------------------------------------------------------------

export const SHOTS = '/tmp/dashboard-shots';
const DESKTOP = { width: 1280, height: 900 };

export interface ShotChecks {
  /** Awaited at each width before the screenshot: what must settle after the resize (a chart redrawn to the new width). */
  ready?: (page: Page) => Promise<unknown>;
  /** At 390 px, the page must not scroll sideways (asserted, with the screenshot's name as the message). */
  fits390?: boolean;
}

/** One screenshot at `width` (the viewport set to it): /tmp/dashboard-shots/<name>-desktop.png or <name>-390.png. */
export async function shot(page: Page, name: string, width: 1280 | 390, checks: ShotChecks = {}): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.setViewportSize({ width, height: 900 });
  await checks.ready?.(page);
  await page.screenshot({ path: `${SHOTS}/${name}-${width === 1280 ? 'desktop' : '390'}.png`, fullPage: true });
  if (width === 390 && checks.fits390) expect(await page.evaluate(() => document.documentElement.scrollWidth), name).toBeLessThanOrEqual(390);
}

/** Screenshots at 1280 and 390 px, then back to 1280. */
export async function shots(page: Page, name: string, checks: ShotChecks = {}): Promise<void> {
  for (const width of [1280, 390] as const) await shot(page, name, width, checks);
  await page.setViewportSize(DESKTOP);
}

/** A new page, watched for errors (see browser.ts watch), at 1280×900. */
export async function openPage(browser: BrowserContext): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems = watch(page);
  await page.setViewportSize(DESKTOP);
  return { page, problems };
}

/** Signs in through the form, as a person would; the events page is where it lands. */
export async function signInWithKey(page: Page, baseUrl: string, key: string): Promise<void> {
  await page.goto(`${baseUrl}/dashboard/sign-in`);
  await page.fill('#key', key);
  await page.click('#sign-in');
  await page.waitForURL('**/dashboard/events');
}

/** A new page (openPage), signed in through the form with `key`. */
async function signedInPage(browser: BrowserContext, baseUrl: string, key: string): Promise<{ page: Page; problems: string[] }> {
  const opened = await openPage(browser);
  await signInWithKey(opened.page, baseUrl, key);
  return opened;
}

export interface BrowserSetup {
  s: TestServer;
  keys: Keys;
  /** The operator's sandbox key's API client. */
  api: Api;
  rx: Receiver;
  harness: Workers;
  browser: BrowserContext;
  /** A new page (openPage), signed in through the form with `key` (the sandbox key unless told). */
  signedIn(key?: string): Promise<{ page: Page; problems: string[] }>;
  /** Stops all of it (the workers reset first, so that nothing is in flight to the receiver). */
  stop(): Promise<void>;
}

/**
 * What a browser test of the dashboard starts in its beforeAll: a server, an operator named `operatorName`, a real
 * receiver, workers, and Chromium on a fresh profile (`profilePrefix`). Whatever started is stopped again if a later
 * step fails.
 */
export async function startBrowserSetup(operatorName: string, profilePrefix: string): Promise<BrowserSetup> {
  mkdirSync(SHOTS, { recursive: true });
  let s: TestServer | undefined;
  let rx: Receiver | undefined;
  let harness: Workers | undefined;
  let browser: BrowserContext | undefined;
  const stop = async () => {
    await harness?.reset(rx);
    await browser?.close();
    await rx?.close();
    await s?.stop();
  };
  try {
    s = await startTestServer();
    const keys = await newOperator(s, operatorName);
    const api = client(s.url, keys.sandbox);
    rx = await startReceiver();
    harness = testWorkers(s);
    browser = await launchChromium(profilePrefix);
    const started = { s, keys, api, rx, harness, browser, stop };
    return { ...started, signedIn: (key = keys.sandbox) => signedInPage(started.browser, started.s.url, key) };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * startBrowserSetup as a file's beforeAll, its stop() as the file's afterAll: call it at the top level. The object it
 * returns is filled in before the first test (and before the file's own beforeAll, registered after this call).
 */
export function useBrowserSetup(operatorName: string, profilePrefix: string): BrowserSetup {
  const setup = {} as BrowserSetup;
  let started: BrowserSetup | undefined;
  beforeAll(async () => {
    started = await startBrowserSetup(operatorName, profilePrefix);
    Object.assign(setup, started);
  });
  afterAll(() => started?.stop());
  return setup;
}
