#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { randomIds, systemClock } from './clock.js';
import { loadConfig } from './config.js';
import { createKey, createOperator, ensureSandboxOperator, listKeys, revokeKey, updateSettings } from './payments/operators/operators.js';
import { watchParent } from './delivery/supervisor.js';
import { installProcessGuard, openDatabase, start } from './server.js';
import { register as registerCommands } from './cli/commands.js';
import { register as registerListen } from './cli/listen.js';
import { register as registerTrigger } from './cli/trigger.js';
import { register as registerClock } from './cli/clock.js';

const program = new Command('cashwire').description('Cashwire: payments API and webhook delivery').version('0.1.0');

function env(value: string): 'sandbox' | 'production' {
  if (value !== 'sandbox' && value !== 'production') throw new InvalidArgumentError('must be sandbox or production');
  return value;
}
function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** Opens the database (embedded or DATABASE_URL) quietly, runs `fn`, closes it. */
async function withDatabase<T>(fn: (ctx: { db: import('./db/pool.js').Db; clock: typeof systemClock; ids: typeof randomIds }) => Promise<T>): Promise<void> {
  const config = loadConfig();
  const log = pino({ level: process.env.LOG_LEVEL || 'warn' }, pino.destination(2));
  const database = await openDatabase(config, log);
  try {
    const out = await fn({ db: database.db, clock: systemClock, ids: randomIds });
    if (out !== undefined) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    await database.close();
  }
}

/** SIGINT/SIGTERM: stop cleanly once (HTTP, jobs, worker, then the database), then exit. */
function stopOnSignals(running: { stop(): Promise<void> }, log: pino.Logger): void {
  let signals = 0;
  const shutdown = (sig: string) => {
    if (signals++ > 0) return;
    log.info({ signal: sig }, 'shutting down');
    running.stop().then(() => process.exit(0), (err) => { log.error({ err }, 'shutdown failed'); process.exit(1); });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

program
  .command('start')
  .description('run the API, the hosted pages, the background jobs and a delivery worker')
  .action(async () => {
    const config = loadConfig();
    const log = pino({ level: config.logLevel });
    installProcessGuard(log);
    const running = await start({ config, log, worker: config.workerMode === 'inline' ? true : 'process' });
    const first = await ensureSandboxOperator({ db: running.deps.db, clock: systemClock, ids: randomIds }, config.sandboxApiKey).catch(async (err: unknown) => {
      await running.stop().catch(() => {}); // exiting with the embedded PostgreSQL still running would orphan it
      throw err;
    });
    const key = first.key ?? '<your sandbox API key>';
    const base = config.publicUrl;
    process.stdout.write(
      `\nCashwire is running at ${base}  (OpenAPI: ${base}/openapi.json)\n` +
        (first.created ? `A sandbox operator was created. Its API key (shown once, keep it):\n\n  ${key}\n\n` : `\n`) +
        `Try it:\n\n  curl -s -X POST ${base}/keys/verify -H "Authorization: Bearer ${key}"\n\n`,
    );
    stopOnSignals(running, log);
  });

program
  .command('worker')
  .description('run a delivery worker alone (no API); start as many as you like on one database')
  .action(async () => {
    const config = loadConfig();
    const log = pino({ level: config.logLevel });
    installProcessGuard(log);
    const running = await start({ config, log, api: false, jobs: false });
    log.info({ worker: running.worker?.id }, 'delivery worker running');
    stopOnSignals(running, log);
    watchParent(log, () => void running.stop().finally(() => process.exit(0)));
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .action(() => withDatabase(async () => ({ migrated: true })));

const operator = program.command('operator').description('manage operators');
operator
  .command('create <name>')
  .description('create an operator; prints its id and its sandbox and production keys (shown once)')
  .action((name: string) => withDatabase((ctx) => createOperator(ctx, name)));
operator
  .command('config <operatorId>')
  .description("set an operator's rate limits (requests per sliding hour, per key)")
  .option('--rate-create <n>', 'create requests per hour', positiveInt)
  .option('--rate-read <n>', 'read requests per hour', positiveInt)
  .action((operatorId: string, o: { rateCreate?: number; rateRead?: number }) =>
    withDatabase(async (ctx) => {
      const { rows } = await ctx.db.query<{ settings: { rate_limits?: Record<string, number> } }>('SELECT settings FROM operators WHERE id = $1', [operatorId]);
      if (!rows[0]) throw new Error(`no operator ${operatorId}`);
      const rate_limits = { ...(rows[0].settings.rate_limits ?? {}), ...(o.rateCreate ? { create: o.rateCreate } : {}), ...(o.rateRead ? { read: o.rateRead } : {}) };
      return updateSettings(ctx, operatorId, { rate_limits });
    }),
  );

const key = program.command('key').description('manage API keys (stored hashed; a key is shown once, when created)');
key
  .command('create <operatorId>')
  .option('--env <environment>', 'sandbox or production', env, 'sandbox')
  .option('--name <name>', 'a label for the key')
  .action((operatorId: string, o: { env: 'sandbox' | 'production'; name?: string }) => withDatabase((ctx) => createKey(ctx, operatorId, o.env, o.name ?? null)));
key
  .command('list <operatorId>')
  .action((operatorId: string) => withDatabase((ctx) => listKeys(ctx, operatorId)));
key
  .command('revoke <keyId>')
  .action((keyId: string) =>
    withDatabase(async (ctx) => {
      if (!(await revokeKey(ctx, keyId))) throw new Error(`no active key ${keyId}`);
      return { revoked: keyId };
    }),
  );

// Commands that talk to a running Cashwire (--api-url / --api-key).
registerCommands(program);
registerListen(program);
registerTrigger(program);
registerClock(program);

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`cashwire: ${err.message}\n`);
  process.exit(1);
});
