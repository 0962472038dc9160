-- The attempt log counted a minute at a time, for the dashboard's charts and GET /webhook/stats (delivery/stats.ts
-- owns every statement on these tables). Without it a chart reads every attempt of its window (joined to its
-- delivery): about 200 ms for an hour and 400 ms for a day at 200,000 attempts an hour, growing with the traffic.
-- With it a chart reads one row per minute, plus the attempts of the few minutes not counted yet.
--
-- Each process that runs the background jobs counts, once a minute (jobs/queue-sampler.ts), the minutes that ended
-- 2 minutes ago or more and were not counted yet (pass 1), and counts each again 10 minutes after it ended (pass 2:
-- an attempt whose row was written late, an outcome batch retried while the database was away, shows then). The
-- first process to claim a (minute, pass) in attempt_minutes writes its rows, in the same statement; the others find
-- it taken. A minute with pass 1 claimed and no row for a scope had no attempt there; a minute not claimed is read
-- from the attempt log. Rows older than CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS (default 7) are pruned.

-- attempt_minutes is not a tenant's table (one row per minute and pass for everyone): under Citus, a reference table,
-- as queue_sample_minutes.
CREATE TABLE attempt_minutes (
  minute      timestamptz NOT NULL,
  pass        smallint NOT NULL CHECK (pass IN (1, 2)),
  counted_at  timestamptz NOT NULL,
  PRIMARY KEY (minute, pass)
);

CREATE TABLE attempt_rollups (
  operator_id  text NOT NULL,
  environment  text NOT NULL CHECK (environment IN ('sandbox', 'production')),
  -- A registered endpoint's id, or '' for all the deliveries of the operator's environment (as queue_samples).
  endpoint_id  text NOT NULL,
  minute       timestamptz NOT NULL,
  succeeded    int NOT NULL,
  retry        int NOT NULL,
  failed       int NOT NULL,
  expired      int NOT NULL,
  held         int NOT NULL,
  -- The minute's exact percentiles (percentile_disc of latency_ms; null when no attempt had a latency).
  p50          int,
  p99          int,
  -- Its latency histogram, for the percentiles of wider buckets: bucket 0 holds 0 ms, bucket i >= 1 holds
  -- [1.1^(i-1), 1.1^i) ms; only the buckets with attempts, in ascending order, with their counts.
  hist_idx     smallint[] NOT NULL,
  hist_n       int[] NOT NULL,
  PRIMARY KEY (operator_id, environment, endpoint_id, minute)
);
-- Retention prunes by age.
CREATE INDEX attempt_rollups_minute ON attempt_rollups (minute);
