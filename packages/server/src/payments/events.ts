import { DEFAULT_PAYLOAD_VERSION, renderData, type EventRecord } from '@cashwire/webhooks';
import { errors } from '../api/errors.js';
import type { EventRow } from '../store/events.js';
import type { Caller, Deps } from './context.js';
import { page, pageFilter } from './pagination.js';

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
  let where = pageFilter({ after: q['created_at.after'], before: q['created_at.before'], cursor: q.cursor }, params);
  if (q.type) where += ` AND type = $${params.push(q.type)}`;
  if (q.intent_id) where += ` AND intent_id = $${params.push(q.intent_id)}`;
  const { rows } = await deps.db.query<EventRow>(
    `SELECT * FROM events WHERE operator_id = $1 AND environment = $2 ${where} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`,
    params,
  );
  const p = page(rows, limit);
  return { data: p.rows.map(publicEvent), next_cursor: p.next_cursor };
}

export async function getEvent(deps: Deps, caller: Caller, id: string) {
  const { rows } = await deps.db.query<EventRow>('SELECT * FROM events WHERE operator_id = $1 AND environment = $2 AND id = $3', [caller.operatorId, caller.environment, id]);
  if (!rows[0]) throw errors.notFound('event', id);
  return publicEvent(rows[0]);
}
