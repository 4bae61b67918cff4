-- A running task asked to stop is 'cancelling' until its owner confirms the
-- run has ended (or its lease runs out): only then is it 'cancelled', and
-- only then may it be retried. SQLite cannot change a CHECK constraint in
-- place, so the table is rebuilt (the documented twelve-step procedure,
-- inside the migration's transaction).
CREATE TABLE tasks_new (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    queue            TEXT NOT NULL DEFAULT 'default',
    state            TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'cancelling', 'succeeded', 'failed',
                                      'cancelled')),
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

INSERT INTO tasks_new (id, name, queue, state, args, kwargs, priority, attempts, max_attempts,
    run_at, created_at, started_at, finished_at, lease_owner, lease_expires_at,
    progress_current, progress_total, progress_message, result, error_type, error_message,
    error_traceback, idempotency_key, version)
SELECT id, name, queue, state, args, kwargs, priority, attempts, max_attempts,
    run_at, created_at, started_at, finished_at, lease_owner, lease_expires_at,
    progress_current, progress_total, progress_message, result, error_type, error_message,
    error_traceback, idempotency_key, version
FROM tasks;

DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;

CREATE INDEX tasks_claimable ON tasks (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE state IN ('running', 'cancelling');
CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX tasks_by_state ON tasks (state, id);
CREATE INDEX tasks_by_name ON tasks (name, id);
