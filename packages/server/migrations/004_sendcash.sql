-- The Sendcash Pay flavour: bank transfers confirmed by Payment.Status webhooks, listed over GraphQL.

-- GraphQL keys (HTTP Basic: public key as user, secret key as password). The secret key also signs charges.
CREATE TABLE sendcash_keys (
  operator_id  text NOT NULL REFERENCES operators (id),
  environment  text NOT NULL CHECK (environment IN ('sandbox', 'production')),
  public_key   text NOT NULL UNIQUE,
  secret_key   text NOT NULL,
  endpoint_id  text,
  created_at   timestamptz NOT NULL,
  rotated_at   timestamptz,
  PRIMARY KEY (operator_id, environment)
);

CREATE TABLE transfers (
  operator_id                 text NOT NULL REFERENCES operators (id),
  environment                 text NOT NULL,
  id                          text NOT NULL,
  user_id                     text NOT NULL,
  reference                   text NOT NULL,
  -- Amounts are kept exactly, in kobo (hundredths of the currency unit), never as floats.
  amount_kobo                 bigint NOT NULL CHECK (amount_kobo > 0),
  description                 text,
  name                        text,
  destination_account_number  text NOT NULL,
  destination_bank_code       text NOT NULL,
  status                      text NOT NULL DEFAULT 'Pending' CHECK (status IN ('Pending', 'Completed', 'Failed')),
  sender_account_name         text,
  source_account_number       text,
  source_account_type         text,
  source_bank_code            text,
  kind                        text NOT NULL DEFAULT 'charge' CHECK (kind IN ('charge', 'transfer_request')),
  request_hash                text NOT NULL,
  payer_token                 text NOT NULL,
  created_at                  timestamptz NOT NULL,
  completed_at                timestamptz,
  PRIMARY KEY (operator_id, id),
  UNIQUE (operator_id, environment, reference)
);
CREATE INDEX transfers_list ON transfers (operator_id, environment, created_at, id);
