/**
 * Registered webhook endpoints: an operator registers a URL once, subscribes it to event types, and every event of
 * those types whose payment names no `webhook_url` is delivered to it (fan-out: one delivery per endpoint).
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_PAYLOAD_VERSION, EVENT_TYPES, newStandardSecret, type Format, type PayloadVersion } from '@cashwire/webhooks';
import { errors } from '../domain/errors.js';
import { withTx, type Queryable } from '../db/pool.js';
import { literalForbidden, resolvesToForbidden } from '../security/ssrf.js';
import { insertOperationalEvent } from '../store/events.js';
import type { Caller, Deps } from '../payments/context.js';
import { parseTime } from '../payments/pagination.js';
import { failEndpointDeliveries, fifoHead, HELD, recoverDeliveries, releaseEndpoint, type FifoHead } from './queue.js';

export { HELD } from './queue.js';

export interface EndpointRow {
  operator_id: string;
  environment: 'sandbox' | 'production';
  id: string;
  url: string;
  description: string | null;
  events: string[];
  format: Format;
  payload_version: PayloadVersion;
  secret: string;
  previous_secret: string | null;
  previous_expires_at: Date | null;
  status: 'enabled' | 'disabled';
  disabled_reason: string | null;
  disabled_at: Date | null;
  max_concurrency: number | null;
  rate_limit_per_s: number | null;
  ordering: 'unordered' | 'fifo';
  circuit_state: 'closed' | 'open';
  circuit_retry_at: Date | null;
  consecutive_failures: number;
  failing_since: Date | null;
  created_at: Date;
  updated_at: Date;
}

export const DEFAULT_ROTATION_GRACE_S = 24 * 3600;

export function newSecret(format: Format): string {
  if (format === 'standard') return newStandardSecret();
  if (format === 'sendcash') return randomBytes(32).toString('hex');
  return `whsk_${randomBytes(32).toString('base64url')}`;
}

/** An endpoint as the API shows it; `waitingOn` (a fifo endpoint's oldest pending delivery) only where it was read. */
export function publicEndpoint(e: EndpointRow, waitingOn?: FifoHead | null) {
  return {
    id: e.id,
    url: e.url,
    description: e.description,
    events: e.events,
    format: e.format,
    payload_version: e.payload_version,
    status: e.status,
    disabled_reason: e.disabled_reason,
    disabled_at: e.disabled_at?.toISOString() ?? null,
    max_concurrency: e.max_concurrency,
    rate_limit_per_s: e.rate_limit_per_s,
    ordering: e.ordering,
    ...(waitingOn === undefined ? {} : {
      // In order: what the rest of the queue waits on (null when nothing is pending).
      waiting_on: waitingOn && {
        delivery_id: waitingOn.id,
        event_id: waitingOn.event_id,
        attempts: waitingOn.attempts,
        in_flight: waitingOn.in_flight,
        next_attempt_at: waitingOn.next_attempt_at.getTime() >= HELD.getTime() ? null : waitingOn.next_attempt_at.toISOString(),
        last_status: waitingOn.last_status,
        last_error: waitingOn.last_error,
        queued_behind: waitingOn.behind,
      },
    }),
    health: {
      circuit: e.circuit_state === 'open' ? 'open' : 'closed',
      circuit_retry_at: e.circuit_retry_at?.toISOString() ?? null,
      consecutive_failures: e.consecutive_failures,
      failing_since: e.failing_since?.toISOString() ?? null,
    },
    secret_rotation: e.previous_expires_at ? { previous_valid_until: e.previous_expires_at.toISOString() } : null,
    created_at: e.created_at.toISOString(),
    updated_at: e.updated_at.toISOString(),
  };
}

/**
 * A destination URL is http(s); in production it must be https and may not name a loopback, private, link-local or
 * metadata address literally (names are checked again on the address actually connected to, at send time).
 */
/** An absolute http(s) URL, or a 400 naming the field. */
export function parseHttpUrl(value: string, field: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw errors.validation(field, `${field} must be an absolute URL`, 'invalid_url');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw errors.validation(field, `${field} must be an http or https URL`, 'invalid_url');
  return u;
}

export function checkDestination(value: string, field: string, environment: 'sandbox' | 'production'): void {
  const u = parseHttpUrl(value, field);
  if (u.username || u.password) throw errors.validation(field, `${field} may not carry credentials`, 'invalid_url');
  if (environment === 'production') {
    if (u.protocol !== 'https:') throw errors.validation(field, `${field} must use https in production`, 'https_required');
    const bad = literalForbidden(u);
    if (bad) throw errors.validation(field, `${field} may not point at ${bad}: loopback, private, link-local and metadata addresses are refused in production`, 'forbidden_address');
  }
}

/** Every type an endpoint can subscribe to: the catalog, and Sendcash's Payment.Status. */
export const SUBSCRIBABLE: readonly string[] = [...EVENT_TYPES, 'Payment.Status'];

function checkEvents(events: string[]): void {
  for (const t of events) {
    if (t !== '*' && !SUBSCRIBABLE.includes(t)) {
      throw errors.validation('events', `unknown event type ${JSON.stringify(t)}; known: ${SUBSCRIBABLE.join(', ')}, or "*"`, 'unknown_event_type');
    }
  }
}

