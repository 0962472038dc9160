/**
 * Sendcash checkout in a real headless Chromium: a merchant's page on its own origin loads /sdk/transfers.js, calls
 * Transfers.init and, on a click, Transfers.charge with a signature its server computed; the payer lands on the payer
 * page, types their bank details and confirms (or, in the sandbox, fails); a worker tick then delivers the
 * Payment.Status webhook, carrying what the payer typed, to a real receiver.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { verify } from '@cashwire/webhooks';
import pino from 'pino';
import { type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWorker, type DeliveryWorker } from '../src/delivery/worker.js';
import { client, newOperator, startTestServer, type TestServer } from './helpers.js';
import { startReceiver, type Received } from './receiver.js';
import { launchChromium, listenOnLoopback, watch } from './browser.js';

let s: TestServer;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let browser: BrowserContext;
let site: Server;
let siteUrl: string;
const workers: DeliveryWorker[] = [];
/** The merchant's Sendcash keys, as its backend keeps them. */
let keys: { publicKey: string; secretKey: string; signatureToken: string };

const ACCOUNT = '0690000031';
const BANK = '044';

/**
 * The merchant's site. /checkout signs the charge on the server (the secret key never reaches the browser) and
 * serves a page that uses the checkout script; `popup=1` leaves out `redirect: true`; `bad=1` signs the wrong amount.
 */
