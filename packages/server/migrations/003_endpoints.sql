-- Registered webhook endpoints: fan-out by event type, rotation, health (circuit breaker, auto-disable).

CREATE TABLE endpoints (
  operator_id          text NOT NULL REFERENCES operators (id),
  environment          text NOT NULL CHECK (environment IN ('sandbox', 'production')),
  id                   text NOT NULL,
  url                  text NOT NULL,
  description          text,
  events               text[] NOT NULL,
  format               text NOT NULL CHECK (format IN ('pushcash', 'sendcash', 'standard')),
  payload_version      text NOT NULL,
  -- Secrets are sealed (AES-256-GCM); the previous one signs (standard) or stays valid (others) until it expires.
  secret               text NOT NULL,
  previous_secret      text,
  previous_expires_at  timestamptz,
  status               text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
  disabled_reason      text,
  disabled_at          timestamptz,
  max_concurrency      int CHECK (max_concurrency > 0),
  rate_limit_per_s     int CHECK (rate_limit_per_s > 0),
  circuit_state        text NOT NULL DEFAULT 'closed' CHECK (circuit_state IN ('closed', 'open')),
  circuit_retry_at     timestamptz,
  consecutive_failures int NOT NULL DEFAULT 0,
  failing_since        timestamptz,
  deleted_at           timestamptz,
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id)
);
CREATE INDEX endpoints_fanout ON endpoints (operator_id, environment) WHERE deleted_at IS NULL;

ALTER TABLE deliveries ADD COLUMN endpoint_id text;
CREATE INDEX deliveries_endpoint ON deliveries (operator_id, endpoint_id, status) WHERE endpoint_id IS NOT NULL;
-- Retention prunes by age.
CREATE INDEX events_created ON events (created_at);
CREATE INDEX delivery_attempts_started ON delivery_attempts (started_at);