/** The caller's endpoint (its operator and environment only), or 404 `endpoint_not_found`; `lock` for a transaction. */
export async function loadEndpoint(q: Queryable, caller: Caller, id: string, lock = false): Promise<EndpointRow> {
  const { rows } = await q.query<EndpointRow>(
    `SELECT * FROM endpoints WHERE operator_id = $1 AND id = $2 AND environment = $3 AND deleted_at IS NULL${lock ? ' FOR UPDATE' : ''}`,
    [caller.operatorId, id, caller.environment],
  );
  if (!rows[0]) throw errors.notFound('endpoint', id);
  return rows[0];
}

export interface CreateEndpointInput {
  url: string;
  events: string[];
  format?: Format;
  payload_version?: PayloadVersion;
  description?: string;
  max_concurrency?: number;
  rate_limit_per_s?: number;
  ordering?: 'unordered' | 'fifo';
}

/** In production, a name that resolves to a forbidden address now is refused now (and at every send). */
export async function checkResolvedDestination(deps: Deps, value: string, field: string, environment: 'sandbox' | 'production'): Promise<void> {
  checkDestination(value, field, environment);
  if (environment !== 'production') return;
  const host = new URL(value).hostname;
  const bad = await resolvesToForbidden(host, deps.resolver);
  if (bad) throw errors.validation(field, `${field} resolves to ${bad}: loopback, private, link-local and metadata addresses are refused in production`, 'forbidden_address');
}

export async function createEndpoint(deps: Deps, caller: Caller, input: CreateEndpointInput) {
  await checkResolvedDestination(deps, input.url, 'url', caller.environment);
  checkEvents(input.events);
  const format = input.format ?? 'pushcash';
  const secret = newSecret(format);
  const now = deps.clock.now();
  const { rows } = await deps.db.query<EndpointRow>(
    `INSERT INTO endpoints (operator_id, environment, id, url, description, events, format, payload_version, secret, max_concurrency, rate_limit_per_s, ordering, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13, $12, $12) RETURNING *`,
    [caller.operatorId, caller.environment, deps.ids.next('ep_'), input.url, input.description ?? null, input.events, format,
      input.payload_version ?? caller.settings.payload_version ?? DEFAULT_PAYLOAD_VERSION, deps.secrets.seal(secret),
      input.max_concurrency ?? null, input.rate_limit_per_s ?? null, now, input.ordering ?? 'unordered'],
  );
  return { ...publicEndpoint(rows[0]!), secret };
}

export async function listEndpoints(deps: Deps, caller: Caller) {
  const { rows } = await deps.db.query<EndpointRow>(
    'SELECT * FROM endpoints WHERE operator_id = $1 AND environment = $2 AND deleted_at IS NULL ORDER BY created_at, id',
    [caller.operatorId, caller.environment],
  );
  return { data: rows.map((e) => publicEndpoint(e)) };
}

export async function getEndpoint(deps: Deps, caller: Caller, id: string) {
  const e = await loadEndpoint(deps.db, caller, id);
  return publicEndpoint(e, e.ordering === 'fifo' ? await fifoHead(deps.db, e, deps.clock.now()) : undefined);
}

export type UpdateEndpointInput = Omit<Partial<CreateEndpointInput>, 'max_concurrency' | 'rate_limit_per_s'> & { max_concurrency?: number | null; rate_limit_per_s?: number | null };

export async function updateEndpoint(deps: Deps, caller: Caller, id: string, patch: UpdateEndpointInput) {
  if (patch.url !== undefined) await checkResolvedDestination(deps, patch.url, 'url', caller.environment);
  if (patch.events !== undefined) checkEvents(patch.events);
  return withTx(deps.db, async (tx) => {
    const e = await loadEndpoint(tx, caller, id, true);
    const next = { ...e, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) } as EndpointRow;
    // A new format needs a secret of its shape: a format change rotates at once, with no grace, and drops the previous
    // secret (of the old format's shape, which the new format could not sign with).
    const formatChanged = next.format !== e.format;
    const secret = formatChanged ? deps.secrets.seal(newSecret(next.format)) : e.secret;
    const { rows } = await tx.query<EndpointRow>(
      `UPDATE endpoints SET url = $3, events = $4, description = $5, format = $6, payload_version = $7, max_concurrency = $8,
              rate_limit_per_s = $9, secret = $10, updated_at = $11, ordering = $13,
              previous_secret = CASE WHEN $12 THEN NULL ELSE previous_secret END,
              previous_expires_at = CASE WHEN $12 THEN NULL ELSE previous_expires_at END
        WHERE operator_id = $1 AND id = $2 RETURNING *`,
      [e.operator_id, e.id, next.url, next.events, next.description, next.format, next.payload_version, next.max_concurrency, next.rate_limit_per_s, secret, deps.clock.now(), formatChanged, next.ordering],
    );
    return publicEndpoint(rows[0]!);
  });
}

