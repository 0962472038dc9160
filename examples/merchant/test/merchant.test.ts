/**
 * The example merchant end to end, in headless Chromium: a real Cashwire (API, hosted page, delivery worker) and the
 * merchant with its own database. The merchant sits behind a small gateway (its public URL) that records every
 * webhook exactly as it arrived and can hold webhooks back, so a test decides whether the webhook or the player's
 * redirect reaches the merchant first.
 */
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../packages/server/src/clock.js';
import { ADMIN_URL, client, createTestDatabase, newOperator, startTestServer, type Api, type TestServer } from '../../../packages/server/test/helpers.js';
import { startMerchant } from '../src/app.js';
import { launchChromium } from '../../../packages/server/test/browser.js';

const WEBHOOK_SECRET = 'merchant-test-webhook-secret-0123456789';
const SCREENSHOTS = fileURLToPath(new URL('../screenshots/', import.meta.url));

// The button's colours (packages/button): royal, navy, white and the white style's border.
const ROYAL = 'rgb(29, 78, 216)';
const NAVY = 'rgb(11, 31, 68)';
const WHITE = 'rgb(255, 255, 255)';
const WHITE_BORDER = 'rgb(135, 146, 162)';

/** A webhook request as it reached the gateway, and the merchant's answer once it has one. */
interface Hook {
  body: Buffer;
  headers: http.IncomingHttpHeaders;
  type: string;
  intentId: string;
  status?: number;
  answer?: { received?: boolean; duplicate?: boolean; error?: string };
}

