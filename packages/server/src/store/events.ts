import { DEFAULT_PAYLOAD_VERSION, type EventType, type IntentEventRecord, type OperationalData, type OperationalEventType } from '@cashwire/webhooks';
import { scheduleNameFor } from '../domain/retry.js';
import type { Clock, IdGenerator } from '../clock.js';
import type { Queryable } from '../db/pool.js';
import type { IntentRow, TransactionRow } from './rows.js';

export interface EventRow {
  seq: number;
  operator_id: string;
  environment: string;
  id: string;
  type: EventType;
  intent_id: string | null;
  data: IntentEventRecord;
  created_at: Date;
}

export function intentEventData(intent: IntentRow, transaction?: TransactionRow): IntentEventRecord {
  return {
    id: intent.id,
    tag: intent.tag ?? intent.idempotency_key,
    idempotency_key: intent.idempotency_key,
    direction: intent.direction,
    amount: intent.amount,
    currency: intent.currency,
    status: intent.status,
    rail: intent.rail,
    type: intent.type,
    decline_category: intent.decline_category,
    limits_utilization: intent.limits_utilization,
    transaction: transaction ? { ...transaction, created_at: transaction.created_at.toISOString() } : null,
  };
}

export const DELIVERY_CHANNEL = 'cashwire_deliveries';

/**
 * Wakes sleeping workers when the transaction commits, only if one is asleep (see migration 005). A worker marks
 * itself asleep before its last look at the queue, so a commit either sees the mark and notifies, or happened before
 * that last look and is claimed by it.
 */
export const WAKE_IF_IDLE = `CASE WHEN EXISTS (SELECT 1 FROM idle_workers) THEN pg_notify('${DELIVERY_CHANNEL}', '') END`;

/**
 * Fan-out: an event whose payment names no webhook_url goes to every registered endpoint of its operator and
 * environment subscribed to its type, one delivery each. A disabled endpoint's delivery is held (kept, not sent)
 * until it is enabled; one behind an open circuit waits for the circuit's next probe. The delivery id is derived from
 * the event and the endpoint, so the pair is delivered once. `source` yields (op, env, id, type, url).
 */
export function FANOUT_SQL(source: string, now: string): string {
  return `
       INSERT INTO deliveries (operator_id, id, environment, event_id, endpoint_id, url, format, payload_version, secret, schedule_name, schedule, next_attempt_at, created_at)
       SELECT t.op, 'dlv_' || substr(t.id, 5) || '_' || substr(e.id, 4), t.env, t.id, e.id, e.url, e.format, e.payload_version, NULL,
              CASE WHEN e.format = 'sendcash' THEN 'sendcash' ELSE t.env END,
              o.settings->'retry_schedules'->(CASE WHEN e.format = 'sendcash' THEN 'sendcash' ELSE t.env END),
              CASE WHEN e.status = 'disabled' THEN '9999-12-31T00:00:00Z'::timestamptz
                   WHEN e.circuit_state = 'open' THEN greatest(${now}, e.circuit_retry_at) ELSE ${now} END,
              ${now}
         FROM ${source}
         JOIN endpoints e ON e.operator_id = t.op AND e.environment = t.env AND e.deleted_at IS NULL
                         AND (t.type = ANY (e.events) OR '*' = ANY (e.events))
         JOIN operators o ON o.id = t.op
        WHERE t.url IS NULL
       RETURNING 1`;
}

/**
 * Writes events in the caller's transaction: the outbox half of every state change. An event whose intent names a
 * `webhook_url` also gets its delivery (format `pushcash`, signed with the intent's `webhook_secret`), and the
 * workers are woken by a NOTIFY that PostgreSQL sends only if the transaction commits. One statement in all.
 */
