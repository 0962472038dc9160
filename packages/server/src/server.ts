import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './api/app.js';
import { createMetrics } from './metrics.js';
import type { LookupFn } from './security/ssrf.js';
import { loadSecretKey, secretBox, type Fingerprinter, type SecretBox } from './security/secrets.js';
import { superviseWorker, type Supervisor } from './delivery/supervisor.js';
import { checkSecretKey, createWorker, type DeliveryWorker, type WorkerOptions } from './delivery/worker.js';
import { systemClock, randomIds, type Clock, type IdGenerator } from './clock.js';
import { loadConfig, type Config } from './config.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded.js';
import { syncedClock } from './db/clock-sync.js';
import { migrate } from './db/migrate.js';
import { DEFAULT_HEALTH_POLICY } from './domain/health.js';
import { createPool, type Db } from './db/pool.js';
import { createQueueSampler } from './jobs/queue-sampler.js';
import { createSettlementJob } from './jobs/settlement.js';
import type { Deps } from './payments/context.js';
import { ledgerOnlyRail, type RailAdapter } from './payments/rail.js';
import { initTelemetry, shutdownTelemetry } from './telemetry.js';

export interface Database {
  db: Db;
  url: string;
  embedded?: EmbeddedPostgres;
  close(): Promise<void>;
}

/** DATABASE_URL if set, otherwise the embedded PostgreSQL in the data folder. Migrations applied either way. */
export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  let url = config.databaseUrl;
  let embedded: EmbeddedPostgres | undefined;
  if (!url) {
    log.info({ dataDir: config.dataDir, port: config.embeddedPgPort }, 'starting embedded PostgreSQL');
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, onLog: (l) => log.debug({ pg: l.trim() }, 'postgres') });
    url = embedded.url;
    if (embedded.shared) log.info({ pid: embedded.pid }, 'using the embedded PostgreSQL of the Cashwire already running on this data folder');
  }
  const db = createPool(url, config.poolSize);
  const close = async () => {
    await db.end().catch(() => {});
    await embedded?.stop();
  };
  try {
    const applied = await migrate(db);
    if (applied.length) log.info({ applied }, 'migrations applied');
  } catch (err) {
    await close(); // a failed start must not leave the embedded PostgreSQL running
    throw err;
  }
  return { db, url, embedded, close };
}

export function workerOptions(config: Config): Partial<WorkerOptions> {
  const w = config.worker;
  return {
    connectTimeoutMs: w.connectTimeoutMs,
    totalTimeoutMs: w.totalTimeoutMs,
    concurrency: w.concurrency,
    batchSize: w.batchSize,
    pollMs: w.pollMs,
    drainMs: w.drainMs,
    health: { ...DEFAULT_HEALTH_POLICY, failureThreshold: w.circuitFailures, cooldownMs: w.circuitCooldownMs },
    egressProxy: w.egressProxy,
    ...(w.leaseMs !== undefined ? { leaseMs: w.leaseMs } : {}),
  };
}

/**
 * The process-level guard of `cashwire start` and `cashwire worker`: a promise rejection nobody handled is logged and
 * survived, so that no fault in one request or one delivery takes the API and every tenant's webhooks down with it.
 * (The tests run without it: vitest fails a run on any unhandled rejection.) Installed once per process.
 */
let guarded = false;
export function installProcessGuard(log: Logger): void {
  if (guarded) return;
  guarded = true;
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : String(reason) }, 'unhandled promise rejection; the process goes on');
  });
}

export interface StartOptions {
  config?: Config;
  clock?: Clock;
  ids?: IdGenerator;
  rail?: RailAdapter;
  log?: Logger;
  /** Run the background jobs (settlement and retention, the queue-depth sampler) in this process. Default true. */
  jobs?: boolean;
  /**
   * Run a delivery worker: in this process (true, or its options; the default), in a supervised child process of its
   * own ('process', what `cashwire start` does), or not at all (false).
   */
  worker?: boolean | Partial<WorkerOptions> | 'process';
  /** Seals webhook secrets; default: the key from CASHWIRE_SECRET_KEY or the data folder. */
  secrets?: SecretBox & Fingerprinter;
  /** DNS for production webhooks (checked at connect time); tests inject one. */
  resolver?: LookupFn;
  /** Serve the API. Default true (false: `cashwire worker`). */
  api?: boolean;
}

