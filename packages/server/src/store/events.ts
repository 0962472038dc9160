import type { EventType, IntentEventRecord } from '@cashwire/webhooks';
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

/** Writes an event in the caller's transaction: the outbox half of every state change. */
export async function insertEvents(
  tx: Queryable,
  deps: { clock: Clock; ids: IdGenerator },
  events: { intent: IntentRow; type: EventType; transaction?: TransactionRow }[],
): Promise<void> {
  if (events.length === 0) return;
  const now = deps.clock.now();
  const cols = { op: [] as string[], env: [] as string[], id: [] as string[], type: [] as string[], intent: [] as string[], data: [] as string[] };
  for (const e of events) {
    cols.op.push(e.intent.operator_id);
    cols.env.push(e.intent.environment);
    cols.id.push(deps.ids.next('evt_'));
    cols.type.push(e.type);
    cols.intent.push(e.intent.id);
    cols.data.push(JSON.stringify(intentEventData(e.intent, e.transaction)));
  }
  await tx.query(
    `INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at)
     SELECT op, env, id, type, intent, data::jsonb, $7
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS t(op, env, id, type, intent, data)`,
    [cols.op, cols.env, cols.id, cols.type, cols.intent, cols.data, now],
  );
}
