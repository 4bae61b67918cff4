-- Workflows (issue 18): chains, groups, chords and dependencies kept in the store.
--   workflow_id: the workflow a step belongs to (NULL: a plain task);
--   blockers: the steps it needs that have not succeeded yet; a step with
--     blockers is in state 'waiting' and becomes 'queued' when none is left;
--   receives: what its first argument is, read when it runs:
--     'result' (the result of the step it needs), 'results' (the list of the
--     results of the steps it needs, in position order), 'failure' (the id of
--     the step whose failure started it: an error step), NULL (nothing).
-- tasks_edges holds "child needs parent" ('needs') and "child runs if parent
-- fails" ('error'). The triggers below move the workflow on in the same
-- transaction as the state change that causes it, whatever wrote it (a
-- finish, a cancel, a reclaim, a retry).
-- The new state 'waiting' changes the state CHECK constraint, which SQLite
-- cannot change in place: the table is rebuilt (the documented twelve-step
-- procedure, inside the migration's transaction), with the new columns.
CREATE TABLE tasks_new (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    queue             TEXT NOT NULL DEFAULT 'default',
    state             TEXT NOT NULL
                      CHECK (state IN ('queued', 'waiting', 'running', 'cancelling', 'succeeded',
                                       'failed', 'cancelled')),
    args              TEXT NOT NULL DEFAULT '[]',
    kwargs            TEXT NOT NULL DEFAULT '{}',
    priority          INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    run_at            REAL NOT NULL,
    created_at        REAL NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    lease_owner       TEXT,
    lease_expires_at  REAL,
    progress_current  REAL,
    progress_total    REAL,
    progress_message  TEXT,
    result            TEXT,
    error_type        TEXT,
    error_message     TEXT,
    error_traceback   TEXT,
    idempotency_key   TEXT UNIQUE,
    version           INTEGER NOT NULL DEFAULT 1,
    snoozes           INTEGER NOT NULL DEFAULT 0,
    timeout           REAL CHECK (timeout IS NULL OR timeout > 0),
    errors            TEXT NOT NULL DEFAULT '[]',
    concurrency_key   TEXT,
    concurrency_limit INTEGER CHECK (concurrency_limit IS NULL OR concurrency_limit >= 1),
    rate_key          TEXT,
    rate_limit        INTEGER CHECK (rate_limit IS NULL OR rate_limit >= 1),
    rate_period       REAL CHECK (rate_period IS NULL OR rate_period > 0),
    unique_key        TEXT,
    trace_context     TEXT,
    workflow_id       TEXT,
    blockers          INTEGER NOT NULL DEFAULT 0,
    receives          TEXT CHECK (receives IS NULL OR receives IN ('result', 'results', 'failure'))
) WITHOUT ROWID;

INSERT INTO tasks_new (id, name, queue, state, args, kwargs, priority, attempts, max_attempts,
    run_at, created_at, started_at, finished_at, lease_owner, lease_expires_at,
    progress_current, progress_total, progress_message, result, error_type, error_message,
    error_traceback, idempotency_key, version, snoozes, timeout, errors, concurrency_key,
    concurrency_limit, rate_key, rate_limit, rate_period, unique_key, trace_context)
SELECT id, name, queue, state, args, kwargs, priority, attempts, max_attempts,
    run_at, created_at, started_at, finished_at, lease_owner, lease_expires_at,
    progress_current, progress_total, progress_message, result, error_type, error_message,
    error_traceback, idempotency_key, version, snoozes, timeout, errors, concurrency_key,
    concurrency_limit, rate_key, rate_limit, rate_period, unique_key, trace_context
FROM tasks;

DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;

CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE state IN ('running', 'cancelling');
CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX tasks_by_state ON tasks (state, id);
CREATE INDEX tasks_by_name ON tasks (name, id);
CREATE INDEX tasks_claimable ON tasks (queue, priority DESC, run_at, id)
    WHERE state = 'queued' AND concurrency_key IS NULL AND rate_key IS NULL;
CREATE INDEX tasks_claimable_limited
    ON tasks (queue, priority DESC, run_at, id, concurrency_key, concurrency_limit,
        rate_key, rate_limit)
    WHERE state = 'queued' AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL);
CREATE INDEX tasks_limited_running ON tasks (concurrency_key, concurrency_limit)
    WHERE state IN ('running', 'cancelling') AND concurrency_key IS NOT NULL;
CREATE UNIQUE INDEX tasks_unique_active ON tasks (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'cancelling');
CREATE INDEX tasks_by_workflow ON tasks (workflow_id, id) WHERE workflow_id IS NOT NULL;

CREATE TABLE tasks_workflows (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    created_at REAL NOT NULL,
    result_ids TEXT NOT NULL,
    result_kind TEXT NOT NULL
);

