#!/usr/bin/env node
/**
 * Runs the example merchant alone, against a Cashwire that is already running:
 *   MERCHANT_DATABASE_URL=postgres://… CASHWIRE_URL=http://localhost:4000 CASHWIRE_API_KEY=sk_sandbox_… \
 *   MERCHANT_WEBHOOK_SECRET=<32+ characters> node examples/merchant/src/server.js
 * (`npm run example` at the root starts Cashwire and this together.)
 */
import { startMerchant } from './app.js';

const env = process.env;
const port = Number(env.MERCHANT_PORT || 4100);
const merchant = await startMerchant({
  databaseUrl: env.MERCHANT_DATABASE_URL ?? '',
  cashwireUrl: env.CASHWIRE_URL || 'http://localhost:4000',
  cashwireApiKey: env.CASHWIRE_API_KEY ?? '',
  webhookSecret: env.MERCHANT_WEBHOOK_SECRET ?? '',
  sessionSecret: env.MERCHANT_SESSION_SECRET || undefined,
  publicUrl: env.MERCHANT_PUBLIC_URL || `http://localhost:${port}`,
  port,
});
process.stdout.write(`Merchant cashier: ${merchant.publicUrl}\n`);
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(sig, () => void merchant.stop().then(() => process.exit(0)));
}
