/**
 * The events list: filters (type, delivery status including `dead`, intent, a time window), 50 a page, each event with
 * its deliveries' statuses, and live updates while the page is open.
 *
 * Live updates (htmx and its SSE extension, served by assets.ts): the first page opens an EventSource on
 * GET /dashboard/events/live, which sends `changed` whenever the newest event of the session's operator and environment
 * changes (one indexed read per second per open tab, no connection held between reads); the list (#event-list) then
 * fetches itself again from GET /dashboard/events/rows with the same filters, at most once every 2 s, and replaces
 * itself. While a shown event has a pending delivery, the list also refreshes every 5 s, so statuses move from pending
 * to succeeded or failed without a new event. Later pages (a cursor) are not live: they are a fixed slice of history.
 * Each fetch is one request of the dashboard's budget; the stream counts once, when it opens. Without a session the
 * fragment answers `HX-Redirect` to the sign-in (htmx follows it), and the stream answers 204 (an EventSource stops).
 *
 * The time window: two datetime-local inputs read as UTC (the page says so; a browser's local time has no zone in
 * the form), bounds of events.created_at.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { deliveryStatusCounts } from '../../../delivery/queue.js';
import { listEvents } from '../../../payments/events/events.js';
import { newestEventSeq } from '../../../payments/events/feed.js';
import { DomainError, httpStatus } from '../../errors.js';
import { sendSse, sseStreams } from '../../sse.js';
import { DELIVERY_STATUSES, sessionAlive, errorPage, esc, HIDE, layout, PAGE_SIZE, queryOf, send, str, when, type Dash, type Session } from './kit.js';

const LIVE_POLL_MS = 1_000;
/** How long one live stream lasts at most, and how often it checks its session is still good. */
const LIVE_MAX_MS = 30 * 60_000;
const SESSION_CHECK_MS = 15_000;
const PING_MS = 15_000;

interface Filters { type?: string; status?: (typeof DELIVERY_STATUSES)[number]; intentId?: string; from?: string; to?: string; cursor?: string }

/** A datetime-local value ("2026-12-01T18:30" or with seconds), read as UTC, as an ISO string; undefined when not one. */
export function utcOfLocalInput(v: string | undefined): string | undefined | null {
  if (v === undefined) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v);
  if (!m) return null;
  const [y, mo, day, h, mi, sec] = [+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +(m[6] ?? 0)];
  const d = new Date(Date.UTC(y, mo - 1, day, h, mi, sec));
  // Date.UTC rolls 2026-02-31 over to March, month 13 into the next year, second 60 into the next minute: not dates.
  if (Number.isNaN(d.getTime()) || y < 1970 || d.getUTCFullYear() !== y || d.getUTCMonth() !== mo - 1 || d.getUTCDate() !== day
    || d.getUTCHours() !== h || d.getUTCMinutes() !== mi || d.getUTCSeconds() !== sec) return null;
  return d.toISOString();
}

/** "From" includes its own instant: the list's bound is exclusive (created_at.after), so the bound is a millisecond before. */
const inclusiveFrom = (iso: string | undefined) => (iso ? new Date(Date.parse(iso) - 1).toISOString() : undefined);

function filtersOf(req: FastifyRequest): Filters | string {
  const q = queryOf(req);
  const statusIn = str(q.status);
  const status = DELIVERY_STATUSES.find((x) => x === statusIn);
  const cursor = str(q.cursor);
  if (cursor !== undefined && !/^[0-9]{1,18}$/.test(cursor)) return 'That "next" link is not one this dashboard made.';
  const from = str(q.from)?.slice(0, 32);
  const to = str(q.to)?.slice(0, 32);
  if (utcOfLocalInput(from) === null) return `"${from}" is not a date and time: use the picker, or YYYY-MM-DDTHH:MM (UTC).`;
  if (utcOfLocalInput(to) === null) return `"${to}" is not a date and time: use the picker, or YYYY-MM-DDTHH:MM (UTC).`;
  if (from && to && utcOfLocalInput(from)! >= utcOfLocalInput(to)!) return '"From" must be before "to".';
  return { type: str(q.type)?.slice(0, 128), status, intentId: str(q.intent_id)?.slice(0, 128), from, to, cursor };
}

