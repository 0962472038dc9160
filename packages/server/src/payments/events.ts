import { DEFAULT_PAYLOAD_VERSION, renderData, type EventRecord } from '@cashwire/webhooks';
import { errors } from '../api/errors.js';
import type { EventRow } from '../store/events.js';
import type { Caller, Deps } from './context.js';
import { pageFilter } from './pagination.js';

export function publicEvent(e: EventRow) {
  return { id: e.id, type: e.type, intent_id: e.intent_id, created_at: e.created_at.toISOString(), data: renderData(e as EventRecord, DEFAULT_PAYLOAD_VERSION) };
}

export async function listEvents(
  deps: Deps,
  caller: Caller,
  q: { type?: string; intent_id?: string; cursor?: string; limit?: number; 'created_at.after'?: string; 'created_at.before'?: string },
) {
  const limit = q.limit ?? 25;
  const params: unknown[] = [caller.operatorId, caller.environment];
  // Events are ordered by their insertion sequence, so two events of one instant keep their order.
  let where = pageFilter({ after: q['created_at.after'], before: q['created_at.before'] }, params);
  if (q.cursor) {
    const seq = /^[0-9]{1,18}$/.test(q.cursor) ? q.cursor : undefined;
    if (!seq) throw errors.validation('cursor', 'cursor is not one this API returned', 'invalid_cursor');
    where += ` AND seq < $${params.push(seq)}`;
  }
  if (q.type) where += ` AND type = $${params.push(q.type)}`;
  if (q.intent_id) where += ` AND intent_id = $${params.push(q.intent_id)}`;
  const { rows } = await deps.db.query<EventRow>(
    `SELECT * FROM events WHERE operator_id = $1 AND environment = $2 ${where} ORDER BY seq DESC LIMIT ${limit + 1}`,
    params,
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data: data.map(publicEvent), next_cursor: more ? String(data[data.length - 1]!.seq) : null };
}

export async function getEvent(deps: Deps, caller: Caller, id: string) {
  const { rows } = await deps.db.query<EventRow>('SELECT * FROM events WHERE operator_id = $1 AND environment = $2 AND id = $3', [caller.operatorId, caller.environment, id]);
  if (!rows[0]) throw errors.notFound('event', id);
  return publicEvent(rows[0]);
}
