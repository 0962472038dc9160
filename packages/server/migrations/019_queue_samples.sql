-- Queue depth over time, for the dashboard's charts (delivery/stats.ts owns every statement on these tables).
-- A sampler in each process that runs the background jobs (jobs/queue-sampler.ts) tries once a minute
-- (CASHWIRE_QUEUE_SAMPLE_MS) to write the sample of the current minute; the first process to claim the minute in
-- queue_sample_minutes writes it, in the same statement, and every other process finds the minute taken and writes
-- nothing, whatever their clocks say within the minute. A claimed minute with no row for an operator, an environment
-- or an endpoint means nothing was pending there then (0); a minute never claimed is a gap (no process sampled).
-- Samples older than CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS (default 7) are pruned by the retention job.

CREATE TABLE queue_sample_minutes (
  minute      timestamptz PRIMARY KEY,
  sampled_at  timestamptz NOT NULL
);

CREATE TABLE queue_samples (
  operator_id  text NOT NULL,
  environment  text NOT NULL CHECK (environment IN ('sandbox', 'production')),
  -- A registered endpoint's id, or '' for all the deliveries of the operator's environment (endpoints and payments'
  -- own webhook URLs alike).
  endpoint_id  text NOT NULL,
  minute       timestamptz NOT NULL,
  -- Deliveries pending at that moment (waiting for a retry, in flight, or held), and of them those due then.
  pending      int NOT NULL,
  due          int NOT NULL,
  PRIMARY KEY (operator_id, environment, endpoint_id, minute)
);
-- Retention prunes by age.
CREATE INDEX queue_samples_minute ON queue_samples (minute);
