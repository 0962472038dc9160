-- The response headers of an attempt that got an HTTP answer other than 2xx (the dashboard's event page and
-- GET /events/{id} show them): a JSON object of header name (lower case) to value, bounded by the sender (at most 32
-- headers, 4 KiB in all, values truncated; bytes that are not valid UTF-8 are replaced). NULL for a 2xx answer, for
-- no answer at all (a network error), and for attempts made before this migration. Nullable and without a default:
-- adding it rewrites nothing, on PostgreSQL 11 and later.
ALTER TABLE delivery_attempts ADD COLUMN response_headers jsonb;

-- The dashboard renders an attempt's request again (delivery/request-view.ts) with the endpoint's current settings:
-- it must know whether they changed after the attempt. `secret_rotated_at` is when the secret last changed,
-- `signing_changed_at` when its URL, format or payload version last did, each taken from the row's own updated_at
-- (the application's clock, as the attempts' started_at is) by a trigger, so that no writer of endpoints has to
-- remember it. NULL: not changed since this migration.
ALTER TABLE endpoints ADD COLUMN secret_rotated_at timestamptz, ADD COLUMN signing_changed_at timestamptz;

CREATE FUNCTION cw_endpoint_signing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.secret IS DISTINCT FROM OLD.secret THEN
    NEW.secret_rotated_at := NEW.updated_at;
  END IF;
  IF NEW.url IS DISTINCT FROM OLD.url OR NEW.format IS DISTINCT FROM OLD.format OR NEW.payload_version IS DISTINCT FROM OLD.payload_version THEN
    NEW.signing_changed_at := NEW.updated_at;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER endpoints_signing_changed BEFORE UPDATE OF secret, url, format, payload_version ON endpoints
  FOR EACH ROW EXECUTE FUNCTION cw_endpoint_signing_changed();
