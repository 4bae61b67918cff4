-- Observability (issue 19.6), as in SQLite: the enqueuer's trace context, a
-- JSON object of propagation headers (W3C traceparent/tracestate, baggage) in
-- text, written at enqueue when TASKS_TRACING is on; NULL otherwise.
ALTER TABLE tasks ADD COLUMN trace_context text;
