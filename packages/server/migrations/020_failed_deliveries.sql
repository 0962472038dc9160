-- The dashboard's events list filtered by a failed delivery status ("show me the dead letters"): without an index the
-- filter probed every event of the account for a delivery in that status, so a status nobody has (the usual case for
-- `dead` or `expired`) read the whole account: 158 ms p50 at 200,000 events (bench/dashboard.js). Only deliveries that
-- ended badly are in this index; a delivery that succeeds never enters it, so the engine's hot path (insert pending,
-- update to succeeded) writes nothing more.
CREATE INDEX deliveries_failed ON deliveries (operator_id, event_id) WHERE status IN ('failed', 'expired', 'dead');
