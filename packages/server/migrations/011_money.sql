-- Accounts and their ledger, refunds, disputes, limit requests. Runs on PostgreSQL 14 and later; every key starts
-- with operator_id.

-- An operator's accounts, per environment: `settlement` (deposits settle into it, withdrawals and refunds come out of
-- it) and `dispute` (lost disputes are debited from it). `balance` in cents is moved only together with a
-- transaction row (payments/accounts/accounts.ts), so the ledger and the balance agree.
CREATE TABLE accounts (
  operator_id  text NOT NULL,
  environment  text NOT NULL CHECK (environment IN ('sandbox', 'production')),
  id           text NOT NULL,
  type         text NOT NULL CHECK (type IN ('settlement', 'dispute')),
  name         text NOT NULL,
  balance      bigint NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id)
);
CREATE INDEX accounts_of ON accounts (operator_id, environment, type, created_at);
-- Every operator starts with one settlement and one dispute account in each environment.
INSERT INTO accounts (operator_id, environment, id, type, name, created_at)
SELECT o.id, e.env, 'account_' || substr(md5(o.id || ':' || e.env || ':' || t.type), 1, 22), t.type,
       CASE t.type WHEN 'settlement' THEN 'Settlement' ELSE 'Disputes' END, o.created_at
  FROM operators o CROSS JOIN (VALUES ('sandbox'), ('production')) AS e(env) CROSS JOIN (VALUES ('settlement'), ('dispute')) AS t(type);

-- Transactions: besides an intent's settlement (`intent`), a refund's and a lost dispute's debits (`refund`,
-- `dispute`, with `source_id`). An intent settles once (the partial unique index); amounts are signed cents as the
-- account sees them.
ALTER TABLE transactions
  ADD COLUMN type       text NOT NULL DEFAULT 'intent' CHECK (type IN ('intent', 'refund', 'dispute', 'transfer')),
  ADD COLUMN source_id  text,
  ADD COLUMN environment text;
UPDATE transactions t SET environment = i.environment FROM intents i WHERE i.operator_id = t.operator_id AND i.id = t.intent_id;
DO $$
DECLARE c text;
BEGIN
  SELECT conname INTO c FROM pg_constraint
   WHERE conrelid = 'transactions'::regclass AND contype = 'u' AND pg_get_constraintdef(oid) = 'UNIQUE (operator_id, intent_id)';
  IF c IS NOT NULL THEN EXECUTE format('ALTER TABLE transactions DROP CONSTRAINT %I', c); END IF;
END $$;
CREATE UNIQUE INDEX transactions_settles_once ON transactions (operator_id, intent_id) WHERE type = 'intent';
CREATE INDEX transactions_of_intent ON transactions (operator_id, intent_id, created_at);
CREATE INDEX transactions_of_account ON transactions (operator_id, account_id, created_at);

-- Refunds of deposits: one per intent (the unique key: a repeat, also a concurrent one, finds the first).
CREATE TABLE refunds (
  operator_id  text NOT NULL,
  environment  text NOT NULL,
  id           text NOT NULL,
  intent_id    text NOT NULL,
  amount       bigint NOT NULL CHECK (amount > 0),
  currency     text NOT NULL,
  status       text NOT NULL CHECK (status IN ('approved', 'declined')),
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (operator_id, id),
  UNIQUE (operator_id, intent_id),
  FOREIGN KEY (operator_id, intent_id) REFERENCES intents (operator_id, id)
);
CREATE INDEX refunds_list ON refunds (operator_id, environment, created_at, id);

-- Disputes of intents: one per intent.
CREATE TABLE disputes (
  operator_id  text NOT NULL,
  environment  text NOT NULL,
  id           text NOT NULL,
  intent_id    text NOT NULL,
  amount       bigint NOT NULL CHECK (amount > 0),
  currency     text NOT NULL,
  code         text NOT NULL,
  status       text NOT NULL CHECK (status IN ('created', 'won', 'lost')),
  type         text NOT NULL CHECK (type IN ('push', 'card_only')),
  created_at   timestamptz NOT NULL,
  resolved_at  timestamptz,
  PRIMARY KEY (operator_id, id),
  UNIQUE (operator_id, intent_id),
  FOREIGN KEY (operator_id, intent_id) REFERENCES intents (operator_id, id)
);
CREATE INDEX disputes_list ON disputes (operator_id, environment, created_at, id);

-- Limit requests: a user asks for more (an intent with display_limits); the operator answers (PATCH /user/{id}), and
-- the decision (sandbox: POST /simulate/limits_decision) sets the user's daily limit.
CREATE TABLE limit_requests (
  operator_id           text NOT NULL,
  environment           text NOT NULL,
  id                    text NOT NULL,
  user_id               text NOT NULL,
  status                text NOT NULL CHECK (status IN ('requested', 'approved', 'partial', 'declined')),
  requested_daily_limit bigint,
  approved_daily_limit  bigint,
  operator_info         jsonb,
  created_at            timestamptz NOT NULL,
  decided_at            timestamptz,
  PRIMARY KEY (operator_id, id),
  FOREIGN KEY (operator_id, environment, user_id) REFERENCES users (operator_id, environment, id)
);
CREATE INDEX limit_requests_of_user ON limit_requests (operator_id, environment, user_id, created_at);
