-- `cashwire listen`: the secret the CLI signs its forwards with, one per operator, environment and format, made on
-- first use and the same ever after (so a developer's receiver keeps verifying across restarts of the CLI). Sealed as
-- endpoint secrets are (security/secrets.ts).
CREATE TABLE cli_secrets (
  operator_id  text NOT NULL REFERENCES operators (id),
  environment  text NOT NULL CHECK (environment IN ('sandbox', 'production')),
  format       text NOT NULL CHECK (format IN ('pushcash', 'sendcash', 'standard')),
  secret       text NOT NULL,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (operator_id, environment, format)
);
-- Each forward the CLI makes is recorded as a delivery with the lane 'cli' (endpoint_id NULL, the forward-to URL),
-- written already ended (succeeded or failed) with its one attempt: never pending, so no worker claims or retries it
-- (delivery/queue.ts, recordExternalAttempt). No schema change to deliveries is needed.
