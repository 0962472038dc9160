-- Limit requests (payments/users/limits.ts).

-- One open request per user: a second request while one is open (also a concurrent one) finds the first.
CREATE UNIQUE INDEX limit_requests_one_open ON limit_requests (operator_id, environment, user_id) WHERE status = 'requested';

-- The payment whose page the user asked from (NULL: the operator asked, POST /user/{id}/limits_request); the
-- request's events are filed under it.
ALTER TABLE limit_requests ADD COLUMN intent_id text;

-- The limit request whose decision set `users.daily_limit`. NULL: no decision yet, the operator's limits
-- (settings `limits`) apply, and `daily_limit` is only what they were when the user was registered.
ALTER TABLE users ADD COLUMN daily_limit_request_id text;
CREATE INDEX limit_requests_of_intent ON limit_requests (operator_id, intent_id) WHERE intent_id IS NOT NULL;
