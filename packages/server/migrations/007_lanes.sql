-- Fair scheduling. Every delivery belongs to a lane: its destination within its operator, a registered endpoint
-- (`ep:<endpoint id>`) or the origin of a payment's own webhook_url (`url:<environment>:<scheme://host:port>`). Workers
-- claim lane by lane, round robin across operators and then across the lanes of each operator, and a lane's cap,
-- rate limit and circuit are enforced in the claim itself, across every worker process (delivery/queue.ts).
-- Runs on PostgreSQL 14 and later, in place, on a database with queued deliveries.

-- The lane of a delivery. IMMUTABLE: the same inputs always give the same lane.
CREATE FUNCTION cw_lane(endpoint_id text, environment text, url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN endpoint_id IS NOT NULL THEN 'ep:' || endpoint_id
    ELSE 'url:' || environment || ':' || coalesce(
      lower(substring(url FROM '^([A-Za-z][A-Za-z0-9+.-]*://)')) || lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#]*)')),
      url)
  END
$$;

ALTER TABLE deliveries ADD COLUMN lane text;
-- Creation order within one instant (events written by one statement), for endpoints that deliver in order. Old rows
-- have none and sort first within their instant. A default that is not a constant would rewrite the table: the
-- default is set after the column is added, so only new rows take it.
CREATE SEQUENCE deliveries_seq;
ALTER TABLE deliveries ADD COLUMN seq bigint;
ALTER TABLE deliveries ALTER COLUMN seq SET DEFAULT nextval('deliveries_seq');

UPDATE deliveries SET lane = cw_lane(endpoint_id, environment, url) WHERE status = 'pending';

-- A lane's queue, in due order; also how the claim finds the lanes that have pending work (one index descent each).
CREATE INDEX deliveries_lane ON deliveries (operator_id, lane, next_attempt_at) WHERE status = 'pending';
-- A lane's attempts in flight (leased), counted at each claim to hold its cap.
CREATE INDEX deliveries_lane_leased ON deliveries (operator_id, lane) WHERE status = 'pending' AND leased_by IS NOT NULL;

-- A lane's scheduling state. Rows are made by the claim the first time a lane has work; producers never touch them.
CREATE TABLE delivery_lanes (
  operator_id           text NOT NULL,
  lane                  text NOT NULL,
  -- Round robin: the claim serves the lanes least recently served first (a global sequence, not a clock).
  served                bigint,
  -- The endpoint's rate limit, as a token bucket shared by every worker.
  tokens                double precision,
  tokens_at             timestamptz,
  -- The circuit of a per-payment origin (registered endpoints keep theirs in `endpoints`).
  circuit_state         text NOT NULL DEFAULT 'closed' CHECK (circuit_state IN ('closed', 'open')),
  circuit_retry_at      timestamptz,
  consecutive_failures  int NOT NULL DEFAULT 0,
  failing_since         timestamptz,
  PRIMARY KEY (operator_id, lane)
) WITH (fillfactor = 50);
CREATE SEQUENCE delivery_lanes_served;

-- `fifo`: one delivery in flight, in event order; a failing head holds back the rest of its endpoint only.
ALTER TABLE endpoints ADD COLUMN ordering text NOT NULL DEFAULT 'unordered' CHECK (ordering IN ('unordered', 'fifo'));

-- The global queue head is no longer read: claims read lane by lane (deliveries_lane). Kept, it cost every claim and
-- every retry an index write, and the planner took it for a lane's queue (walking every lane's due rows to find one).
DROP INDEX deliveries_due;
