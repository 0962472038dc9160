-- Test clocks (sandbox only): how far each operator has advanced its sandbox clock in all, by POST
-- /sandbox/clock/advance (payments/clock/clock.ts). An advance moves the operator's pending sandbox due times earlier
-- (deliveries, settlements, widget sessions, tokens, idempotency keys, circuits, secret rotations) in one transaction
-- with this row; nothing reads the total to decide anything, it is what GET /sandbox/clock shows.
-- Runs on PostgreSQL 14 and later; the key is operator_id (the Citus distribution column).
CREATE TABLE sandbox_clocks (
  operator_id       text PRIMARY KEY REFERENCES operators (id),
  advanced_seconds  bigint NOT NULL DEFAULT 0 CHECK (advanced_seconds >= 0),
  advances          int NOT NULL DEFAULT 0,
  updated_at        timestamptz NOT NULL
);
