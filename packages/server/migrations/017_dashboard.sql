-- Dashboard sessions (api/routes/dashboard.ts): an operator signs in to /dashboard with an API key and gets a cookie
-- holding a random session id; only its SHA-256 is stored here. A session is bound to the key it was made with (its
-- operator and environment): a revoked key ends its sessions at the next request. `csrf` is the token every POST form
-- of the session carries. Sessions last 12 hours; expired rows are deleted at each sign-in.
CREATE TABLE dashboard_sessions (
  id_hash      bytea PRIMARY KEY,
  operator_id  text NOT NULL REFERENCES operators (id),
  environment  text NOT NULL CHECK (environment IN ('sandbox', 'production')),
  key_id       text NOT NULL REFERENCES api_keys (id),
  csrf         text NOT NULL,
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
