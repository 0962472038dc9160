#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import pinoPretty from 'pino-pretty';
import { randomIds, systemClock } from './clock.js';
import { loadConfig } from './config.js';
import { createKey, createOperator, ensureSandboxOperator, listKeys, revokeKey, updateSettings } from './payments/operators/operators.js';
import { watchParent } from './delivery/supervisor.js';
import { installProcessGuard, openDatabase, start } from './server.js';
import { register as registerCommands } from './cli/commands.js';
import { register as registerListen } from './cli/listen.js';
import { register as registerTrigger } from './cli/trigger.js';
import { register as registerClock } from './cli/clock.js';
import { RemoteError } from './cli/remote.js';

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

/** Said in the help of every command that opens the database itself. */
const DB = '(uses DATABASE_URL, or the embedded PostgreSQL of the data folder when it is unset)';

interface OperatorListing {
  id: string;
  name: string;
  created_at: string;
  keys: Array<{ id: string; environment: string; name: string | null; prefix: string; created_at: string; revoked_at: string | null }>;
}

/** Every operator, oldest first, with its keys' prefixes (never the keys: only their hashes are stored). */
async function listOperators(db: import('./db/pool.js').Db): Promise<OperatorListing[]> {
  const ops = await db.query<{ id: string; name: string; created_at: Date }>('SELECT id, name, created_at FROM operators ORDER BY created_at, id');
  const keys = await db.query<{ id: string; operator_id: string; environment: string; name: string | null; prefix: string; created_at: Date; revoked_at: Date | null }>(
    'SELECT id, operator_id, environment, name, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at, id',
  );
  return ops.rows.map((op) => ({
    id: op.id, name: op.name, created_at: op.created_at.toISOString(),
    keys: keys.rows.filter((k) => k.operator_id === op.id).map((k) => ({
      id: k.id, environment: k.environment, name: k.name, prefix: `${k.prefix}…`, created_at: k.created_at.toISOString(), revoked_at: k.revoked_at?.toISOString() ?? null,
    })),
  }));
}

function operatorTable(ops: OperatorListing[]): string {
  if (ops.length === 0) return 'No operators. Make one: cashwire operator create "<name>"\n';
  const lines: string[] = [];
  for (const op of ops) {
    lines.push(`${op.id}  ${op.name}  created ${op.created_at}`);
    for (const k of op.keys) {
      lines.push(`  ${k.id}  ${k.environment.padEnd(10)}  ${k.prefix.padEnd(17)}  ${(k.name ?? '-').padEnd(10)}  ${k.revoked_at ? `revoked ${k.revoked_at}` : 'active'}`);
    }
    if (op.keys.length === 0) lines.push('  (no keys)');
  }
  lines.push('', 'Keys are shown once, when made. A lost key: cashwire key create <operator id> [--env production] makes a new one.');
  return `${lines.join('\n')}\n`;
}

/**
 * The logger of `start` and `worker`: human-readable (pino-pretty: time of day, level, message, the fields below it)
 * when stdout is a terminal, JSON lines otherwise (for a log collector). LOG_PRETTY=1 forces pretty, LOG_PRETTY=0 JSON.
 */
function serverLogger(level: string): pino.Logger {
  const flag = process.env.LOG_PRETTY;
  const pretty = flag === '1' || (flag !== '0' && process.stdout.isTTY === true);
  if (!pretty) return pino({ level });
  // In this thread and synchronous, so that log lines and the banner come out in the order they were written.
  return pino({ level }, pinoPretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', colorize: process.stdout.isTTY === true && !process.env.NO_COLOR }));
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
    const log = serverLogger(config.logLevel);
    installProcessGuard(log);
    const running = await start({ config, log, worker: config.workerMode === 'inline' ? true : 'process' });
    const first = await ensureSandboxOperator({ db: running.deps.db, clock: systemClock, ids: randomIds }, config.sandboxApiKey).catch(async (err: unknown) => {
      await running.stop().catch(() => {}); // exiting with the embedded PostgreSQL still running would orphan it
      throw err;
    });
    const key = first.key ?? '<your sandbox API key>';
    const base = config.publicUrl;
    process.stdout.write(
      `\nCashwire is running at ${base}\n  API reference: ${base}/docs  (OpenAPI: ${base}/openapi.json)\n  Dashboard: ${base}/dashboard  (sign in with the API key)\n` +
        (first.created ? `A sandbox operator was created. Its API key (shown once, keep it):\n\n  ${key}\n\n` : `\n`) +
        `Try it:\n\n  curl -s -X POST ${base}/keys/verify -H "Authorization: Bearer ${key}"\n\n` +
        `Lost the key? List the operators and make a new key for one (${config.databaseUrl ? 'same DATABASE_URL' : 'stop this server first: the data folder has one owner at a time'}):\n\n` +
        `  npx cashwire operator list\n  npx cashwire key create <operator id>\n\n`,
    );
    stopOnSignals(running, log);
  });

program
  .command('worker')
  .description('run a delivery worker alone (no API); start as many as you like on one database')
  .action(async () => {
    const config = loadConfig();
    const log = serverLogger(config.logLevel);
    installProcessGuard(log);
    const running = await start({ config, log, api: false, jobs: false });
    log.info({ worker: running.worker?.id }, 'delivery worker running');
    stopOnSignals(running, log);
    watchParent(log, () => void running.stop().finally(() => process.exit(0)));
  });

program
  .command('migrate')
  .description(`apply pending database migrations and exit ${DB}`)
  .action(() => withDatabase(async () => ({ migrated: true })));

const operator = program.command('operator').description(`manage operators ${DB}`);
operator
  .command('create <name>')
  .description(`create an operator; prints its id and its sandbox and production keys (shown once) ${DB}`)
  .action((name: string) => withDatabase((ctx) => createOperator(ctx, name)));
operator
  .command('list')
  .description(`list the operators: id, name, created_at and their keys' prefixes and environments, never the keys ${DB}. `
    + 'A lost key: make a new one with `cashwire key create <operator id>`')
  .option('--json', 'print JSON')
  .action((o: { json?: boolean }) =>
    withDatabase(async (ctx) => {
      const operators = await listOperators(ctx.db);
      if (o.json) return operators;
      process.stdout.write(operatorTable(operators));
      return undefined;
    }),
  );
operator
  .command('config <operatorId>')
  .description(`set an operator's rate limits (requests per sliding hour, per key) ${DB}`)
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

const key = program.command('key').description(`manage API keys (stored hashed; a key is shown once, when created) ${DB}`);
key
  .command('create <operatorId>')
  .description(`make a new API key for an operator (\`cashwire operator list\` shows the ids); prints it, shown once ${DB}`)
  .option('--env <environment>', 'sandbox or production', env, 'sandbox')
  .option('--name <name>', 'a label for the key')
  .action((operatorId: string, o: { env: 'sandbox' | 'production'; name?: string }) => withDatabase((ctx) => createKey(ctx, operatorId, o.env, o.name ?? null)));
key
  .command('list <operatorId>')
  .description(`an operator's keys: id, environment, name, prefix, created_at, revoked_at ${DB}`)
  .action((operatorId: string) => withDatabase((ctx) => listKeys(ctx, operatorId)));
key
  .command('revoke <keyId>')
  .description(`revoke a key: it stops working at once ${DB}`)
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
  // An API error prints its stable code: `cashwire: <code>: <message>`.
  process.stderr.write(`cashwire: ${err instanceof RemoteError ? `${err.code}: ` : ''}${err.message}\n`);
  process.exit(1);
});
