import type { Logger } from 'pino';
import type { Clock, IdGenerator } from '../clock.js';
import type { Config } from '../config.js';
import type { Db } from '../db/pool.js';
import type { Environment } from '../domain/decision.js';
import type { OperatorSettings } from '../store/rows.js';
import type { Metrics } from '../metrics.js';
import type { Fingerprinter, SecretBox } from '../security/secrets.js';
import type { LookupFn } from '../security/ssrf.js';
import type { RailAdapter } from './rail.js';

/** Everything the services need, passed in: no hidden singletons. */
export interface Deps {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  config: Config;
  log: Logger;
  rail: RailAdapter;
  /** Seals and opens webhook secrets at rest; fingerprints card numbers. */
  secrets: SecretBox & Fingerprinter;
  metrics: Metrics;
  /** DNS for the address checks of production destinations; default dns.lookup. */
  resolver?: LookupFn;
}

/** Who is calling: the API key decides the operator and the environment. */
export interface Caller {
  keyId: string;
  operatorId: string;
  operatorName: string;
  environment: Environment;
  settings: OperatorSettings;
}