CREATE TABLE tasks_edges (
    parent_id TEXT NOT NULL,
    child_id  TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('needs', 'error')),
    position  INTEGER NOT NULL,
    PRIMARY KEY (parent_id, child_id)
) WITHOUT ROWID;
CREATE INDEX tasks_edges_child ON tasks_edges (child_id, position);

-- A step succeeded: the steps that need it have one blocker fewer (queued at
-- none).
CREATE TRIGGER tasks_workflow_succeeded AFTER UPDATE OF state ON tasks
WHEN NEW.workflow_id IS NOT NULL AND NEW.state = 'succeeded' AND OLD.state <> 'succeeded'
BEGIN
    UPDATE tasks SET blockers = blockers - 1,
        state = CASE WHEN blockers <= 1 THEN 'queued' ELSE 'waiting' END,
        version = version + 1
    WHERE state = 'waiting'
        AND id IN (SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'needs');
END;

-- A step failed or was cancelled: the steps that need it are cancelled (and
-- theirs in turn, by this trigger: recursive_triggers is on), naming the step
-- that started it; on a failure its error steps are queued.
CREATE TRIGGER tasks_workflow_ended AFTER UPDATE OF state ON tasks
WHEN NEW.workflow_id IS NOT NULL AND NEW.state IN ('failed', 'cancelled')
    AND OLD.state NOT IN ('failed', 'cancelled')
BEGIN
    UPDATE tasks SET state = 'cancelled', finished_at = COALESCE(NEW.finished_at, NEW.run_at),
        error_type = 'DependencyError',
        error_message = CASE WHEN NEW.error_type = 'DependencyError' THEN NEW.error_message
            ELSE 'not run: step ' || NEW.name || ' (' || NEW.id || ') '
                || CASE NEW.state WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END END,
        version = version + 1
    WHERE state = 'waiting'
        AND id IN (SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'needs');
    UPDATE tasks SET state = 'queued', blockers = 0, version = version + 1
    WHERE NEW.state = 'failed' AND state = 'waiting'
        AND id IN (SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'error');
END;

-- A step succeeded or was cancelled: its error steps are dropped once all of
-- their steps succeeded or were cancelled (none failed, none can still fail).
CREATE TRIGGER tasks_workflow_error_steps AFTER UPDATE OF state ON tasks
WHEN NEW.workflow_id IS NOT NULL AND NEW.state IN ('succeeded', 'cancelled')
    AND OLD.state <> NEW.state
BEGIN
    DELETE FROM tasks WHERE state = 'waiting'
        AND id IN (SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'error')
        AND NOT EXISTS (SELECT 1 FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
            WHERE e.child_id = tasks.id AND e.kind = 'error'
                AND +p.state NOT IN ('succeeded', 'cancelled'));
END;

-- A failed or cancelled step is queued again (a retry): the steps cancelled
-- because of it wait for it again, unless another step they need has failed
-- or was cancelled; a step retried before the steps it needs succeeded waits.
CREATE TRIGGER tasks_workflow_resumed AFTER UPDATE OF state ON tasks
WHEN NEW.workflow_id IS NOT NULL AND NEW.state IN ('queued', 'waiting')
    AND OLD.state IN ('failed', 'cancelled')
BEGIN
    UPDATE tasks SET state = 'waiting',
        blockers = (SELECT COUNT(*) FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
            WHERE e.child_id = NEW.id AND e.kind = 'needs' AND +p.state <> 'succeeded')
    WHERE id = NEW.id AND state = 'queued'
        AND EXISTS (SELECT 1 FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
            WHERE e.child_id = NEW.id AND e.kind = 'needs' AND +p.state <> 'succeeded');
    UPDATE tasks SET state = 'waiting', finished_at = NULL, error_type = NULL,
        error_message = NULL, error_traceback = NULL, version = version + 1,
        blockers = (SELECT COUNT(*) FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
            WHERE e.child_id = tasks.id AND e.kind = 'needs' AND +p.state <> 'succeeded')
    WHERE state = 'cancelled' AND error_type = 'DependencyError'
        AND id IN (SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'needs')
        AND NOT EXISTS (SELECT 1 FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
            WHERE e.child_id = tasks.id AND e.kind = 'needs' AND p.id <> NEW.id
                AND +p.state IN ('failed', 'cancelled'));
END;

-- A purged step takes its edges with it (purge keeps steps others still need).
CREATE TRIGGER tasks_workflow_purged AFTER DELETE ON tasks
WHEN OLD.workflow_id IS NOT NULL
BEGIN
    DELETE FROM tasks_edges WHERE parent_id = OLD.id OR child_id = OLD.id;
END;
