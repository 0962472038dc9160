/**
 * The ascending event feed (GET /events/feed) and what its stream (GET /events/stream) reads: the events of the key's
 * operator and environment, oldest first by insertion order (`events.seq`), after a cursor that is an event id.
 *
 * Why a "safe bound": `seq` comes from a sequence, so it is allocated when a row is inserted, not when its transaction
 * commits. Transaction A can take seq 5, transaction B seq 6, and B commit first: a reader that saw 6 and moved its
 * cursor past it would never see 5. So the feed only hands out events up to a bound below which every insert has
 * finished: the sequence's high-water mark, read before looking which transactions hold the table lock that every
 * INSERT INTO events takes (RowExclusiveLock, held until commit or rollback, taken before the seq is drawn). Once none
 * of those is still running, every seq up to that mark is committed or gone for good. Writers are short (one
 * transaction per state change), so the wait is milliseconds; a transaction that holds the lock for longer only delays
 * the feed (it answers a shorter or empty page), never makes it skip an event.
 *
 * Test events (delivery/test-event.ts, marked `test`) are not in the feed: they are for the one endpoint they were
 * sent to. They still draw seqs, so the bound can sit on one; they are skipped like the rows of another type when
 * `types` filters, and a stream that read up to the bound moves its cursor to it, read or not (routes/feed.ts), so it
 * neither reads them again nor waits on them.
 */
import { EVENT_TYPES, renderData, renderPayload, type EventRecord, type PayloadVersion } from '@cashwire/webhooks';
import { errors } from '../../domain/errors.js';
import type { Db } from '../../db/pool.js';
import type { EventRow } from '../../store/events.js';
import type { Caller, Deps } from '../context.js';
import { effectiveSettings } from '../operators/settings.js';

/** Every type the feed can filter on: the catalog and Sendcash's Payment.Status (what endpoints subscribe to). */
export const FEED_TYPES: readonly string[] = [...EVENT_TYPES, 'Payment.Status'];
export const FEED_MAX_LIMIT = 500;
export const FEED_DEFAULT_LIMIT = 100;

export interface FeedItem {
  id: string;
  type: string;
  intent_id: string | null;
  created_at: string;
  /** `data` in the asked payload version. */
  data: Record<string, unknown>;
  /** The exact webhook body a receiver of that version would get for this event now. */
  payload: string;
}

export interface FeedQuery {
  after?: string;
  limit?: number;
  types?: string;
  payload_version?: PayloadVersion;
}

/** The checked form of a feed query: the cursor as a seq, the types as a list, the version decided. */
export interface FeedCursor {
  /** The seq after which to read; 0: from the beginning. */
  seq: string;
  /** The event id of the cursor (what `next_after` is when nothing follows), or null. */
  after: string | null;
  types: string[] | null;
  version: PayloadVersion;
}

/** `types=a,b`: each one of the catalog (400 unknown_event_type otherwise); null when absent. */
export function parseTypes(types: string | undefined): string[] | null {
  if (types === undefined) return null;
  const list = [...new Set(types.split(',').map((t) => t.trim()).filter((t) => t !== ''))];
  if (list.length === 0) throw errors.validation('types', 'types is empty: name one or more event types, comma-separated', 'invalid_value');
  for (const t of list) {
    if (!FEED_TYPES.includes(t)) throw errors.validation('types', `unknown event type ${JSON.stringify(t.slice(0, 100))}; known: ${FEED_TYPES.join(', ')}`, 'unknown_event_type');
  }
  return list;
}

/** Checks the query against the database: the cursor must be an event of this operator and environment (400 invalid_cursor). */
export async function resolveFeedQuery(deps: Deps, caller: Caller, q: FeedQuery): Promise<FeedCursor> {
  const types = parseTypes(q.types);
  const version = q.payload_version ?? effectiveSettings(deps, caller.settings).payload_version;
  if (q.after === undefined) return { seq: '0', after: null, types, version };
  const { rows } = await deps.db.query<{ seq: string }>(
    'SELECT seq FROM events WHERE operator_id = $1 AND environment = $2 AND id = $3',
    [caller.operatorId, caller.environment, q.after],
  );
  if (!rows[0]) throw errors.validation('after', `after ${JSON.stringify(q.after.slice(0, 128))} is not an event of this operator in the ${caller.environment} environment`, 'invalid_cursor');
  return { seq: String(rows[0].seq), after: q.after, types, version };
}

