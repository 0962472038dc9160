-- Workers waiting for work. A transaction that makes deliveries NOTIFYs only while one is waiting: a NOTIFY takes a
-- database-wide lock through its commit's WAL flush, which would cap event-producing commits at a fraction of what
-- PostgreSQL can do. Busy workers claim again anyway. Unlogged: it is only about who is asleep right now.
CREATE UNLOGGED TABLE idle_workers (
  worker  text PRIMARY KEY,
  since   timestamptz NOT NULL
);

-- The queue churns: vacuum and analyze it far more often than the default 20% of the table.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE delivery_attempts SET (autovacuum_analyze_scale_factor = 0.02);