/** The JSON in `bytes`, or undefined when they are not JSON. */
function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The merchant's public address: forwards everything; records webhooks; holds them while `hold` is on. */
async function startGateway() {
  const hooks: Hook[] = [];
  let target = '';
  let hold = false;
  let held: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let hook: Hook | undefined;
      if (req.method === 'POST' && req.url === '/webhooks/cashwire') {
        const json = parseJson(body) as { type?: string; data?: { id?: string } } | undefined;
        hook = { body, headers: req.headers, type: String(json?.type), intentId: String(json?.data?.id) };
        hooks.push(hook);
        if (hold) await new Promise<void>((resolve) => held.push(resolve));
      }
      const up = http.request(target + req.url, { method: req.method, headers: req.headers }, (ur) => {
        const out: Buffer[] = [];
        ur.on('data', (c: Buffer) => out.push(c));
        ur.on('end', () => {
          const answer = Buffer.concat(out);
          if (hook) {
            // An answer that is not JSON (a 500 page while the merchant stops) is kept as its text, never thrown
            // from this listener, where it would be an uncaught exception of the whole test file.
            hook.answer = (parseJson(answer) ?? { error: answer.toString('utf8') }) as Hook['answer'];
            hook.status = ur.statusCode;
          }
          if (!res.headersSent) res.writeHead(ur.statusCode ?? 502, ur.headers);
          res.end(answer);
        });
      });
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hooks,
    forwardTo(url: string) {
      target = url;
    },
    /** Webhooks arriving from now on wait at the gateway until `release()`. */
    hold() {
      hold = true;
    },
    release() {
      hold = false;
      for (const go of held) go();
      held = [];
    },
    /** The webhooks of one intent that the merchant has answered. */
    answered: (intentId: string) => hooks.filter((h) => h.intentId === intentId && h.status !== undefined),
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

let s: TestServer;
let api: Api;
let gateway: Awaited<ReturnType<typeof startGateway>>;
let merchant: Awaited<ReturnType<typeof startMerchant>>;
let merchantDb: Awaited<ReturnType<typeof createTestDatabase>>;
let browser: BrowserContext;

beforeAll(async () => {
  s = await startTestServer({ settleDelayMs: { sandbox: 3_600_000, production: 3_600_000 } }, systemClock, { worker: { pollMs: 50 } });
  const keys = await newOperator(s, 'Lucky Star Casino');
  api = client(s.url, keys.sandbox);
  gateway = await startGateway();
  merchantDb = await createTestDatabase();
  merchant = await startMerchant({
    databaseUrl: merchantDb.url,
    cashwireUrl: s.url,
    cashwireApiKey: keys.sandbox,
    webhookSecret: WEBHOOK_SECRET,
    publicUrl: gateway.url,
    port: 0,
    host: '127.0.0.1',
  });
  gateway.forwardTo(merchant.url);
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await launchChromium('cw-merchant-chromium-');
});

afterAll(async () => {
  await browser?.close();
  gateway?.release();
  await merchant?.stop();
  await gateway?.close();
  await merchantDb?.drop();
  await s?.stop();
});

// Each test is a new player: the cashier makes one for a browser without its cookie.
beforeEach(async () => {
  await browser.clearCookies();
});

afterEach(async () => {
  gateway.release();
  await Promise.all(browser.pages().map((p) => p.close()));
});

/** Polls `check` until it returns something truthy; fails after `ms`. */
async function until<T>(check: () => T | Promise<T>, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const text = async (p: Page, selector: string) => ((await p.locator(selector).textContent()) ?? '').trim();

async function openCashier(page: Page): Promise<void> {
  const res = await page.goto(`${gateway.url}/`);
  expect(res?.status()).toBe(200);
  await page.getByRole('button', { name: 'Deposit with Push' }).waitFor();
}

/** Fills the amount, clicks the Push button, and lands on Cashwire's payment page; returns the intent id. */
async function startPayment(page: Page, kind: 'deposit' | 'withdraw', amount: string): Promise<string> {
  await page.fill(`#${kind}-amount`, amount);
  await page.getByRole('button', { name: kind === 'deposit' ? 'Deposit with Push' : 'Withdraw with Push' }).click();
  await page.waitForURL((u) => u.origin === s.url && u.pathname.startsWith('/pay/'));
  return new URL(page.url()).pathname.split('/').pop()!;
}

async function approve(page: Page, kind: 'deposit' | 'withdrawal'): Promise<void> {
  await page.getByRole('button', { name: `Approve ${kind}` }).click();
}

const backOnCashier = (page: Page) => page.waitForURL((u) => u.origin === gateway.url && u.pathname === '/return');

/** The merchant's record of a payment, straight from its database. */
async function record(intentId: string) {
  const { rows } = await merchant.pool.query('SELECT * FROM transactions WHERE intent_id = $1', [intentId]);
  return rows[0] as { id: string; player_id: string; direction: string; status: string; status_source: string | null; amount_cents: string; created_at: Date };
}

async function balanceOf(playerId: string): Promise<number> {
  const { rows } = await merchant.pool.query('SELECT balance_cents FROM players WHERE id = $1', [playerId]);
  return Number(rows[0].balance_cents);
}

async function processedCount(): Promise<number> {
  const { rows } = await merchant.pool.query('SELECT count(*)::int AS n FROM cashwire_processed_events');
  return rows[0].n;
}

/** Size, colours and corners of a rendered Push button. */
async function look(page: Page, name: string) {
  return page.getByRole('button', { name }).evaluate((el) => {
    const cs = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return {
      width: r.width, height: r.height, background: cs.backgroundColor, color: cs.color, border: cs.borderTopColor,
      radius: cs.borderTopLeftRadius, opacity: cs.opacity, disabled: (el as HTMLButtonElement).disabled,
    };
  });
}

/** Replays a recorded webhook request to the merchant, byte for byte (optionally with another body). */
async function replay(hook: Hook, body: Buffer | string = hook.body) {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(hook.headers)) {
    if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) headers[k] = v;
  }
  const res = await fetch(`${merchant.url}/webhooks/cashwire`, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: res.status, body: (await res.json()) as { received?: boolean; duplicate?: boolean; error?: string } };
}

