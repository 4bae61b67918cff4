-- Tasks and everything known about them; one row per task.
--
-- Same columns and meaning as the SQLite schema, so both backends answer alike:
--   * timestamps are Unix epoch seconds in double precision (the app's clock,
--     as in SQLite), not timestamptz;
--   * args, kwargs and result are text, not jsonb: text returns the exact JSON
--     the caller stored (key order, number spelling, "\u0000" -- which jsonb
--     rejects), and nothing queries inside the JSON;
--   * integers are bigint, matching SQLite's 64-bit INTEGER range;
--   * id is compared bytewise (COLLATE "C"), like SQLite and Python, so the
--     time-ordered ids sort newest first whatever the database collation.
CREATE TABLE tasks (
    id               text COLLATE "C" PRIMARY KEY,
    name             text NOT NULL,
    queue            text NOT NULL DEFAULT 'default',
    state            text NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    args             text NOT NULL DEFAULT '[]',
    kwargs           text NOT NULL DEFAULT '{}',
    priority         bigint NOT NULL DEFAULT 0,
    attempts         bigint NOT NULL DEFAULT 0,
    max_attempts     bigint NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    run_at           double precision NOT NULL,
    created_at       double precision NOT NULL,
    started_at       double precision,
    finished_at      double precision,
    lease_owner      text,
    lease_expires_at double precision,
    progress_current double precision,
    progress_total   double precision,
    progress_message text,
    result           text,
    error_type       text,
    error_message    text,
    error_traceback  text,
    idempotency_key  text UNIQUE,
    version          bigint NOT NULL DEFAULT 1
);

-- The claim query walks this index in priority, then run_at order.
CREATE INDEX tasks_claimable ON tasks (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX tasks_by_state ON tasks (state, id);
CREATE INDEX tasks_by_name ON tasks (name, id);