function startSite(): Promise<void> {
  site = createServer((req, res) => {
    const u = new URL(req.url ?? '/', siteUrl);
    if (u.pathname !== '/checkout') return void res.writeHead(404).end();
    const reference = u.searchParams.get('ref') ?? 'ref';
    const amount = u.searchParams.get('amount') ?? '1';
    const userId = 'user_1001';
    const kobo = Math.round(Number(amount) * 100) + (u.searchParams.get('bad') ? 1 : 0);
    const signature = createHmac('sha256', keys.secretKey).update(`${userId}:${reference}:${kobo}:${ACCOUNT}:${BANK}`).digest('hex');
    const popup = u.searchParams.get('popup') === '1';
    const chargeOptions = {
      signature, amount: Number(amount), userId, destinationAccountNumber: ACCOUNT, destinationBankCode: BANK,
      transactionReference: reference, name: 'Ngozi Okafor', ...(popup ? {} : { redirect: true }),
    };
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html>
<html><head><meta charset="utf-8"><title>Naija Bets · Deposit</title>
<script src="${s.url}/sdk/transfers.js"></script></head>
<body><h1>Deposit ₦${amount}</h1><button id="pay">Pay by bank transfer</button><p id="status"></p>
<script>
  window.__events = [];
  window.__init = Transfers.init({ siteName: 'Naija Bets', siteUrl: location.origin, siteLogo: location.origin + '/logo.png', publicKey: ${JSON.stringify(keys.publicKey)} });
  document.getElementById('pay').addEventListener('click', function () {
    var o = ${JSON.stringify(chargeOptions)};
    o.onSuccess = function (d) { window.__events.push(['success', d]); };
    o.onClose = function (d) { window.__events.push(['close', d]); };
    Transfers.charge(o).then(function (c) { window.__charge = c; document.getElementById('status').textContent = 'charge ' + c.status; },
      function (e) { document.getElementById('status').textContent = 'error: ' + e.message; });
  });
</script></body></html>`);
  });
  return listenOnLoopback(site).then((url) => {
    siteUrl = url;
  });
}

beforeAll(async () => {
  s = await startTestServer();
  rx = await startReceiver();
  const op = await newOperator(s, 'Naija Bets');
  const ob = await client(s.url, op.sandbox).post('/sendcash/onboarding', { webhook_url: `${rx.url}/sendcash` });
  expect(ob.status).toBe(200);
  keys = { publicKey: ob.body.public_key, secretKey: ob.body.secret_key, signatureToken: ob.body.signature_token };
  await startSite();
  browser = await launchChromium('cw-chromium-');
});

afterEach(async () => {
  await Promise.all(browser.pages().map((p) => p.close()));
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  rx.received.length = 0;
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
  await rx?.close();
  await s?.stop();
});

function worker() {
  const w = createWorker(
    { db: s.running.deps.db, clock: s.clock, ids: s.running.deps.ids, log: pino({ level: 'silent' }), random: () => 0.5, secrets: s.running.deps.secrets },
    { connectTimeoutMs: 1_000, totalTimeoutMs: 2_000, leaseMs: 5_000, pollMs: 0, listen: false, drainMs: 300, connectionString: s.running.database.url },
  );
  workers.push(w);
  return w;
}


const text = async (p: Page, selector: string) => ((await p.locator(selector).textContent()) ?? '').trim();

async function payerPageFrom(page: Page, reference: string, amount: string) {
  await page.goto(`${siteUrl}/checkout?ref=${encodeURIComponent(reference)}&amount=${amount}`);
  expect(await page.evaluate(() => (window as unknown as { __init: boolean }).__init)).toBe(true);
  await page.getByRole('button', { name: 'Pay by bank transfer' }).click();
  await page.waitForURL((u) => u.origin === s.url && u.pathname.startsWith('/sendcash/pay/'));
}

async function fillPayer(page: Page, p: { name: string; account: string; type: 'personal' | 'business'; bank: string }) {
  await page.getByLabel('Account name').fill(p.name);
  await page.getByLabel('Account number').fill(p.account);
  await page.getByLabel('Account type').selectOption(p.type);
  // The bank is picked by name; the page sends its code.
  await page.getByLabel('Your bank').selectOption(p.bank);
}

async function checkWebhook(r: Received) {
  const header = r.headers['x-transfers-signature'];
  expect(header).toBe(createHmac('sha256', keys.signatureToken).update(r.body).digest('hex'));
  const event = await verify('sendcash', { body: r.body, headers: r.headers, secrets: keys.signatureToken });
  expect(event.type).toBe('Payment.Status');
  return JSON.parse(r.body) as { event: string; data: Record<string, unknown> };
}

describe('Sendcash checkout in a browser', () => {
  it('charge → payer page → "I have sent the transfer" → Transfer completed → a Completed webhook with what the payer typed', async () => {
    const page = await browser.newPage();
    const problems = watch(page);
    await payerPageFrom(page, 'order-7001', '2500.5');
    expect(await text(page, '[data-testid=amount]')).toBe('₦2,500.50');
    expect(await text(page, '[data-testid=reference]')).toBe('order-7001');
    expect(await text(page, 'h1')).toBe('Naija Bets');
    expect(await text(page, '.sandbox')).toBe('SANDBOX');
    // Nothing is decided yet: no webhook.
    expect(await worker().tick()).toBe(0);

    await fillPayer(page, { name: 'Ngozi Okafor', account: '0034567890', type: 'business', bank: '058' });
    await page.getByRole('button', { name: 'I have sent the transfer' }).click();
    await expect.poll(() => text(page, '#result')).toBe('Transfer completed');
    expect(await page.locator('form').count()).toBe(0);
    // A reload shows the outcome, not the form.
    await page.reload();
    expect(await text(page, '#result')).toBe('Transfer completed');
    expect(await page.getByRole('button', { name: 'I have sent the transfer' }).count()).toBe(0);

    expect(await worker().tick()).toBe(1);
    expect(rx.received).toHaveLength(1);
    const body = await checkWebhook(rx.received[0]!);
    expect(body).toEqual({
      event: 'Payment.Status',
      data: {
        status: 'Completed', userId: 'user_1001', paymentReference: 'order-7001', amount: 2500.5, description: 'Transaction Successful',
        senderAccountName: 'Ngozi Okafor', sourceAccountNumber: '0034567890', sourceAccountType: 'business', sourceBankCode: '058',
        destinationAccountNumber: ACCOUNT, destinationBankCode: BANK,
      },
    });
    expect(problems).toEqual([]);
  });

  it('the sandbox Fail button → Transfer failed → a Failed webhook', async () => {
    const page = await browser.newPage();
    const problems = watch(page);
    await payerPageFrom(page, 'order-7002', '75');
    expect(await text(page, '[data-testid=amount]')).toBe('₦75.00');
    expect(await text(page, '[data-testid=reference]')).toBe('order-7002');
    await fillPayer(page, { name: 'Emeka Nwosu', account: '0011223344', type: 'personal', bank: '033' });
    await page.getByRole('button', { name: 'Fail (sandbox)' }).click();
    await expect.poll(() => text(page, '#result')).toBe('Transfer failed');

    expect(await worker().tick()).toBe(1);
    const body = await checkWebhook(rx.received[0]!);
    expect(body.data).toMatchObject({ status: 'Failed', paymentReference: 'order-7002', amount: 75, senderAccountName: 'Emeka Nwosu', sourceBankCode: '033', description: 'Transaction Failed' });
    expect(problems).toEqual([]);
  });

  it('without redirect, the payer page opens in a popup and tells the merchant\'s page the outcome (onSuccess, onClose)', async () => {
    const page = await browser.newPage();
    await page.goto(`${siteUrl}/checkout?ref=order-7003&amount=19.99&popup=1`);
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.getByRole('button', { name: 'Pay by bank transfer' }).click()]);
    await popup.waitForURL((u) => u.origin === s.url && u.pathname.startsWith('/sendcash/pay/'));
    expect(await text(popup, '[data-testid=amount]')).toBe('₦19.99');
    await expect.poll(() => text(page, '#status')).toBe('charge Pending');
    // A message of the payer page's shape from any other origin (here the merchant's own) is ignored.
    await page.evaluate(() => window.postMessage({ source: 'cashwire-sendcash', reference: 'order-7003', status: 'Completed' }, '*'));
    await page.waitForTimeout(100);
    expect(await page.evaluate(() => (window as unknown as { __events: unknown[] }).__events)).toEqual([]);
    await fillPayer(popup, { name: 'Ngozi Okafor', account: '0034567890', type: 'personal', bank: '058' });
    await popup.getByRole('button', { name: 'I have sent the transfer' }).click();
    await expect.poll(() => text(popup, '#result')).toBe('Transfer completed');
    const events = () => page.evaluate(() => (window as unknown as { __events: [string, { reference: string; status: string }][] }).__events);
    await expect.poll(async () => (await events()).map(([k]) => k)).toEqual(['success', 'close']);
    expect((await events())[0]![1]).toMatchObject({ source: 'cashwire-sendcash', reference: 'order-7003', status: 'Completed' });
    await worker().tick();
    expect((await checkWebhook(rx.received[0]!)).data).toMatchObject({ status: 'Completed', paymentReference: 'order-7003', amount: 19.99 });
  });

  it('a charge the server refuses (a bad signature) is reported to the merchant\'s page, which stays where it is', async () => {
    const page = await browser.newPage();
    await page.goto(`${siteUrl}/checkout?ref=order-7004&amount=10&bad=1`);
    await page.getByRole('button', { name: 'Pay by bank transfer' }).click();
    await expect.poll(() => text(page, '#status')).toMatch(/^error: the signature does not match/);
    expect(new URL(page.url()).origin).toBe(siteUrl);
    expect(await worker().tick()).toBe(0);
  });
});
