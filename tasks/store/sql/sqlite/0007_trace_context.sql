-- Observability (issue 19.6): the enqueuer's trace context, a JSON object of
-- propagation headers (W3C traceparent/tracestate, baggage) written at enqueue
-- when TASKS_TRACING is on and read by the run's span; NULL otherwise.
ALTER TABLE tasks ADD COLUMN trace_context TEXT;
