/**
 * What `cashwire listen` needs of the server: the secret it signs forwards with (one per operator, environment and
 * format, made on first use, the same ever after: a receiver keeps verifying across restarts of the CLI, as with
 * `stripe listen`), and the record of each forward as an attempt of a delivery to the destination `cli`.
 */
import { DEFAULT_PAYLOAD_VERSION, type Format, type PayloadVersion } from '@cashwire/webhooks';
import { errors } from '../../domain/errors.js';
import { newSecret } from '../../delivery/endpoints.js';
import { recordExternalAttempt } from '../../delivery/queue.js';
import type { Caller, Deps } from '../context.js';

/** The lane (and the attempt's worker) of a forward recorded by the CLI: never a lane of the engine's. */
export const CLI_DESTINATION = 'cli';

/** The CLI's signing secret for this caller's operator, environment and `format`: made on the first call, then kept. */
export async function cliSecret(deps: Deps, caller: Caller, format: Format): Promise<{ format: Format; secret: string }> {
  const key = [caller.operatorId, caller.environment, format];
  const read = async () => {
    const { rows } = await deps.db.query<{ secret: string }>('SELECT secret FROM cli_secrets WHERE operator_id = $1 AND environment = $2 AND format = $3', key);
    return rows[0] ? deps.secrets.open(rows[0].secret) : undefined;
  };
  const found = await read();
  if (found !== undefined) return { format, secret: found };
  // Concurrent first calls: one insert wins, the others insert nothing and read the winner's (a new statement, so it
  // sees the row the conflict waited for).
  const secret = newSecret(format);
  const { rows } = await deps.db.query<{ secret: string }>(
    `INSERT INTO cli_secrets (operator_id, environment, format, secret, created_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT DO NOTHING RETURNING secret`,
    [...key, deps.secrets.seal(secret), deps.clock.now()],
  );
  if (rows[0]) return { format, secret };
  const winner = await read();
  if (winner === undefined) throw new Error('cli secret: the conflicting row is gone');
  return { format, secret: winner };
}

export interface ForwardInput {
  event_id: string;
  url: string;
  format?: Format;
  payload_version?: PayloadVersion;
  status_code?: number | null;
  error?: string | null;
  latency_ms: number;
  /** The CLI's id of this forward: a repeat of the request (after a lost answer) records nothing more. */
  forward_id?: string;
}

/** Only absolute http(s) URLs: the forward-to URL is shown in the attempt log, never called by the server. */
function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw errors.validation('url', `url ${JSON.stringify(url)} is not an absolute URL`, 'invalid_url');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw errors.validation('url', 'url must be http or https', 'invalid_url');
}

/**
 * POST /cli/deliveries: one forward made by `cashwire listen`, recorded as a delivery of the event to the destination
 * `cli` (the forward-to URL), already ended, with one attempt carrying its status, error and latency. Not pending, so
 * the engine never sends or retries it. Another operator's (or environment's) event is not found.
 */
export async function recordForward(deps: Deps, caller: Caller, input: ForwardInput) {
  checkUrl(input.url);
  const status_code = input.status_code ?? null;
  const error = input.error ?? null;
  if (status_code === null && error === null) throw errors.validation('status_code', 'send status_code (the answer) or error (why there was none)', 'missing_field');
  const now = deps.clock.now();
  const format = input.format ?? 'pushcash';
  const payload_version = input.payload_version ?? caller.settings.payload_version ?? DEFAULT_PAYLOAD_VERSION;
  const started = new Date(now.getTime() - input.latency_ms);
  const r = await recordExternalAttempt(deps.db, {
    operator_id: caller.operatorId, environment: caller.environment, event_id: input.event_id, id: input.forward_id ? `dlv_cli_${input.forward_id}` : deps.ids.next('dlv_'), lane: CLI_DESTINATION,
    worker: CLI_DESTINATION, url: input.url, format, payload_version, status_code, error_code: error, latency_ms: input.latency_ms,
    started_at: started, ended_at: now,
  });
  if (!r) throw errors.notFound('event', input.event_id);
  return {
    id: r.id, destination: CLI_DESTINATION, event_id: input.event_id, url: input.url, format, payload_version, status: r.status, replayed: !r.made,
    status_code, error, latency_ms: input.latency_ms, created_at: started.toISOString(),
  };
}