export interface Running {
  url: string;
  /** The HTTP server, when the API runs in this process. */
  app?: FastifyInstance;
  worker?: DeliveryWorker;
  /** The delivery worker's child process, with `worker: 'process'`. */
  workerProcess?: Supervisor;
  deps: Deps;
  database: Database;
  stop(): Promise<void>;
}

export async function start(opts: StartOptions = {}): Promise<Running> {
  const config = opts.config ?? loadConfig();
  const log = opts.log ?? pino({ level: config.logLevel });
  const database = await openDatabase(config, log);
  const secretKey = opts.secrets ? undefined : await loadSecretKey(process.env, config.dataDir);
  const secrets = opts.secrets ?? secretBox(secretKey!);
  // The times the API writes (when a delivery is due, when an event happened) follow the database's clock, as the
  // workers' claims and leases do (db/clock-sync.ts): hosts whose clocks disagree still agree on what is due.
  const dbClock = opts.clock ? undefined : syncedClock(database.db, systemClock, (err) => log.warn({ err: (err as Error).message }, 'could not read the database clock'));
  await dbClock?.start();
  if (dbClock?.offsetMs) log.info({ offsetMs: dbClock.offsetMs }, "this host's clock differs from the database's; the API's times follow the database's");
  const deps: Deps = { db: database.db, clock: opts.clock ?? dbClock!, ids: opts.ids ?? randomIds, config, log, rail: opts.rail ?? ledgerOnlyRail, secrets,
    metrics: createMetrics(database.db, opts.clock ?? dbClock!), resolver: opts.resolver };
  const settlement = createSettlementJob(deps);
  const sampler = createQueueSampler(deps);
  // OpenTelemetry traces, when the environment asks for them (telemetry.ts); before the app, whose hooks it decides.
  const traced = await initTelemetry(opts.api === false ? 'worker' : 'api', log).catch(async (err: unknown) => {
    await database.close();
    throw err;
  });
  let app: FastifyInstance | undefined;
  let url = '';
  try {
    if (opts.api !== false) {
      app = await buildApp(deps);
      const address = await app.listen({ port: config.port, host: config.host });
      url = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1');
      // With an ephemeral port (tests), the payment-page links must name the port actually bound.
      if (config.port === 0) config.publicUrl = url;
    }
  } catch (err) {
    // e.g. EADDRINUSE: close what was opened, or the embedded PostgreSQL outlives the failed start.
    await app?.close().catch(() => {});
    await database.close();
    if (traced) await shutdownTelemetry().catch(() => {});
    throw err;
  }
  if (opts.jobs !== false) {
    settlement.start();
    sampler.start();
  }
  const inline = opts.worker !== false && opts.worker !== 'process';
  const worker = !inline ? undefined : createWorker(
    // The worker corrects its own clock; signatures keep this host's.
    { db: database.db, clock: opts.clock ?? systemClock, ids: deps.ids, log, secrets: deps.secrets, metrics: deps.metrics, resolver: opts.resolver },
    { ...workerOptions(config), connectionString: database.url, ...(typeof opts.worker === 'object' ? opts.worker : {}) },
  );
  let supervisor: Supervisor | undefined;
  try {
    await worker?.start();
    if (opts.worker === 'process') {
      if (!secretKey) throw new Error("worker: 'process' needs the secret key from CASHWIRE_SECRET_KEY or the data folder, not opts.secrets");
      // Refuse here, with the same message, rather than leave a child failing at every restart.
      await checkSecretKey(database.db, secrets);
      supervisor = superviseWorker({ databaseUrl: database.url, secretKey: secretKey.toString('base64'), log });
    }
  } catch (err) {
    // e.g. a secret key that cannot open this database's webhook secrets: refuse to run, and leave nothing behind.
    await app?.close().catch(() => {});
    await settlement.stop().catch(() => {});
    await sampler.stop().catch(() => {});
    await database.close();
    if (traced) await shutdownTelemetry().catch(() => {});
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    app,
    deps,
    database,
    worker,
    workerProcess: supervisor,
    stop() {
      stopping ??= (async () => {
        await app?.close(); // stop accepting, let in-flight requests finish
        await settlement.stop();
        await sampler.stop();
        await worker?.stop(); // stop claiming, drain in-flight attempts, release the rest
        await supervisor?.stop(config.worker.drainMs + 5_000); // the same, in the worker's own process
        dbClock?.stop();
        await database.close();
        if (traced) await shutdownTelemetry(); // flushes the spans still buffered
      })();
      return stopping;
    },
  };
}
