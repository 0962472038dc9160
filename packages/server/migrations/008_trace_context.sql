-- The W3C traceparent of the request that wrote the event (null when tracing was off or no span was active), so
-- that each delivery attempt's span can link to it. See src/telemetry.ts.
ALTER TABLE events ADD COLUMN trace_context text;
