-- Tasks and everything known about them; one row per task.
CREATE TABLE tasks (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    queue            TEXT NOT NULL DEFAULT 'default',
    state            TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    args             TEXT NOT NULL DEFAULT '[]',
    kwargs           TEXT NOT NULL DEFAULT '{}',
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    run_at           REAL NOT NULL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    progress_current REAL,
    progress_total   REAL,
    progress_message TEXT,
    result           TEXT,
    error_type       TEXT,
    error_message    TEXT,
    error_traceback  TEXT,
    idempotency_key  TEXT UNIQUE,
    version          INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

-- The claim query walks this index in priority, then run_at order.
CREATE INDEX tasks_claimable ON tasks (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX tasks_by_state ON tasks (state, id);
CREATE INDEX tasks_by_name ON tasks (name, id);
