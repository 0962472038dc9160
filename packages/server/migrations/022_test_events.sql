-- Test events (POST /webhook/endpoints/{id}/test, the dashboard's "Send a test event") are marked, so that they reach
-- only the endpoint they were sent to: GET /events, GET /events/feed and GET /events/stream (and so `cashwire listen`)
-- leave them out, where an integration that pulls the feed would otherwise process a fake approved deposit. The
-- dashboard's events list still shows them, and GET /events/{id} still answers one by its id. A constant default makes
-- this ALTER instant on PostgreSQL 11+ (no table rewrite: existing rows read the default from the catalog).
ALTER TABLE events ADD COLUMN test boolean NOT NULL DEFAULT false;