/** The filters as a query string (the cursor left out unless asked). */
function keep(f: Filters, withCursor = false): URLSearchParams {
  const p = new URLSearchParams();
  if (f.type) p.set('type', f.type);
  if (f.status) p.set('status', f.status);
  if (f.intentId) p.set('intent_id', f.intentId);
  if (f.from) p.set('from', f.from);
  if (f.to) p.set('to', f.to);
  if (withCursor && f.cursor) p.set('cursor', f.cursor);
  return p;
}

const withQuery = (path: string, p: URLSearchParams) => (p.size > 0 ? `${path}?${p}` : path);

function summary(counts: Record<string, number> | undefined): string {
  if (!counts) return '<span class="muted">no destination</span>';
  return DELIVERY_STATUSES.filter((st) => counts[st])
    .map((st) => `<span class="status ${st}" data-testid="delivery-summary">${counts[st]! > 1 ? `${counts[st]} ` : ''}${st}</span>`)
    .join(' ');
}

export function eventListRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession, scriptSession } = sessions;
  const open = sseStreams(app);

  /** The list (#event-list): the table, the pager, and (first page only) the attributes that make it refresh itself. */
  async function listHtml(s: Session, f: Filters): Promise<string> {
    const page = await listEvents(deps, s.caller, {
      type: f.type, intent_id: f.intentId, delivery_status: f.status, cursor: f.cursor, limit: PAGE_SIZE,
      'created_at.after': inclusiveFrom(utcOfLocalInput(f.from) ?? undefined), 'created_at.before': utcOfLocalInput(f.to) ?? undefined,
    }, { includeTest: true });
    const counts = await deliveryStatusCounts(deps.db, s.caller.operatorId, page.data.map((e) => e.id));
    const next = page.next_cursor ? withQuery('/dashboard/events', new URLSearchParams([...keep(f), ['cursor', page.next_cursor]])) : null;
    const rowsHtml = page.data.map((e) => `<tr data-testid="event-row" data-event-id="${esc(e.id)}">
  <td data-label="Time" class="nw">${when(e.created_at)}</td>
  <td data-label="Type"><a href="/dashboard/events/${encodeURIComponent(e.id)}" data-testid="event-link">${esc(e.type)}</a>${'test' in e && e.test ? ' <span class="status" data-testid="test-badge" title="A test event: sent to one endpoint only, not in the API\'s list or feed">test</span>' : ''}</td>
  <td data-label="Deliveries">${summary(counts.get(e.id))}</td>
  <td data-label="Intent">${e.intent_id ? `<a href="/dashboard/intents/${encodeURIComponent(e.intent_id)}"><code>${esc(e.intent_id)}</code></a>` : '<span class="muted">–</span>'}</td>
  <td data-label="Event"><code>${esc(e.id)}</code></td></tr>`).join('\n');
    const live = !f.cursor;
    const pending = [...counts.values()].some((c) => (c.pending ?? 0) > 0);
    const attrs = live
      ? ` hx-get="${esc(withQuery('/dashboard/events/rows', keep(f)))}" hx-trigger="sse:changed throttle:2s${pending ? ', every 5s' : ''}" hx-swap="outerHTML"`
      : '';
    return `<div id="event-list" data-testid="event-list" data-live="${live}"${attrs}>
 ${page.data.length === 0 ? '<p class="muted" data-testid="no-events">No events match.</p>' : `<table class="stack"><thead><tr><th>Time (UTC)</th><th>Type</th><th>Deliveries</th><th>Intent</th><th>Event</th></tr></thead><tbody>
 ${rowsHtml}</tbody></table>`}
 ${next ? `<p class="pager"><a href="${esc(next)}" rel="next" id="next">Next ${PAGE_SIZE} →</a></p>` : ''}
</div>`;
  }

  app.get('/dashboard/events', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const f = filtersOf(req);
    if (typeof f === 'string') return errorPage(reply, 400, 'Bad filter', f, s);
    let list: string;
    try {
      list = await listHtml(s, f);
    } catch (e) {
      if (e instanceof DomainError) return errorPage(reply, httpStatus(e), 'Cannot list events', e.message, s);
      throw e;
    }
    const opt = (v: string, label: string) => `<option value="${esc(v)}"${(f.status ?? '') === v ? ' selected' : ''}>${esc(label)}</option>`;
    const live = !f.cursor;
    const body = `<div class="card"><h1>Events</h1>
 <form method="get" action="/dashboard/events" class="filters" data-testid="filters">
  <div><label for="type">Type</label><input id="type" name="type" placeholder="e.g. intent.approved" value="${esc(f.type ?? '')}" maxlength="128"></div>
  <div><label for="status">Delivery status</label><select id="status" name="status">${opt('', 'Any')}${DELIVERY_STATUSES.map((x) => opt(x, x)).join('')}</select></div>
  <div><label for="intent_id">Intent id</label><input id="intent_id" name="intent_id" value="${esc(f.intentId ?? '')}" maxlength="128"></div>
  <div><label for="from">From (UTC)</label><input id="from" name="from" type="datetime-local" step="1" value="${esc(f.from ?? '')}"></div>
  <div><label for="to">To (UTC)</label><input id="to" name="to" type="datetime-local" step="1" value="${esc(f.to ?? '')}"></div>
  <div><button class="primary" type="submit" id="filter">Filter</button> <a href="/dashboard/events">Clear</a></div>
 </form></div>
 <div class="card"${live ? ` hx-ext="sse" sse-connect="${esc(withQuery('/dashboard/events/live', keep(f)))}"` : ''}>
 <p class="muted" data-testid="live-note">${live ? '<span class="status succeeded">live</span> New events and delivery results appear here as they happen.' : 'An earlier page: it does not update. <a href="' + esc(withQuery('/dashboard/events', keep(f))) + '">Back to the newest</a>.'}</p>
 ${list}
 </div>`;
    return send(reply, 200, layout('Events', body, s, live ? ['htmx.min.js', 'sse.js'] : []));
  });

  // The list alone, for htmx to swap in.
  app.get('/dashboard/events/rows', HIDE, async (req, reply) => {
    const s = await scriptSession(req, reply);
    if (s === 'answered') return reply;
    if (!s) return reply.status(200).header('hx-redirect', '/dashboard/sign-in').header('cache-control', 'no-store').send('');
    const f = filtersOf(req);
    if (typeof f === 'string') return errorPage(reply, 400, 'Bad filter', f, s);
    try {
      return send(reply, 200, await listHtml(s, f));
    } catch (e) {
      if (e instanceof DomainError) return errorPage(reply, httpStatus(e), 'Cannot list events', e.message, s);
      throw e;
    }
  });

  // Server-sent events: `changed` when the newest event of the session's environment changes.
  app.get('/dashboard/events/live', { ...HIDE, exposeHeadRoute: false }, async (req, reply) => {
    const s = await scriptSession(req, reply);
    if (s === 'answered') return reply;
    if (!s) return reply.status(204).header('cache-control', 'no-store').send();
    const session = s;
    const { operatorId, environment } = s.caller;
    const nowMs = () => deps.clock.now().getTime();
    const opened = nowMs();
    return sendSse(reply, open, { pingMs: PING_MS }, async (stream) => {
      let last: string | undefined;
      let checked = nowMs();
      await stream.write('retry: 3000\n: connected\n\n');
      while (!stream.closed) {
        // A stream lives LIVE_MAX_MS at most (the browser opens a new one, counted in the budget, with its session
        // checked), and its session is looked at every SESSION_CHECK_MS: signed out, expired or revoked ends it.
        if (nowMs() - opened > LIVE_MAX_MS) return;
        if (nowMs() - checked > SESSION_CHECK_MS) {
          checked = nowMs();
          if (!(await sessionAlive(deps, session).catch(() => true))) {
            await stream.write('event: signed-out\ndata: {}\n\n');
            return;
          }
        }
        try {
          const v = await newestEventSeq(deps.db, operatorId, environment);
          if (last !== undefined && v !== last) await stream.write(`event: changed\ndata: ${v}\n\n`);
          last = v;
        } catch {
          // The database is away for a moment: the next poll tries again; the page keeps what it shows.
        }
        await stream.sleep(LIVE_POLL_MS);
      }
    });
  });
}
