-- The delivery engine: one delivery per (event, destination), each with its own attempts.
-- PostgreSQL is the queue: a worker claims due rows with FOR UPDATE SKIP LOCKED and pushes next_attempt_at one lease
-- ahead, so a claim left by a dead process becomes due again when the lease runs out.

CREATE TABLE deliveries (
  operator_id      text NOT NULL,
  id               text NOT NULL,
  environment      text NOT NULL,
  event_id         text NOT NULL,
  url              text NOT NULL,
  format           text NOT NULL CHECK (format IN ('pushcash', 'sendcash', 'standard')),
  payload_version  text NOT NULL,
  secret           text,
  schedule_name    text NOT NULL,
  -- The operator's schedule when the delivery was made; NULL means the default of schedule_name.
  schedule         jsonb,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'expired')),
  attempts         int NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL,
  leased_by        text,
  reclaims         int NOT NULL DEFAULT 0,
  last_status      int,
  last_error       text,
  created_at       timestamptz NOT NULL,
  completed_at     timestamptz,
  PRIMARY KEY (operator_id, id),
  FOREIGN KEY (operator_id, event_id) REFERENCES events (operator_id, id)
);
-- The queue's head: only pending rows are in it.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_event ON deliveries (operator_id, event_id);

CREATE TABLE delivery_attempts (
  operator_id       text NOT NULL,
  delivery_id       text NOT NULL,
  attempt           int NOT NULL,
  worker            text NOT NULL,
  started_at        timestamptz NOT NULL,
  latency_ms        int NOT NULL,
  status_code       int,
  error_code        text,
  response_excerpt  text,
  outcome           text NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed', 'expired')),
  PRIMARY KEY (operator_id, delivery_id, attempt)
);