describe('example merchant cashier', () => {
  it('a deposit is approved: Push button → payment page → Approve → back on the cashier with the new balance', async () => {
    const page = await browser.newPage();
    await openCashier(page);
    expect(await page.title()).toBe('Cashier · Lucky Star Casino');
    expect(await text(page, '#balance')).toBe('$0.00');
    expect(await text(page, '#message')).toBe('');
    expect(await look(page, 'Deposit with Push')).toEqual({
      width: 320, height: 48, background: ROYAL, color: WHITE, border: ROYAL, radius: '24px', opacity: '1', disabled: false,
    });
    await page.screenshot({ path: join(SCREENSHOTS, 'cashier-new-player.png'), fullPage: true });

    const intentId = await startPayment(page, 'deposit', '50.00');
    expect(await text(page, '[data-testid=direction]')).toBe('Deposit');
    expect(await text(page, '[data-testid=amount]')).toBe('$50.00');
    await approve(page, 'deposit');
    await backOnCashier(page);

    expect(new URL(page.url()).searchParams.get('intent_id')).toBe(intentId);
    expect(await text(page, '#message')).toBe('Deposit of $50.00 approved.');
    expect(await page.locator('#message').getAttribute('class')).toBe('approved');
    expect(await text(page, '#balance')).toBe('$50.00');
    const row = page.locator('#history tr').first();
    expect(await row.getAttribute('data-status')).toBe('approved');
    expect(await row.locator('td.amount').textContent()).toBe('$50.00');
    expect(await look(page, 'Deposit with Push')).toMatchObject({ background: ROYAL, width: 320, height: 48 });
    await page.screenshot({ path: join(SCREENSHOTS, 'cashier-after-deposit.png'), fullPage: true });

    // The merchant's record was committed before the intent existed, and Cashwire knows it by our transaction id.
    const t = await record(intentId);
    expect(t.status).toBe('approved');
    expect(t.id).toMatch(/^dep_[0-9a-f]{20}$/);
    const intent = (await api.get(`/intent/${intentId}`)).body;
    expect(intent).toMatchObject({
      status: 'approved', direction: 'cash_in', amount: 5000, tag: t.id, idempotency_key: t.id,
      redirect_url: `${gateway.url}/return`, webhook_url: `${gateway.url}/webhooks/cashwire`,
    });
    expect(t.created_at.getTime()).toBeLessThanOrEqual(new Date(intent.created_at).getTime());
    // The player was registered once, with our player id as the tag.
    const { rows } = await merchant.pool.query('SELECT cashwire_user_id FROM players WHERE id = $1', [t.player_id]);
    expect(intent.user_id).toBe(rows[0].cashwire_user_id);
    expect((await api.get(`/user/${intent.user_id}`)).body.tag).toBe(t.player_id);
  });

  it('a deposit of $22.00 is declined: the cashier says so and the balance does not move', async () => {
    const page = await browser.newPage();
    await openCashier(page);
    const intentId = await startPayment(page, 'deposit', '22.00');
    expect(await text(page, '[data-testid=amount]')).toBe('$22.00');
    await approve(page, 'deposit');
    await backOnCashier(page);

    expect(new URL(page.url()).searchParams.get('status')).toBe('declined');
    expect(await text(page, '#message')).toBe('Deposit of $22.00 declined: insufficient funds.');
    expect(await page.locator('#message').getAttribute('class')).toBe('declined');
    expect(await page.locator('#message').evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(253, 236, 236)');
    expect(await text(page, '#balance')).toBe('$0.00');
    expect(await text(page, '#history tr td.status')).toBe('declined (insufficient funds)');
    expect(await page.locator('#withdraw-section').isHidden()).toBe(true);
    await page.screenshot({ path: join(SCREENSHOTS, 'cashier-declined.png'), fullPage: true });

    // The intent.declined webhook changes nothing more.
    await until(() => gateway.answered(intentId).find((h) => h.type === 'intent.declined' && h.status === 200), 'the intent.declined webhook');
    await page.goto(`${gateway.url}/`);
    expect(await text(page, '#balance')).toBe('$0.00');
    expect(await text(page, '#history tr td.status')).toBe('declined (insufficient funds)');
    const t = await record(intentId);
    expect(t.status).toBe('declined');
    expect(await balanceOf(t.player_id)).toBe(0);
  });

  it('withdrawal is hidden until the first deposit, then shown and allowed', async () => {
    const page = await browser.newPage();
    await openCashier(page);
    expect(await page.locator('#withdraw-section').isHidden()).toBe(true);
    expect(await page.locator('#withdraw-button button').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Withdraw with Push' }).count()).toBe(0);
    expect(await text(page, '#withdraw-note')).toBe('Withdrawals open after your first deposit.');
    // Not only hidden: the backend refuses it too.
    const refused = await page.evaluate(async () => {
      const r = await fetch('/api/withdraw', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: '10.00' }) });
      return { status: r.status, body: await r.json() };
    });
    expect(refused).toEqual({ status: 403, body: { error: 'deposit_required', message: 'Withdrawals open after your first deposit.' } });

    await startPayment(page, 'deposit', '100.00');
    await approve(page, 'deposit');
    await backOnCashier(page);
    expect(await text(page, '#balance')).toBe('$100.00');
    expect(await page.locator('#withdraw-section').isVisible()).toBe(true);
    expect(await page.locator('#withdraw-note').count()).toBe(0);
    const withdraw = page.getByRole('button', { name: 'Withdraw with Push' });
    expect(await withdraw.isVisible()).toBe(true);
    expect(await withdraw.isEnabled()).toBe(true);
    expect(await look(page, 'Withdraw with Push')).toEqual({
      width: 320, height: 44, background: WHITE, color: NAVY, border: WHITE_BORDER, radius: '6px', opacity: '1', disabled: false,
    });
    expect(await look(page, 'Deposit with Push')).toEqual({
      width: 320, height: 48, background: ROYAL, color: WHITE, border: ROYAL, radius: '24px', opacity: '1', disabled: false,
    });
    await page.screenshot({ path: join(SCREENSHOTS, 'cashier-withdrawal-open.png'), fullPage: true });

    // More than the balance: the cashier says so, and the button is ready again.
    await page.fill('#withdraw-amount', '500.00');
    await withdraw.click();
    await page.locator('#message.error').waitFor();
    expect(await text(page, '#message')).toBe('You can withdraw up to $100.00.');
    await page.locator('#withdraw-button button:not([aria-busy=true])').waitFor();
    expect(await text(page, '#withdraw-button button')).toBe('Withdraw with Push');
    expect(new URL(page.url()).origin).toBe(gateway.url);

    const intentId = await startPayment(page, 'withdraw', '30.00');
    expect(await text(page, '[data-testid=direction]')).toBe('Withdrawal');
    expect(await text(page, '[data-testid=amount]')).toBe('$30.00');
    await approve(page, 'withdrawal');
    await backOnCashier(page);
    expect(await text(page, '#message')).toBe('Withdrawal of $30.00 approved.');
    expect(await text(page, '#balance')).toBe('$70.00');
    const t = await record(intentId);
    expect(t).toMatchObject({ status: 'approved', direction: 'withdrawal' });
    expect(t.id).toMatch(/^wdr_/);
    expect((await api.get(`/intent/${intentId}`)).body).toMatchObject({ direction: 'cash_out', amount: 3000, status: 'approved' });
  });

  it('a webhook delivered twice (replayed, then resent by Cashwire) changes the balance once', async () => {
    const page = await browser.newPage();
    await openCashier(page);
    const intentId = await startPayment(page, 'deposit', '40.00');
    await approve(page, 'deposit');
    await backOnCashier(page);
    expect(await text(page, '#balance')).toBe('$40.00');
    const first = await until(() => gateway.answered(intentId).find((h) => h.type === 'intent.approved'), 'the intent.approved webhook');
    expect(first.status).toBe(200);
    expect(first.answer).toEqual({ received: true });
    const t = await record(intentId);
    expect(await balanceOf(t.player_id)).toBe(4000);
    const processed = await processedCount();

    // The exact same request again: accepted (so the sender stops retrying), recognised, not applied.
    expect(await replay(first)).toEqual({ status: 200, body: { received: true, duplicate: true } });

    // Cashwire sends it again itself, same event id.
    const events = (await api.get(`/events?intent_id=${intentId}`)).body.data as { id: string; type: string }[];
    const approved = events.find((e) => e.type === 'intent.approved')!;
    expect((await api.post(`/events/${approved.id}/resend`)).status).toBe(200);
    const again = await until(() => gateway.answered(intentId)[1], 'the resent webhook');
    expect(again.headers['x-webhook-id']).toBe(first.headers['x-webhook-id']);
    expect(again.status).toBe(200);
    expect(again.answer).toEqual({ received: true, duplicate: true });

    expect(await processedCount()).toBe(processed);
    expect(await balanceOf(t.player_id)).toBe(4000);
    await page.goto(`${gateway.url}/`);
    expect(await text(page, '#balance')).toBe('$40.00');
    expect(await page.locator('#history tr').count()).toBe(1);
  });

  it('a webhook before the redirect and one after it end in the same balance', async () => {
    // 1. Webhook first: the player's way back is held until the merchant has processed the webhook.
    const page = await browser.newPage();
    await page.route((u) => u.origin === gateway.url && u.pathname === '/return', async (route) => {
      const id = new URL(route.request().url()).searchParams.get('intent_id')!;
      // A wait that times out lets the redirect through (the assertions below then fail, inside the test) rather
      // than throw from the route handler, outside any test.
      await until(() => gateway.answered(id).find((h) => h.type === 'intent.approved'), 'the webhook, before the redirect').catch(() => {});
      await route.continue().catch(() => {});
    });
    await openCashier(page);
    const early = await startPayment(page, 'deposit', '60.00');
    await approve(page, 'deposit');
    await backOnCashier(page);
    expect(await text(page, '#message')).toBe('Deposit of $60.00 approved.');
    expect(await text(page, '#balance')).toBe('$60.00');
    const webhookFirst = await record(early);
    expect(webhookFirst).toMatchObject({ status: 'approved', status_source: 'webhook' }); // the redirect found it done
    expect(gateway.answered(early)).toHaveLength(1);
    expect(gateway.answered(early)[0]!.answer).toEqual({ received: true });

    // 2. Redirect first: a new player; the webhook waits at the gateway until the player is back on the cashier.
    await page.close();
    await browser.clearCookies();
    gateway.hold();
    const page2 = await browser.newPage();
    await openCashier(page2);
    const late = await startPayment(page2, 'deposit', '60.00');
    await approve(page2, 'deposit');
    await backOnCashier(page2);
    expect(await text(page2, '#message')).toBe('Deposit of $60.00 approved.');
    expect(await text(page2, '#balance')).toBe('$60.00');
    expect(gateway.answered(late)).toHaveLength(0);
    const redirectFirst = await record(late);
    expect(redirectFirst).toMatchObject({ status: 'approved', status_source: 'redirect' });

    gateway.release();
    const hook = await until(() => gateway.answered(late).find((h) => h.type === 'intent.approved'), 'the held webhook');
    expect(hook.status).toBe(200);
    expect(hook.answer).toEqual({ received: true }); // a new event id, applied: it finds the status already there
    expect(await record(late)).toMatchObject({ status: 'approved', status_source: 'redirect' });
    await page2.reload();
    expect(await text(page2, '#balance')).toBe('$60.00');

    // The same end either way.
    expect(webhookFirst.player_id).not.toBe(redirectFirst.player_id);
    expect(await balanceOf(webhookFirst.player_id)).toBe(6000);
    expect(await balanceOf(redirectFirst.player_id)).toBe(6000);
  });

  it('an idle database connection dropped by PostgreSQL does not take the merchant down', async () => {
    // Idle connections in the pool, then PostgreSQL ends them (as a restart or an administrator would).
    await Promise.all([1, 2, 3].map(() => merchant.pool.query('SELECT pg_sleep(0.05)')));
    expect(merchant.pool.idleCount).toBeGreaterThan(0);
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [new URL(merchantDb.url).pathname.slice(1)],
      );
      expect(rows[0].n).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }
    // Each idle client's error reaches the pool; unheard, it was an uncaught exception that ended the process.
    await until(() => merchant.pool.totalCount === 0, 'the pool to drop its dead connections');
    const page = await browser.newPage();
    await openCashier(page);
    expect(await text(page, '#balance')).toBe('$0.00');
  });

  it('a tampered webhook (body changed, signature kept) is refused with 401 and changes nothing', async () => {
    const page = await browser.newPage();
    // Hold both ways back to the merchant: the webhook at the gateway, the player's redirect in the browser.
    gateway.hold();
    let letBack!: () => void;
    const back = new Promise<void>((r) => (letBack = r));
    await page.route((u) => u.origin === gateway.url && u.pathname === '/return', async (route) => {
      await back;
      await route.continue().catch(() => {}); // the page may be closing: not an error of this test
    });
    await openCashier(page);
    const intentId = await startPayment(page, 'deposit', '25.00');
    await approve(page, 'deposit');
    const held = await until(() => gateway.hooks.find((h) => h.intentId === intentId && h.type === 'intent.approved'), 'the webhook to arrive');
    const t = await record(intentId);
    const processed = await processedCount();

    const original = held.body.toString('utf8');
    expect(original).toContain('"amount":2500,');
    const tampered = original.replace('"amount":2500,', '"amount":2500000,');
    expect(await replay(held, tampered)).toEqual({ status: 401, body: { error: 'bad_signature', message: expect.any(String) } });
    // Also refused: the right body with its signature removed.
    const unsigned = { ...held, headers: { ...held.headers, 'x-webhook-signature': undefined } };
    expect((await replay(unsigned)).status).toBe(401);

    expect(await record(intentId)).toMatchObject({ status: 'created', status_source: null });
    expect(await balanceOf(t.player_id)).toBe(0);
    expect(await processedCount()).toBe(processed);
    const other = await browser.newPage();
    await other.goto(`${gateway.url}/`);
    expect(await text(other, '#balance')).toBe('$0.00');
    expect(await other.locator('#history tr').first().getAttribute('data-status')).toBe('created');

    // The genuine webhook and the redirect then go through, with the real amount.
    gateway.release();
    const genuine = await until(() => gateway.answered(intentId).find((h) => h.type === 'intent.approved'), 'the genuine webhook');
    expect(genuine.status).toBe(200);
    expect(genuine.answer).toEqual({ received: true });
    letBack();
    await backOnCashier(page);
    expect(await text(page, '#balance')).toBe('$25.00');
    expect(await balanceOf(t.player_id)).toBe(2500);
  });
});
