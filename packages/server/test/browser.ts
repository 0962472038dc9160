import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium, headless, on a fresh profile (never a downloaded browser). Playwright refuses --user-data-dir in
 * args; a persistent context on a new directory is the same thing. The flags keep Chromium off the network.
 */
export async function launchChromium(prefix = 'cw-chromium-'): Promise<BrowserContext> {
  const profileDir = mkdtempSync(join(tmpdir(), prefix));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.on('close', () => {
    try {
      rmSync(profileDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch {
      /* Chromium may still be writing its profile as it exits; a leftover temp folder is harmless */
    }
  });
  return context;
}

/** Listens on 127.0.0.1, on a free port; resolves with the base URL. */
export function listenOnLoopback(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

/** Page errors, failed requests and console errors, so that a broken script shows up as such. */
export function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    // Chromium asks every origin for a favicon; neither the merchant's site nor Cashwire has one.
    if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') problems.push(`${r.status()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  return problems;
}
