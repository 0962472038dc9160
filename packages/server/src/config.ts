import path from 'node:path';

export interface RateLimitConfig {
  /** Create requests (users, intents, authorizations, tokens) per key per sliding hour. Default 100. */
  create: number;
  /** All other requests per key per sliding hour. Default 1000. */
  read: number;
  /** Requests of the CLI (`X-Cashwire-Client: cli`), any class, per key per sliding hour: a budget of their own. Default 1000. */
  cli?: number;
  /** Requests of dashboard sessions (/dashboard), per key per sliding hour: a budget of their own. Default 5000. */
  dashboard?: number;
}

export interface Config {
  /** PostgreSQL URL; unset means start the embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /** Where the embedded PostgreSQL and other local state live. Default `./.cashwire`. */
  dataDir: string;
  /** Port of the embedded PostgreSQL. Default 54329. */
  embeddedPgPort: number;
  /** API port. Default 4000. */
  port: number;
  host: string;
  /** Base URL used in intent `url`s. Default `http://localhost:<port>`. */
  publicUrl: string;
  /** A fixed key for the first sandbox operator (scripts). */
  sandboxApiKey: string | undefined;
  rateLimits: RateLimitConfig;
  /**
   * How long a key looked up stays trusted in an API process without a new look (ms): its requests are counted there
   * and written with the next look. A revoked key, or settings changed by another process, take effect within it.
   * 0: every request looked up and counted in the database. Default 1000.
   */
  authCacheMs: number;
  /**
   * How widget nonces end. `local` (default): `_local`, which Push's clients read as "talk to http://localhost:8080";
   * `push`: `_sandbox` / `_production` by environment, which they read as Push's own hosts (for a deployment served
   * under those names). CASHWIRE_NONCE_SUFFIXES.
   */
  nonceSuffixes: 'local' | 'push';
  /** Delay between approval and settlement. Sandbox default 10 s, production default 1 h. */
  settleDelayMs: { sandbox: number; production: number };
  /** How often the settlement job looks for due intents. Default 1000 ms. */
  settlePollMs: number;
  /** Largest accepted request body. Default 64 KiB. */
  bodyLimit: number;
  /** Pool size for the API. Default 20. */
  poolSize: number;
  logLevel: string;
  /** Transactions per page of the Sendcash GraphQL getTransactions. Default 20. */
  graphqlPageSize: number;
  /** Deepest data query the GraphQL API answers (introspection has graphql-js's own guard). Default 6. */
  graphqlMaxDepth: number;
  /** Events and attempts older than this are pruned. Default 30 days. */
  retentionMs: number;
  /** Queue-depth samples (charts): how often a process tries to sample (CASHWIRE_QUEUE_SAMPLE_MS, default 60000), kept how long (CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS, default 7). */
  queueSamples: { everyMs: number; retentionMs: number };
  /**
   * Whether this process's background jobs count the attempt log a minute at a time for the charts
   * (CASHWIRE_COUNT_ATTEMPT_MINUTES, default on; `off` leaves the charts reading the attempt log itself). Counts are
   * kept as long as the queue samples.
   */
  countAttemptMinutes: boolean;
  /** GET /readyz: the oldest due delivery may have waited this long. Default 60 s. */
  readyMaxLagMs: number;
  /** GET /readyz: some delivery worker must have recorded a heartbeat within this window. Default 60 s. */
  readyWorkerMs: number;
  /**
   * How `cashwire start` runs its delivery worker: `process` (default), a child process of its own, so that neither
   * the API nor delivery can starve the other of CPU; `inline`, in the API's process.
   */
  workerMode: 'process' | 'inline';
  /** Delivery workers; see delivery/worker.ts for each default. */
  worker: {
    connectTimeoutMs: number;
    totalTimeoutMs: number;
    concurrency: number;
    batchSize: number;
    leaseMs: number | undefined;
    pollMs: number;
    drainMs: number;
    /** Circuit breaker of endpoints and payment URLs' origins: consecutive failures that open it, and its wait. */
    circuitFailures: number;
    circuitCooldownMs: number;
    /** CASHWIRE_EGRESS_PROXY: an http:// proxy every delivery is tunneled through with CONNECT. Unset: direct. */
    egressProxy: string | undefined;
  };
}