/** Disabling holds the endpoint's queued deliveries (kept, not sent); enabling sends them. */
export async function setEnabled(deps: Deps, caller: Caller, id: string, enabled: boolean) {
  return withTx(deps.db, async (tx) => {
    const e = await loadEndpoint(tx, caller, id, true);
    const now = deps.clock.now();
    if (enabled) await enableRow(tx, e, now);
    else await disableRow(deps, tx, e, 'operator', now);
    return publicEndpoint((await loadEndpoint(tx, caller, id))!);
  });
}

export async function enableRow(tx: Queryable, e: Pick<EndpointRow, 'operator_id' | 'id'>, now: Date): Promise<void> {
  await tx.query(
    `UPDATE endpoints SET status = 'enabled', disabled_reason = NULL, disabled_at = NULL, circuit_state = 'closed', circuit_retry_at = NULL,
            consecutive_failures = 0, failing_since = NULL, updated_at = $3
      WHERE operator_id = $1 AND id = $2`,
    [e.operator_id, e.id, now],
  );
  await releaseEndpoint(tx, e, now);
}

/** Marks the endpoint disabled, which holds its queued deliveries. Returns false if it already was. */
export async function disableRow(deps: Pick<Deps, 'clock' | 'ids'>, tx: Queryable, e: Pick<EndpointRow, 'operator_id' | 'id' | 'url' | 'environment'>, reason: string, now: Date): Promise<boolean> {
  const r = await tx.query(
    `UPDATE endpoints SET status = 'disabled', disabled_reason = $3, disabled_at = $4, updated_at = $4
      WHERE operator_id = $1 AND id = $2 AND status = 'enabled'`,
    [e.operator_id, e.id, reason, now],
  );
  // Its deliveries stay as they are: the claim skips a disabled endpoint's lane.
  if (r.rowCount === 0) return false;
  await insertOperationalEvent(tx, deps, { operator_id: e.operator_id, environment: e.environment }, 'endpoint.disabled',
    { endpoint_id: e.id, url: e.url, reason, at: now.toISOString() });
  return true;
}

export async function deleteEndpoint(deps: Deps, caller: Caller, id: string) {
  return withTx(deps.db, async (tx) => {
    const e = await loadEndpoint(tx, caller, id, true);
    const now = deps.clock.now();
    await tx.query(`UPDATE endpoints SET deleted_at = $3, status = 'disabled', disabled_reason = 'deleted', updated_at = $3 WHERE operator_id = $1 AND id = $2`, [e.operator_id, e.id, now]);
    // Nothing more goes to a deleted endpoint; its queued deliveries end as failed, with their attempt logs kept.
    await failEndpointDeliveries(tx, e, now);
    return { id, deleted: true };
  });
}

/**
 * Rotation: the new secret signs from now on. For `standard`, the old one also signs during the grace period (two
 * signatures); for `pushcash` and `sendcash` (one signature per header) only the new one signs, and receivers accept
 * both during the grace period. After it, the old secret never signs again.
 */
export async function rotateSecret(deps: Deps, caller: Caller, id: string, graceS = DEFAULT_ROTATION_GRACE_S) {
  return withTx(deps.db, async (tx) => {
    const e = await loadEndpoint(tx, caller, id, true);
    const secret = newSecret(e.format);
    const now = deps.clock.now();
    const expires = new Date(now.getTime() + graceS * 1000);
    const { rows } = await tx.query<EndpointRow>(
      `UPDATE endpoints SET previous_secret = $3, previous_expires_at = $4, secret = $5, updated_at = $6 WHERE operator_id = $1 AND id = $2 RETURNING *`,
      [e.operator_id, e.id, graceS > 0 ? e.secret : null, graceS > 0 ? expires : null, deps.secrets.seal(secret), now],
    );
    return { ...publicEndpoint(rows[0]!), secret };
  });
}

/** The explicit reveal: the current secret, and the previous one while it is still valid. */
export async function revealSecret(deps: Deps, caller: Caller, id: string) {
  const e = await loadEndpoint(deps.db, caller, id);
  const now = deps.clock.now();
  const previousValid = e.previous_secret && e.previous_expires_at && e.previous_expires_at > now;
  return {
    id: e.id,
    secret: deps.secrets.open(e.secret),
    previous_secret: previousValid ? deps.secrets.open(e.previous_secret!) : null,
    previous_valid_until: previousValid ? e.previous_expires_at!.toISOString() : null,
  };
}

/**
 * POST /webhook/endpoints/{id}/recover: every event in [since, until) whose latest delivery to this endpoint failed
 * expired or went dead gets a new delivery (same event id), signed, to the endpoint's current URL, held while it is disabled.
 */
export async function recoverEndpoint(deps: Deps, caller: Caller, id: string, input: { since: string; until?: string }) {
  const since = parseTime(input.since, 'since')!;
  const until = parseTime(input.until, 'until') ?? deps.clock.now();
  if (until <= since) throw errors.validation('until', 'until must be after since', 'invalid_range');
  const e = await loadEndpoint(deps.db, caller, id);
  const recovered = await recoverDeliveries(deps.db, e, since, until, deps.clock.now(), () => deps.ids.next('dlv_'));
  return { recovered };
}
