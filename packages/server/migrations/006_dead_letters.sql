-- Dead letters, response excerpts kept as raw bytes, and the bookkeeping that keeps a fault inside a worker from
-- spending a receiver's attempts. Runs on PostgreSQL 14 and later, in place, on a database with queued deliveries.

-- `dead`: claimed 5 times with no outcome recorded, a worker that could not prepare it 5 times, or an outcome that
-- could not be written. Listed, replayable with resend, announced with delivery.exhausted.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('pending', 'succeeded', 'failed', 'expired', 'dead'));

-- Claims since the last recorded outcome (a released deferral gives its claim back).
ALTER TABLE deliveries ADD COLUMN stalls int NOT NULL DEFAULT 0;

-- The schedule's name follows from the environment and the format (domain/retry.ts, at claim time), and `schedule`
-- now keeps the operator's overrides of every schedule, keyed by name, as they were when the delivery was made.
ALTER TABLE deliveries ALTER COLUMN schedule_name DROP NOT NULL;
UPDATE deliveries SET schedule = jsonb_build_object(schedule_name, schedule)
 WHERE schedule IS NOT NULL AND schedule_name IS NOT NULL AND jsonb_typeof(schedule) = 'object';

-- `held`: a registered endpoint answered 410; it is disabled and the delivery waits for it.
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outcome_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_outcome_check CHECK (outcome IN ('succeeded', 'retry', 'failed', 'expired', 'held'));

-- Whatever a receiver answers is stored as it came (NUL bytes, invalid UTF-8, compressed bytes): no byte sequence
-- can fail the write. The API shows it as text with invalid bytes replaced, and its length in bytes.
ALTER TABLE delivery_attempts ALTER COLUMN response_excerpt TYPE bytea USING convert_to(response_excerpt, 'UTF8');