export async function insertEvents(
  tx: Queryable,
  deps: { clock: Clock; ids: IdGenerator },
  events: { intent: IntentRow; type: EventType; transaction?: TransactionRow }[],
): Promise<void> {
  if (events.length === 0) return;
  const now = deps.clock.now();
  const c = { op: [] as string[], env: [] as string[], id: [] as string[], type: [] as string[], intent: [] as string[], data: [] as string[],
    url: [] as (string | null)[], secret: [] as (string | null)[], delivery: [] as string[], schedule: [] as string[] };
  for (const e of events) {
    c.op.push(e.intent.operator_id);
    c.env.push(e.intent.environment);
    c.id.push(deps.ids.next('evt_'));
    c.type.push(e.type);
    c.intent.push(e.intent.id);
    c.data.push(JSON.stringify(intentEventData(e.intent, e.transaction)));
    c.url.push(e.intent.webhook_url);
    c.secret.push(e.intent.webhook_secret);
    c.delivery.push(deps.ids.next('dlv_'));
    c.schedule.push(scheduleNameFor(e.intent.environment, 'pushcash'));
  }
  await tx.query(
    `WITH ev AS (
       INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at)
       SELECT op, env, id, type, intent, data::jsonb, $7
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS t(op, env, id, type, intent, data)
       RETURNING 1
     ), dl AS (
       INSERT INTO deliveries (operator_id, id, environment, event_id, url, format, payload_version, secret, schedule_name, schedule, next_attempt_at, created_at)
       SELECT t.op, t.delivery, t.env, t.id, t.url, 'pushcash', coalesce(o.settings->>'payload_version', '${DEFAULT_PAYLOAD_VERSION}'), t.secret,
              t.schedule, o.settings->'retry_schedules'->t.schedule, $7, $7
         FROM unnest($1::text[], $2::text[], $3::text[], $8::text[], $9::text[], $10::text[], $11::text[]) AS t(op, env, id, url, secret, delivery, schedule)
         JOIN operators o ON o.id = t.op
        WHERE t.url IS NOT NULL
       RETURNING 1
     ), fo AS (${FANOUT_SQL('unnest($1::text[], $2::text[], $3::text[], $4::text[], $8::text[]) AS t(op, env, id, type, url)', '$7')}
     )
     SELECT (SELECT count(*) FROM ev) AS events,
            CASE WHEN EXISTS (SELECT 1 FROM dl) OR EXISTS (SELECT 1 FROM fo) THEN ${WAKE_IF_IDLE} END AS notified`,
    [c.op, c.env, c.id, c.type, c.intent, c.data, now, c.url, c.secret, c.delivery, c.schedule],
  );
}

/**
 * An event that is not about an intent (operational events, Sendcash's Payment.Status): stored like any event and
 * fanned out to the endpoints subscribed to its type, in the caller's transaction.
 */
export async function insertTenantEvent(
  tx: Queryable,
  deps: { clock: Clock; ids: IdGenerator },
  tenant: { operator_id: string; environment: string },
  type: string,
  data: object,
): Promise<string> {
  const id = deps.ids.next('evt_');
  await tx.query(
    `WITH ev AS (
       INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at) VALUES ($1, $2, $3, $4, NULL, $5, $6) RETURNING 1
     ), fo AS (${FANOUT_SQL('(SELECT $1::text AS op, $2::text AS env, $3::text AS id, $4::text AS type, NULL::text AS url) AS t', '$6::timestamptz')}
     )
     SELECT (SELECT count(*) FROM ev), CASE WHEN EXISTS (SELECT 1 FROM fo) THEN ${WAKE_IF_IDLE} END`,
    [tenant.operator_id, tenant.environment, id, type, JSON.stringify(data), deps.clock.now()],
  );
  return id;
}

/** delivery.exhausted, endpoint.disabled, endpoint.recovered. */
export function insertOperationalEvent(
  tx: Queryable,
  deps: { clock: Clock; ids: IdGenerator },
  tenant: { operator_id: string; environment: string },
  type: OperationalEventType,
  data: OperationalData,
): Promise<string> {
  return insertTenantEvent(tx, deps, tenant, type, data);
}
