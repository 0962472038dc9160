-- Worker heartbeats, for GET /readyz: each delivery worker upserts its row at most every few seconds while it claims
-- (delivery/heartbeat.ts), deletes it when it stops, and the periodic job prunes rows of workers that died long ago.
-- `beat_at` is the latest sign of life; `claimed_at` the latest beat that followed a claim statement. Times come from
-- the workers' clocks. Unlogged, like idle_workers: it is only about who is alive right now, a beat is not worth a WAL
-- flush, and after a crash of PostgreSQL live workers fill it again within one beat.
-- Runs on PostgreSQL 14 and later.
CREATE UNLOGGED TABLE worker_heartbeats (
  worker      text PRIMARY KEY,
  beat_at     timestamptz NOT NULL,
  claimed_at  timestamptz
);
