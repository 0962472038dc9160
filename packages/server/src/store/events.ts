import { type EventType, type IntentEventRecord, type OperationalData, type OperationalEventType } from '@cashwire/webhooks';
import { claimableIn, enqueueSql, fanoutTargets, NOTIFY_IF_IDLE, wakeAfterCommit } from '../delivery/queue.js';
import type { Clock, IdGenerator } from '../clock.js';
import type { Queryable } from '../db/pool.js';
import type { IntentRow, TransactionRow } from './rows.js';
import { currentTraceparent } from '../telemetry.js';

export interface EventRow {
  seq: number;
  operator_id: string;
  environment: string;
  id: string;
  type: EventType;
  intent_id: string | null;
  data: IntentEventRecord;
  created_at: Date;
  /** A test event (delivery/test-event.ts): delivered to its one endpoint, left out of GET /events, the feed and the stream. */
  test: boolean;
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

export { DELIVERY_CHANNEL } from '../delivery/queue.js';

/**
 * Writes events in the caller's transaction: the outbox half of every state change. An event whose intent names a
 * `webhook_url` also gets its delivery (format `pushcash`, signed with the intent's `webhook_secret`), and the
 * sleeping workers are woken when the transaction commits (NOTIFY_IF_IDLE, and wakeAfterCommit for a worker that fell
 * asleep meanwhile). One statement in all.
 */
export async function insertEvents(
  tx: Queryable,
  deps: { clock: Clock; ids: IdGenerator },
  events: { intent: IntentRow; type: EventType; transaction?: TransactionRow }[],
): Promise<void> {
  if (events.length === 0) return;
  const now = deps.clock.now();
  const c = { op: [] as string[], env: [] as string[], id: [] as string[], type: [] as string[], intent: [] as string[], data: [] as string[],
    url: [] as (string | null)[], secret: [] as (string | null)[], delivery: [] as string[] };
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
  }
  const r = await tx.query<{ made: boolean; notified: boolean }>({
    // Named: planned once per connection. Planning this statement (the fan-out and the one insert into the queue)
    // cost more than running it, and halved the rate of one-event transactions.
    name: 'cw_insert_events_v2',
    text: `WITH ev AS (
       INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at, trace_context)
       SELECT op, env, id, type, intent, data::jsonb, $7, $11::text
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS t(op, env, id, type, intent, data)
       RETURNING 1
     ), dl AS (${enqueueSql(`(SELECT u.op, u.env, u.id AS event_id, NULL::text AS endpoint_id, u.url, u.secret, u.delivery AS id, $7::timestamptz AS due
                              FROM unnest($1::text[], $2::text[], $3::text[], $8::text[], $9::text[], $10::text[]) AS u(op, env, id, url, secret, delivery)
                             WHERE u.url IS NOT NULL) AS t`, '$7')}
     ), fo AS (${enqueueSql(fanoutTargets('unnest($1::text[], $2::text[], $3::text[], $4::text[], $8::text[]) AS s(op, env, id, type, url)', '$7::timestamptz'), '$7')}
     ), made AS (SELECT * FROM dl UNION ALL SELECT * FROM fo
     ), claimable AS (SELECT ${claimableIn('made')} AS yes)
     SELECT (SELECT count(*) FROM ev) AS events, (SELECT yes FROM claimable) AS made,
            CASE WHEN (SELECT yes FROM claimable) THEN ${NOTIFY_IF_IDLE} ELSE false END AS notified`,
    values: [c.op, c.env, c.id, c.type, c.intent, c.data, now, c.url, c.secret, c.delivery, currentTraceparent()],
  });
  if (r.rows[0]?.made && !r.rows[0].notified) wakeAfterCommit(tx);
}

/**
 * An event without a per-payment webhook_url (operational events, Sendcash's Payment.Status, refunds, disputes, limit
 * requests): stored like any event and fanned out to the endpoints subscribed to its type, in the caller's
 * transaction. `intentId` files a refund's or dispute's event under its intent (GET /events?intent_id=…).
 */
export async function insertTenantEvent(
  tx: Queryable,
  deps: { clock: Clock; ids: IdGenerator },
  tenant: { operator_id: string; environment: string },
  type: string,
  data: object,
  intentId: string | null = null,
): Promise<string> {
  const id = deps.ids.next('evt_');
  await insertTenantEvents(tx, deps.clock.now(), [{ ...tenant, id, type, data, intent_id: intentId }]);
  return id;
}

/**
 * Tenant events with ids of the caller's choosing, in one statement: an id that exists already inserts nothing (so an
 * event with a derived id, such as a delivery's delivery.exhausted, is written once however often it is tried).
 */
export async function insertTenantEvents(
  tx: Queryable,
  now: Date,
  events: { operator_id: string; environment: string; id: string; type: string; data: object; intent_id?: string | null }[],
): Promise<void> {
  if (events.length === 0) return;
  const r = await tx.query<{ made: boolean; notified: boolean }>({
    name: 'cw_insert_tenant_events_v3',
    text: `WITH ev AS (
       INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at, trace_context)
       SELECT op, env, id, type, intent, data::jsonb, $5, $7::text
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $6::text[], $8::text[]) AS u(op, env, id, type, data, intent)
       ON CONFLICT DO NOTHING
       RETURNING operator_id AS op, environment AS env, id, type, NULL::text AS url
     ), fo AS (${enqueueSql(fanoutTargets('ev AS s', '$5::timestamptz'), '$5::timestamptz')}
     ), claimable AS (SELECT ${claimableIn('fo')} AS yes)
     SELECT (SELECT count(*) FROM ev), (SELECT yes FROM claimable) AS made, CASE WHEN (SELECT yes FROM claimable) THEN ${NOTIFY_IF_IDLE} ELSE false END AS notified`,
    values: [events.map((e) => e.operator_id), events.map((e) => e.environment), events.map((e) => e.id), events.map((e) => e.type), now,
      events.map((e) => JSON.stringify(e.data)), currentTraceparent(), events.map((e) => e.intent_id ?? null)],
  });
  if (r.rows[0]?.made && !r.rows[0].notified) wakeAfterCommit(tx);
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
