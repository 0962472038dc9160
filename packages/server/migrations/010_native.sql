-- Push Native: widget nonces, card and bank credentials, tokens that expire and carry their credential, step-up.
-- Runs on PostgreSQL 14 and later. Every new key starts with operator_id (the Citus distribution column).

-- A widget session (POST /user/{id}/url). `id` is the whole nonce string, which also names the operator, so a call
-- without an API key (the widget page, /applepay/*) finds it through operator_id. Spent by the first token it mints.
CREATE TABLE nonces (
  operator_id  text NOT NULL,
  environment  text NOT NULL,
  id           text NOT NULL,
  user_id      text NOT NULL,
  direction    text NOT NULL CHECK (direction IN ('cash_in', 'cash_out')),
  type         text CHECK (type IN ('apple_pay', 'card_only', 'secure_debit')),
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  spent_at     timestamptz,
  -- Refused cards and bank sign-ins: at MAX_ATTEMPTS (payments/native.ts) the nonce is done, so one widget session
  -- cannot be used to try card after card.
  attempts     int NOT NULL DEFAULT 0,
  PRIMARY KEY (operator_id, id),
  FOREIGN KEY (operator_id, environment, user_id) REFERENCES users (operator_id, environment, id)
);

-- Credentials: one per user and fingerprint. A card's fingerprint is an HMAC of its PAN with a server key (PAN and
-- CVV are never stored); Apple Pay's is `apple_pay:<bt_fingerprint>`; a bank account's `bank:<routing>:<account>`;
-- the payment methods of POST /token (before this migration the only kind) keep `method:<type>`.
ALTER TABLE credentials
  ADD COLUMN type          text,
  ADD COLUMN fingerprint   text,
  ADD COLUMN brand         text,
  ADD COLUMN card_last4    text,
  ADD COLUMN exp_month     int,
  ADD COLUMN exp_year      int,
  ADD COLUMN bank_name     text,
  ADD COLUMN account_last4 text,
  ADD COLUMN routing       text,
  ADD COLUMN authenticated boolean NOT NULL DEFAULT false,
  ADD COLUMN always_step_up boolean NOT NULL DEFAULT false;
UPDATE credentials SET fingerprint = 'method:' || method_type,
  type = CASE method_type WHEN 'secure_debit' THEN 'secure_debit' WHEN 'apple_pay' THEN 'apple_pay_debit' ELSE 'card_only_debit' END;
ALTER TABLE credentials ALTER COLUMN fingerprint SET NOT NULL, ALTER COLUMN type SET NOT NULL,
  ADD CONSTRAINT credentials_type CHECK (type IN ('secure_debit', 'card_only_credit', 'card_only_debit', 'apple_pay_debit'));
DO $$
DECLARE c text;
BEGIN
  SELECT conname INTO c FROM pg_constraint
   WHERE conrelid = 'credentials'::regclass AND contype = 'u'
     AND pg_get_constraintdef(oid) = 'UNIQUE (operator_id, environment, user_id, method_type)';
  IF c IS NOT NULL THEN EXECUTE format('ALTER TABLE credentials DROP CONSTRAINT %I', c); END IF;
END $$;
CREATE UNIQUE INDEX credentials_fingerprint ON credentials (operator_id, environment, user_id, fingerprint);
CREATE INDEX credentials_user ON credentials (operator_id, environment, user_id, created_at);

-- Tokens: minted by POST /token (a payment method), the widget, POST /tokenize or Apple Pay (a credential). New
-- tokens live 15 minutes; rows made before this migration have no expiry. An Apple Pay mint with a
-- transaction_identifier is made once: a repeat (even concurrent) finds the first token.
ALTER TABLE tokens
  ADD COLUMN credential_id          text,
  ADD COLUMN expires_at             timestamptz,
  ADD COLUMN transaction_identifier text;
CREATE UNIQUE INDEX tokens_transaction_identifier ON tokens (operator_id, environment, transaction_identifier)
  WHERE transaction_identifier IS NOT NULL;

-- An authorization that requires authentication stays `created` until its step-up page decides it.
ALTER TABLE intents ADD COLUMN step_up boolean NOT NULL DEFAULT false;
