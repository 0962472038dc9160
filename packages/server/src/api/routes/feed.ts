/**
 * The ascending event feed: GET /events/feed (pages, oldest first, resumable with `after`) and GET /events/stream (the
 * same items as server-sent events, backlog then live, resumable with `Last-Event-ID`). Both with an API key (read
 * budget); a stream counts as one request, when it opens. Statements in payments/events/feed.ts.
 *
 * The stream polls the database (every POLL_MS) without holding a connection between polls: each poll first reads the
 * sequence's high-water mark (one cheap statement) and reads events only when it moved past what the stream has seen.
 * It ends when the client goes away, and when the server closes (a preClose hook ends every open stream, so that
 * `app.close()` does not wait on them).
 */
import { sendSse, sseStreams } from '../sse.js';
import { PAYLOAD_VERSIONS } from '@cashwire/webhooks';
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import { eventFeed, FEED_MAX_LIMIT, readFeed, resolveFeedQuery, safeBound, seqHighWater } from '../../payments/events/feed.js';
import { keyAuth } from '../auth.js';
import { errorsOf, Nullable } from '../schemas.js';

const POLL_MS = 250;
const PAGE = 200;
/** `: ping` every this many ms (CASHWIRE_STREAM_PING_MS, default 15 s), so that proxies and clients see a live stream. */
const pingMs = () => {
  const n = Number(process.env.CASHWIRE_STREAM_PING_MS);
  return Number.isFinite(n) && n >= 10 ? n : 15_000;
};

const Version = Type.Union(PAYLOAD_VERSIONS.map((v) => Type.Literal(v)), { description: "payload version of `data` and `payload`; default: the operator's setting" });
const Types = Type.String({ minLength: 1, maxLength: 2048, description: 'comma-separated event types of the catalog (also Payment.Status)' });
const After = Type.String({ minLength: 1, maxLength: 128, description: 'an event id: the items after it. None: from the oldest' });

const FeedQuery = Type.Object({
  after: Type.Optional(After),
  limit: Type.Optional(Type.String({ pattern: '^(500|[1-4][0-9]{2}|[1-9][0-9]?)$', description: `1 to ${FEED_MAX_LIMIT}, default 100` })),
  types: Type.Optional(Types),
  payload_version: Type.Optional(Version),
});
const StreamQuery = Type.Object({ after: Type.Optional(After), types: Type.Optional(Types), payload_version: Type.Optional(Version) });
const StreamHeaders = Type.Object({ 'last-event-id': Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'resume after this event id (wins over `after`)' })) });

const FeedItem = Type.Object({
  id: Type.String(),
  type: Type.String(),
  intent_id: Nullable(Type.String()),
  created_at: Type.String(),
  data: Type.Object({}, { additionalProperties: true }),
  payload: Type.String({ description: 'the exact webhook body a receiver of this payload version would get now' }),
});
const FeedPage = Type.Object({
  data: Type.Array(FeedItem),
  next_after: Nullable(Type.String({ description: 'pass as `after` for the next page: the last item, or the `after` given when no item followed' })),
});

export const feedRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);
  const open = sseStreams(app);

  app.get<{ Querystring: Static<typeof FeedQuery> }>('/events/feed', {
    schema: {
      querystring: FeedQuery, response: { 200: FeedPage, ...errorsOf(400, 401, 429) },
      summary: "The event feed, oldest first: after (an event id), limit (1–500), types, payload_version → {data, next_after}",
    },
    onRequest: auth('read'),
  }, async (req) => {
    const q = req.query;
    return eventFeed(deps, req.caller, { after: q.after, limit: q.limit ? Number(q.limit) : undefined, types: q.types, payload_version: q.payload_version });
  });

  app.get<{ Querystring: Static<typeof StreamQuery>; Headers: Static<typeof StreamHeaders> }>('/events/stream', {
    schema: {
      querystring: StreamQuery, headers: StreamHeaders, response: errorsOf(400, 401, 429),
      summary: 'The event feed as server-sent events (text/event-stream): the backlog after the cursor, then new events; resumes from Last-Event-ID',
    },
    exposeHeadRoute: false,
    onRequest: auth('read'),
  }, async (req, reply) => {
    const caller = req.caller;
    const after = req.headers['last-event-id'] ?? req.query.after;
    // Checked before the stream opens: a bad cursor or type is a 400 in the error shape.
    const cursor = await resolveFeedQuery(deps, caller, { after, types: req.query.types, payload_version: req.query.payload_version });
    return sendSse(reply, open, {
      pingMs: pingMs(),
      onError: (err) => req.log.warn({ err }, 'event stream: a poll failed; the stream ends (the client resumes with Last-Event-ID)'),
    }, async (stream) => {
      let seq = cursor.seq;
      await stream.write(': connected\n\n');
      while (!stream.closed) {
        const hw = await seqHighWater(deps.db);
        if (Number(hw) > Number(seq)) {
          const bound = await safeBound(deps.db, POLL_MS);
          // Read up to the bound, page by page, before sleeping again.
          while (bound !== null && !stream.closed) {
            const { items, rows } = await readFeed(deps, caller, { ...cursor, seq }, bound, PAGE);
            for (const item of items) {
              if (stream.closed) break;
              await stream.write(`id: ${item.id}\nevent: ${item.type}\ndata: ${JSON.stringify(item)}\n\n`);
            }
            if (stream.closed) break;
            // With a type filter, rows skipped up to the bound need not be read again.
            if (rows.length < PAGE) {
              seq = bound;
              break;
            }
            seq = String(rows[rows.length - 1]!.seq);
          }
        }
        await stream.sleep(POLL_MS);
      }
    });
  });
};