function int(name: string, fallback: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** An http:// URL (user:password@ allowed), or undefined when unset. Never echoed whole: it may carry a password. */
function httpProxy(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const raw = env[name] || undefined;
  if (raw === undefined) return undefined;
  let u: URL | undefined;
  try {
    u = new URL(raw);
  } catch {
    /* below */
  }
  if (!u || u.protocol !== 'http:' || !u.hostname) {
    throw new Error(`${name} must be an http:// URL such as http://proxy.internal:3128, got ${JSON.stringify(raw.replace(/\/\/[^/@]*@/, '//…@'))}`);
  }
  return raw;
}

function nonceSuffixes(env: NodeJS.ProcessEnv): 'local' | 'push' {
  const raw = env.CASHWIRE_NONCE_SUFFIXES || 'local';
  if (raw !== 'local' && raw !== 'push') throw new Error(`CASHWIRE_NONCE_SUFFIXES must be "local" or "push", got ${JSON.stringify(raw)}`);
  return raw;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = int('PORT', 4000, env);
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(env.CASHWIRE_DATA_DIR || '.cashwire'),
    embeddedPgPort: int('CASHWIRE_PG_PORT', 54329, env),
    port,
    host: env.HOST || '0.0.0.0',
    publicUrl: (env.CASHWIRE_PUBLIC_URL || `http://localhost:${port}`).replace(/\/$/, ''),
    sandboxApiKey: env.CASHWIRE_SANDBOX_API_KEY || undefined,
    rateLimits: {
      create: int('CASHWIRE_RATE_LIMIT_CREATE', 100, env),
      read: int('CASHWIRE_RATE_LIMIT_READ', 1000, env),
      cli: int('CASHWIRE_RATE_LIMIT_CLI', 1000, env),
      dashboard: int('CASHWIRE_RATE_LIMIT_DASHBOARD', 5000, env),
    },
    authCacheMs: int('CASHWIRE_AUTH_CACHE_MS', 1000, env),
    nonceSuffixes: nonceSuffixes(env),
    settleDelayMs: {
      sandbox: int('CASHWIRE_SANDBOX_SETTLE_DELAY_MS', 10_000, env),
      production: int('CASHWIRE_PRODUCTION_SETTLE_DELAY_MS', 3_600_000, env),
    },
    settlePollMs: int('CASHWIRE_SETTLE_POLL_MS', 1000, env),
    bodyLimit: int('CASHWIRE_BODY_LIMIT', 65_536, env),
    poolSize: int('CASHWIRE_PG_POOL_SIZE', 20, env),
    logLevel: env.LOG_LEVEL || 'info',
    graphqlPageSize: Math.max(1, Math.min(100, int('CASHWIRE_GRAPHQL_PAGE_SIZE', 20, env))),
    graphqlMaxDepth: Math.max(1, int('CASHWIRE_GRAPHQL_MAX_DEPTH', 6, env)),
    retentionMs: int('CASHWIRE_RETENTION_DAYS', 30, env) * 86_400_000,
    queueSamples: { everyMs: Math.max(1000, int('CASHWIRE_QUEUE_SAMPLE_MS', 60_000, env)), retentionMs: int('CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS', 7, env) * 86_400_000 },
    countAttemptMinutes: !['off', 'false', '0', 'no'].includes((env.CASHWIRE_COUNT_ATTEMPT_MINUTES ?? '').trim().toLowerCase()),
    readyMaxLagMs: int('CASHWIRE_READY_MAX_LAG_MS', 60_000, env),
    readyWorkerMs: int('CASHWIRE_READY_WORKER_MS', 60_000, env),
    workerMode: env.CASHWIRE_WORKER_MODE === 'inline' ? 'inline' : 'process',
    worker: {
      connectTimeoutMs: int('CASHWIRE_WEBHOOK_CONNECT_TIMEOUT_MS', 5_000, env),
      totalTimeoutMs: int('CASHWIRE_WEBHOOK_TIMEOUT_MS', 15_000, env),
      concurrency: int('CASHWIRE_WORKER_CONCURRENCY', 256, env),
      batchSize: int('CASHWIRE_WORKER_BATCH', 200, env),
      leaseMs: env.CASHWIRE_LEASE_MS ? int('CASHWIRE_LEASE_MS', 0, env) : undefined,
      pollMs: int('CASHWIRE_POLL_MS', 1_000, env),
      drainMs: int('CASHWIRE_DRAIN_MS', 10_000, env),
      circuitFailures: Math.max(1, int('CASHWIRE_CIRCUIT_FAILURES', 5, env)),
      circuitCooldownMs: int('CASHWIRE_CIRCUIT_COOLDOWN_MS', 60_000, env),
      egressProxy: httpProxy('CASHWIRE_EGRESS_PROXY', env),
    },
  };
}
