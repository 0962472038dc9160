-- Cashwire schema, version 1. Runs on PostgreSQL 14 and later.
-- Every tenant-owned row carries operator_id and every key starts with it, so the schema can be distributed
-- by operator (Citus) and every lookup is scoped to one tenant.

CREATE TABLE operators (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL
);

CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  operator_id  text NOT NULL REFERENCES operators (id),
  environment  text NOT NULL CHECK (environment IN ('sandbox', 'production')),
  key_hash     bytea NOT NULL UNIQUE,
  prefix       text NOT NULL,
  name         text,
  created_at   timestamptz NOT NULL,
  revoked_at   timestamptz
);
CREATE INDEX api_keys_operator ON api_keys (operator_id);

CREATE TABLE users (
  operator_id      text NOT NULL REFERENCES operators (id),
  environment      text NOT NULL,
  id               text NOT NULL,
  tag              text,
  status           text NOT NULL,
  daily_limit      bigint NOT NULL,
  data             jsonb NOT NULL,
  created_at       timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id),
  UNIQUE (operator_id, environment, id)
);
CREATE UNIQUE INDEX users_tag ON users (operator_id, environment, tag) WHERE tag IS NOT NULL;
CREATE INDEX users_list ON users (operator_id, environment, created_at, id);

CREATE TABLE credentials (
  operator_id   text NOT NULL,
  environment   text NOT NULL,
  id            text NOT NULL,
  user_id       text NOT NULL,
  method_type   text NOT NULL,
  display_name  text NOT NULL,
  last4         text NOT NULL,
  created_at    timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id),
  UNIQUE (operator_id, environment, user_id, method_type),
  FOREIGN KEY (operator_id, environment, user_id) REFERENCES users (operator_id, environment, id)
);

CREATE TABLE intents (
  operator_id        text NOT NULL,
  environment        text NOT NULL,
  id                 text NOT NULL,
  user_id            text NOT NULL,
  direction          text NOT NULL CHECK (direction IN ('cash_in', 'cash_out')),
  amount             bigint NOT NULL CHECK (amount > 0),
  currency           text NOT NULL,
  status             text NOT NULL CHECK (status IN ('created', 'pending', 'approved', 'declined', 'canceled')),
  decline_category   text,
  approval_mode      text NOT NULL,
  rail               text NOT NULL,
  type               text NOT NULL,
  tag                text,
  idempotency_key    text,
  redirect_url       text,
  webhook_url        text,
  webhook_secret     text,
  account_id         text,
  display_limits     boolean,
  display_loyalty    boolean,
  credential_id      text,
  session_token      text NOT NULL,
  limits_utilization jsonb,
  decided_at         timestamptz,
  settle_at          timestamptz,
  settled_at         timestamptz,
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id),
  FOREIGN KEY (operator_id, environment, user_id) REFERENCES users (operator_id, environment, id)
);
CREATE INDEX intents_list ON intents (operator_id, environment, created_at, id);
-- Limits and the deposit-before-withdrawal rule sum a user's decided intents.
CREATE INDEX intents_user_decided ON intents (operator_id, user_id, decided_at) WHERE status IN ('approved', 'pending');
-- The settlement job's queue: approved, not yet settled.
CREATE INDEX intents_to_settle ON intents (settle_at) WHERE status = 'approved' AND settled_at IS NULL;

CREATE TABLE transactions (
  operator_id  text NOT NULL,
  id           text NOT NULL,
  intent_id    text NOT NULL,
  amount       bigint NOT NULL,
  currency     text NOT NULL,
  status       text NOT NULL,
  date         date NOT NULL,
  account_id   text,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id),
  UNIQUE (operator_id, intent_id),
  FOREIGN KEY (operator_id, intent_id) REFERENCES intents (operator_id, id)
);

CREATE TABLE tokens (
  operator_id   text NOT NULL,
  environment   text NOT NULL,
  id            text NOT NULL,
  user_id       text NOT NULL,
  type          text NOT NULL,
  intent_id     text,
  response_code int,
  created_at    timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id),
  FOREIGN KEY (operator_id, environment, user_id) REFERENCES users (operator_id, environment, id)
);

-- The outbox: every state change that causes a webhook writes its event here in the same transaction.
CREATE TABLE events (
  seq          bigint GENERATED ALWAYS AS IDENTITY,
  operator_id  text NOT NULL,
  environment  text NOT NULL,
  id           text NOT NULL,
  type         text NOT NULL,
  intent_id    text,
  data         jsonb NOT NULL,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id)
);
CREATE INDEX events_list ON events (operator_id, environment, seq);
CREATE INDEX events_intent ON events (operator_id, intent_id);

CREATE TABLE idempotency_keys (
  operator_id   text NOT NULL,
  environment   text NOT NULL,
  scope         text NOT NULL,
  key           text NOT NULL,
  request_hash  text NOT NULL,
  status_code   int NOT NULL,
  response      jsonb NOT NULL,
  created_at    timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (operator_id, environment, scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Rate-limit counters: one row per key, request class and fixed window. Unlogged: a lost count after a crash is
-- harmless, and a transaction that writes only unlogged tables does not wait for a WAL flush.
CREATE UNLOGGED TABLE rate_counters (
  key_id        text NOT NULL,
  class         text NOT NULL,
  window_start  bigint NOT NULL,
  count         int NOT NULL,
  PRIMARY KEY (key_id, class, window_start)
);