/** The sequence's high-water mark: no seq above it has been drawn yet. */
export async function seqHighWater(db: Db): Promise<string> {
  const { rows } = await db.query<{ hw: string | null }>("SELECT pg_sequence_last_value(pg_get_serial_sequence('events', 'seq')::regclass)::text AS hw");
  return rows[0]?.hw ?? '0';
}

/** The transactions (virtual ids) that hold the insert lock of `events` now, this session aside. */
async function eventWriters(db: Db, among?: string[]): Promise<string[]> {
  const { rows } = await db.query<{ vx: string }>(
    `SELECT DISTINCT virtualtransaction AS vx FROM pg_locks
      WHERE locktype = 'relation' AND relation = 'events'::regclass AND mode = 'RowExclusiveLock' AND granted
        AND pid IS DISTINCT FROM pg_backend_pid() ${among ? 'AND virtualtransaction = ANY($1)' : ''}`,
    among ? [among] : [],
  );
  return rows.map((r) => r.vx);
}

/**
 * The largest seq below which every insert into `events` has finished (see the top of this file), waiting up to
 * `waitMs` for the writers of the moment to finish; null when they did not in time (read nothing this time).
 * No connection is held between the statements.
 */
export async function safeBound(db: Db, waitMs = 1_000, stepMs = 10): Promise<string | null> {
  const hw = await seqHighWater(db); // first: every writer that drew a seq <= hw held the lock before this read
  let writers = await eventWriters(db);
  const deadline = performance.now() + waitMs;
  while (writers.length > 0) {
    if (performance.now() >= deadline) return null;
    await new Promise((r) => setTimeout(r, stepMs));
    writers = await eventWriters(db, writers);
  }
  return hw;
}

export function feedItem(e: EventRow, version: PayloadVersion, now: Date): FeedItem {
  const record = e as unknown as EventRecord;
  return {
    id: e.id, type: e.type, intent_id: e.intent_id, created_at: e.created_at.toISOString(),
    data: renderData(record, version), payload: renderPayload(record, version, now),
  };
}

/**
 * One page after `cursor.seq`, up to `bound` (a safe bound), oldest first, test events left out. `rows` are the rows
 * read (their last seq is where a caller goes on from; fewer than `limit`: nothing more up to the bound).
 */
export async function readFeed(deps: Deps, caller: Caller, cursor: { seq: string; types: string[] | null; version: PayloadVersion }, bound: string, limit: number) {
  const params: unknown[] = [caller.operatorId, caller.environment, cursor.seq, bound];
  const typeFilter = cursor.types ? ` AND type = ANY($${params.push(cursor.types)})` : '';
  const { rows } = await deps.db.query<EventRow & { seq: string }>(
    `SELECT * FROM events WHERE operator_id = $1 AND environment = $2 AND seq > $3 AND seq <= $4 AND NOT test${typeFilter} ORDER BY seq LIMIT ${limit}`,
    params,
  );
  const now = deps.clock.now();
  return { items: rows.map((r) => feedItem(r, cursor.version, now)), rows };
}

/** GET /events/feed: `{data, next_after}`; `next_after` is the id of the last item, or the given `after`, or null. */
export async function eventFeed(deps: Deps, caller: Caller, q: FeedQuery) {
  const cursor = await resolveFeedQuery(deps, caller, q);
  const limit = q.limit ?? FEED_DEFAULT_LIMIT;
  const bound = await safeBound(deps.db);
  const { items } = bound === null ? { items: [] } : await readFeed(deps, caller, cursor, bound, limit);
  return { data: items, next_after: items.length ? items[items.length - 1]!.id : cursor.after };
}

/** The sequence number of the newest event of one operator's environment ('0' for none): the dashboard's live list polls it. */
export async function newestEventSeq(db: Db, operatorId: string, environment: string): Promise<string> {
  const { rows } = await db.query<{ seq: string }>(
    'SELECT seq::text AS seq FROM events WHERE operator_id = $1 AND environment = $2 ORDER BY seq DESC LIMIT 1',
    [operatorId, environment],
  );
  return rows[0]?.seq ?? '0';
}
