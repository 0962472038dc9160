#!/usr/bin/env node
/**
 * `npm run example`: Cashwire (embedded PostgreSQL, or DATABASE_URL) and the example merchant beside it.
 *   Cashwire  http://localhost:4000  (PORT)           sandbox key: CASHWIRE_SANDBOX_API_KEY, fixed below by default
 *   merchant  http://localhost:4100  (MERCHANT_PORT)  its own database: MERCHANT_DATABASE_URL, or one named
 *                                                     cashwire_example_merchant on Cashwire's PostgreSQL server
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startMerchant } from './src/app.js';

const env = process.env;
const cashwirePort = Number(env.PORT || 4000);
const merchantPort = Number(env.MERCHANT_PORT || 4100);
const apiKey = env.CASHWIRE_SANDBOX_API_KEY || 'sk_sandbox_example_merchant';
const cashwireUrl = `http://localhost:${cashwirePort}`;
const cli = fileURLToPath(new URL('../../packages/server/dist/cli.js', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

const cashwire = spawn(process.execPath, [cli, 'start'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...env, PORT: String(cashwirePort), CASHWIRE_SANDBOX_API_KEY: apiKey, LOG_LEVEL: env.LOG_LEVEL || 'warn' },
});
let exited = false;
cashwire.on('exit', (code) => {
  exited = true;
  if (!stopping) {
    process.stderr.write(`Cashwire exited (${code}); stopping the merchant\n`);
    void merchant?.stop().finally(() => process.exit(code || 1));
  }
});

/** Waits (at most 2 minutes: the first embedded start runs initdb) until the sandbox key is accepted. */
async function cashwireReady() {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error('Cashwire did not start');
    const ok = await fetch(`${cashwireUrl}/keys/verify`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` } })
      .then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Cashwire did not answer at ${cashwireUrl} within 2 minutes`);
}

/** MERCHANT_DATABASE_URL, or a database of its own on the PostgreSQL server Cashwire uses (created if missing). */
async function merchantDatabase() {
  if (env.MERCHANT_DATABASE_URL) return env.MERCHANT_DATABASE_URL;
  const server = new URL(env.DATABASE_URL || `postgres://postgres:cashwire@127.0.0.1:${env.CASHWIRE_PG_PORT || 54329}/postgres`);
  const admin = new pg.Client({ connectionString: server.toString() });
  await admin.connect();
  try {
    await admin.query('CREATE DATABASE cashwire_example_merchant');
  } catch (err) {
    if (/** @type {{ code?: string }} */ (err).code !== '42P04') throw err; // 42P04: it exists already
  } finally {
    await admin.end();
  }
  server.pathname = '/cashwire_example_merchant';
  return server.toString();
}

/** @type {Awaited<ReturnType<typeof startMerchant>> | undefined} */
let merchant;
let stopping = false;
async function shutdown(/** @type {number} */ code) {
  if (stopping) return;
  stopping = true;
  await merchant?.stop().catch(() => {});
  if (!exited) {
    cashwire.kill('SIGTERM');
    await new Promise((r) => cashwire.once('exit', r));
  }
  process.exit(code);
}
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

try {
  await cashwireReady();
  merchant = await startMerchant({
    databaseUrl: await merchantDatabase(),
    cashwireUrl,
    cashwireApiKey: apiKey,
    webhookSecret: env.MERCHANT_WEBHOOK_SECRET || 'whsec-example-merchant-0123456789abcdef',
    sessionSecret: env.MERCHANT_SESSION_SECRET || 'example-merchant-session-secret',
    publicUrl: env.MERCHANT_PUBLIC_URL || `http://localhost:${merchantPort}`,
    port: merchantPort,
  });
  process.stdout.write(`\nThe example merchant's cashier is at ${merchant.publicUrl}  (Cashwire: ${cashwireUrl}, key ${apiKey})\n` +
    `Deposit $22.00 to see a decline. Ctrl-C stops both.\n\n`);
} catch (err) {
  process.stderr.write(`example: ${/** @type {Error} */ (err).message}\n`);
  await shutdown(1);
}
