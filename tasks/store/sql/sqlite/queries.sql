-- Named queries of the SQLite backend (loaded by tasks/store/queries.py).
-- {placeholders} are filled by the Python that uses the query: {columns} with
-- tasks.store.rows.COLUMNS, {marks} with one "?" per value of an IN list,
-- {rows} with one VALUES row per change.

-- name: migrations_table
CREATE TABLE IF NOT EXISTS tasks_schema_migrations
    (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)

-- name: migration_applied
SELECT 1 FROM tasks_schema_migrations WHERE version = ?

-- name: record_migration
INSERT INTO tasks_schema_migrations VALUES (?, ?, ?)

-- name: touch_migrations
-- A row update that changes nothing: rolled back, it only proves the file is writable.
UPDATE tasks_schema_migrations SET applied_at = applied_at
WHERE version = (SELECT MAX(version) FROM tasks_schema_migrations)

-- name: insert
INSERT INTO tasks (id, name, queue, state, args, kwargs, priority, max_attempts,
    run_at, created_at, idempotency_key, timeout, concurrency_key, concurrency_limit,
    rate_key, rate_limit, rate_period, unique_key, trace_context)
VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: insert_keyed
-- A task with an idempotency or unique key: nothing is written when either matches.
INSERT INTO tasks (id, name, queue, state, args, kwargs, priority, max_attempts,
    run_at, created_at, idempotency_key, timeout, concurrency_key, concurrency_limit,
    rate_key, rate_limit, rate_period, unique_key, trace_context)
VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING RETURNING id

-- name: select_key
SELECT id FROM tasks WHERE idempotency_key = ?

-- name: select_unique
SELECT id FROM tasks WHERE unique_key = ? AND state IN ('queued', 'running', 'cancelling')

-- name: count_queued
SELECT COUNT(*) FROM tasks WHERE state = 'queued'

-- name: finish
-- {rows}: one "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" per change; column1..column14
-- are id, state, result, error type/message/traceback, run_at, refund, progress
-- current/total/message, owner, the error's history entry (JSON) and snooze.
-- The first "?" (finished_at) is the batch clock. An error is appended to the
-- history with the attempt it ended; a refunded change (release, snooze) keeps
-- both the latest error and the history as they are.
UPDATE tasks SET
    state = v.column2,
    result = v.column3,
    error_type = CASE WHEN v.column8 THEN tasks.error_type ELSE v.column4 END,
    error_message = CASE WHEN v.column8 THEN tasks.error_message ELSE v.column5 END,
    error_traceback = CASE WHEN v.column8 THEN tasks.error_traceback ELSE v.column6 END,
    errors = CASE WHEN v.column8 OR v.column13 IS NULL THEN tasks.errors
        ELSE json_insert(tasks.errors, '$[#]', json_set(v.column13, '$.attempt', tasks.attempts))
        END,
    snoozes = tasks.snoozes + v.column14,
    run_at = COALESCE(v.column7, tasks.run_at),
    attempts = tasks.attempts - v.column8,
    progress_current = COALESCE(v.column9, tasks.progress_current),
    progress_total = COALESCE(v.column10, tasks.progress_total),
    progress_message = COALESCE(v.column11, tasks.progress_message),
    started_at = CASE WHEN v.column2 = 'queued' THEN NULL ELSE tasks.started_at END,
    finished_at = CASE WHEN v.column2 = 'queued' THEN NULL ELSE ? END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    version = tasks.version + 1
FROM (VALUES {rows}) AS v
WHERE tasks.id = v.column1 AND tasks.lease_owner = v.column12
    AND (tasks.state = 'running' OR (tasks.state = 'cancelling' AND v.column2 = 'cancelled'))
RETURNING tasks.id

-- name: progress
UPDATE tasks SET progress_current = ?, progress_total = ?, progress_message = ?,
    version = version + 1
WHERE id = ? AND state IN ('running', 'cancelling') AND lease_owner = ?

-- name: claim
-- {marks}: one "?" per queue.
UPDATE tasks SET state = 'running', attempts = attempts + 1, started_at = ?,
    lease_owner = ?, lease_expires_at = ?, version = version + 1
-- Tasks without limits only, and none while a due task with limits waits in
-- these queues (the claim then takes the limited path, see sqlite/claims.py).
WHERE id IN (SELECT id FROM tasks WHERE state = 'queued' AND run_at <= ?
    AND concurrency_key IS NULL AND rate_key IS NULL
    AND queue IN ({marks})
    AND NOT EXISTS (SELECT 1 FROM tasks l WHERE l.state = 'queued'
        AND (l.concurrency_key IS NOT NULL OR l.rate_key IS NOT NULL)
        AND l.queue IN ({marks}) AND l.run_at <= ?)
    ORDER BY priority DESC, run_at, id LIMIT ?)
RETURNING {columns}

-- name: limited_due
-- {marks}: one "?" per queue. Whether a due task with a limit waits (the claim
-- then takes the limited path, tasks.store.admission).
SELECT 1 FROM tasks WHERE state = 'queued'
    AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)
    AND queue IN ({marks}) AND run_at <= ? LIMIT 1

-- name: running_keys
-- Per concurrency key: tasks holding a slot now, and their (lowest) limit.
SELECT concurrency_key, COUNT(*), MIN(concurrency_limit) FROM tasks
WHERE state IN ('running', 'cancelling') AND concurrency_key IS NOT NULL
GROUP BY concurrency_key

-- name: rate_prune
DELETE FROM tasks_rate_starts WHERE until <= ?

-- name: rate_started
-- Per rate key: starts whose window is still open, and their (lowest) limit.
SELECT rate_key, COUNT(*), MIN(rate_limit) FROM tasks_rate_starts WHERE until > ?
GROUP BY rate_key

-- name: rate_start
INSERT INTO tasks_rate_starts (rate_key, until, rate_limit) VALUES (?, ?, ?)

-- name: rate_reopens
-- {marks}: one "?" per spent rate key. When the first of their windows frees a start.
SELECT MIN(until) FROM tasks_rate_starts WHERE until > ? AND rate_key IN ({marks})

-- name: queue_running
-- {marks}: one "?" per queue.
SELECT queue, COUNT(*) FROM tasks
WHERE state IN ('running', 'cancelling') AND queue IN ({marks}) GROUP BY queue

-- name: unlimited_candidates
-- {marks}: one "?" per queue.
SELECT id, queue, priority, run_at FROM tasks
WHERE state = 'queued' AND run_at <= ? AND concurrency_key IS NULL AND rate_key IS NULL
    AND queue IN ({marks})
ORDER BY priority DESC, run_at, id LIMIT ?

-- name: limited_candidates
-- {marks}: one "?" per queue; {after}: "" or a claim-order cursor. The two JSON
-- arrays are the concurrency keys that are full and the rate keys that are spent.
SELECT id, queue, priority, run_at, concurrency_key, concurrency_limit, rate_key, rate_limit
FROM tasks
WHERE state = 'queued' AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)
    AND queue IN ({marks}) AND run_at <= ?
    AND (concurrency_key IS NULL OR concurrency_key NOT IN (SELECT value FROM json_each(?)))
    AND (rate_key IS NULL OR rate_key NOT IN (SELECT value FROM json_each(?)))
    {after}
ORDER BY priority DESC, run_at, id LIMIT ?

-- name: claim_ids
-- {marks}: one "?" per id, chosen by the limited path.
UPDATE tasks SET state = 'running', attempts = attempts + 1, started_at = ?,
    lease_owner = ?, lease_expires_at = ?, version = version + 1
WHERE id IN ({marks}) AND state = 'queued'
RETURNING {columns}

-- name: renew
UPDATE tasks SET lease_expires_at = ? WHERE id IN ({marks})
    AND state IN ('running', 'cancelling') AND lease_owner = ? RETURNING id

-- name: release
-- Gives claimed tasks back; one asked to stop ends cancelled instead (see Store.release).
UPDATE tasks SET version = version + 1, lease_owner = NULL, lease_expires_at = NULL,
    state = CASE state WHEN 'cancelling' THEN 'cancelled' ELSE 'queued' END,
    attempts = CASE state WHEN 'cancelling' THEN attempts ELSE MAX(attempts - 1, 0) END,
    started_at = CASE state WHEN 'cancelling' THEN started_at END,
    finished_at = CASE state WHEN 'cancelling' THEN ? END
WHERE id IN ({marks})
    AND state IN ('running', 'cancelling') AND lease_owner = ? RETURNING id

-- name: reclaim_failed
-- ?1: now, ?2: the error message (also appended to the error history), ?3: a JSON
-- array of owners known to be alive (their expired leases are kept).
UPDATE tasks SET state = 'failed', finished_at = ?1, lease_owner = NULL,
    lease_expires_at = NULL, error_type = 'WorkerLostError', error_message = ?2,
    error_traceback = NULL, version = version + 1,
    errors = json_insert(errors, '$[#]', json_object('type', 'WorkerLostError',
        'message', ?2, 'traceback', NULL, 'at', ?1, 'attempt', attempts))
WHERE state = 'running' AND lease_expires_at < ?1 AND attempts >= max_attempts
    AND lease_owner NOT IN (SELECT value FROM json_each(?3))
RETURNING id

-- name: reclaim_requeued
-- ?1: now, ?2: a JSON array of owners known to be alive.
UPDATE tasks SET state = 'queued', started_at = NULL, lease_owner = NULL,
    lease_expires_at = NULL, run_at = ?1, version = version + 1
WHERE state = 'running' AND lease_expires_at < ?1
    AND lease_owner NOT IN (SELECT value FROM json_each(?2)) RETURNING id

-- name: reclaim_cancelled
-- ?1: now, ?2: a JSON array of owners known to be alive.
UPDATE tasks SET state = 'cancelled', finished_at = ?1, lease_owner = NULL,
    lease_expires_at = NULL, version = version + 1
WHERE state = 'cancelling' AND lease_expires_at < ?1
    AND lease_owner NOT IN (SELECT value FROM json_each(?2)) RETURNING id

-- name: reclaim_owner_failed
-- The tasks of owners known to be dead, whatever their lease: as reclaim_failed,
-- ?3: a JSON array of the dead owners.
UPDATE tasks SET state = 'failed', finished_at = ?1, lease_owner = NULL,
    lease_expires_at = NULL, error_type = 'WorkerLostError', error_message = ?2,
    error_traceback = NULL, version = version + 1,
    errors = json_insert(errors, '$[#]', json_object('type', 'WorkerLostError',
        'message', ?2, 'traceback', NULL, 'at', ?1, 'attempt', attempts))
WHERE state = 'running' AND attempts >= max_attempts
    AND lease_owner IN (SELECT value FROM json_each(?3))
RETURNING id

-- name: reclaim_owner_requeued
-- ?1: now, ?2: a JSON array of the dead owners.
UPDATE tasks SET state = 'queued', started_at = NULL, lease_owner = NULL,
    lease_expires_at = NULL, run_at = ?1, version = version + 1
WHERE state = 'running' AND lease_owner IN (SELECT value FROM json_each(?2)) RETURNING id

-- name: reclaim_owner_cancelled
-- ?1: now, ?2: a JSON array of the dead owners.
UPDATE tasks SET state = 'cancelled', finished_at = ?1, lease_owner = NULL,
    lease_expires_at = NULL, version = version + 1
WHERE state = 'cancelling' AND lease_owner IN (SELECT value FROM json_each(?2)) RETURNING id

-- name: cancel
-- Queued and waiting tasks are cancelled at once; running ones are asked to stop
-- (see Store.cancel).
UPDATE tasks SET version = version + 1,
    state = CASE state WHEN 'running' THEN 'cancelling' ELSE 'cancelled' END,
    finished_at = CASE state WHEN 'running' THEN NULL ELSE ? END,
    lease_owner = CASE state WHEN 'running' THEN lease_owner END,
    lease_expires_at = CASE state WHEN 'running' THEN lease_expires_at END
WHERE id = ? AND state IN ('queued', 'waiting', 'running')

-- name: retry
-- Fresh attempts and snoozes; the error history is kept. Not while another task
-- holds its unique key (queued, running or cancelling).
UPDATE tasks SET state = 'queued', attempts = 0, snoozes = 0, run_at = ?, started_at = NULL,
    finished_at = NULL, result = NULL, error_type = NULL, error_message = NULL,
    error_traceback = NULL, progress_current = NULL, progress_total = NULL,
    progress_message = NULL, version = version + 1
WHERE id = ? AND state IN ('failed', 'cancelled')
    AND (unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM tasks a
        WHERE a.unique_key = tasks.unique_key AND a.state IN ('queued', 'running', 'cancelling')))

-- name: purge
-- {marks}: the terminal states to delete. A workflow step whose result a waiting
-- step still needs is kept.
DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state IN ({marks})
    AND finished_at < ? AND (workflow_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM tasks_edges e JOIN tasks c ON c.id = e.child_id
        WHERE e.parent_id = tasks.id AND c.state = 'waiting'))
    LIMIT ?) RETURNING id

-- name: get
SELECT {columns} FROM tasks WHERE id = ?

-- name: get_many
SELECT {columns} FROM tasks WHERE id IN ({marks})

-- name: next_run_at
SELECT MIN(run_at) FROM tasks WHERE state = 'queued' AND queue IN ({marks}) AND run_at > ?

-- name: cancel_requests
SELECT id FROM tasks WHERE state = 'cancelling' AND lease_owner = ?

-- name: schedule_register
INSERT INTO tasks_schedules (name, last_slot, paused, updated_at) VALUES (?, ?, 0, ?)
ON CONFLICT (name) DO NOTHING

-- name: schedule_states
SELECT name, last_slot, paused FROM tasks_schedules

-- name: schedule_fired
UPDATE tasks_schedules SET last_slot = MAX(last_slot, ?), updated_at = ? WHERE name = ?

-- name: schedule_paused
UPDATE tasks_schedules SET paused = ?, updated_at = ? WHERE name = ?
RETURNING name, last_slot, paused

-- name: queue_stats
-- Per queue: queued, held by a worker (running or cancelling), earliest queued run_at.
SELECT queue,
       SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END),
       SUM(CASE WHEN state <> 'queued' THEN 1 ELSE 0 END),
       MIN(CASE WHEN state = 'queued' THEN run_at END)
FROM tasks
WHERE state IN ('queued', 'running', 'cancelling')
GROUP BY queue
ORDER BY queue

-- name: limit_usage
-- For one queued task (?1 concurrency key, ?2 rate key, ?3 queue, ?4 now): tasks of
-- its key running, starts of its rate key in the open window and the seconds until
-- the first of them leaves it, tasks of its queue running.
SELECT
    (SELECT COUNT(*) FROM tasks
     WHERE state IN ('running', 'cancelling') AND concurrency_key = ?1),
    (SELECT COUNT(*) FROM tasks_rate_starts WHERE rate_key = ?2 AND until > ?4),
    (SELECT MIN(until) - ?4 FROM tasks_rate_starts WHERE rate_key = ?2 AND until > ?4),
    (SELECT COUNT(*) FROM tasks WHERE state IN ('running', 'cancelling') AND queue = ?3)

-- name: finished_by_queue
-- Per queue: tasks that reached a terminal state at or after ? (walks tasks_finished).
SELECT queue, COUNT(*)
FROM tasks
WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at >= ?
GROUP BY queue
ORDER BY queue

-- name: activity
-- Finished tasks per bucket of ? seconds from ?: count, failures, and the start
-- latency (started_at - run_at) of those that ran: mean and maximum.
SELECT CAST((finished_at - ?1) / ?2 AS INTEGER) AS bucket,
       COUNT(*),
       SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END),
       AVG(started_at - run_at),
       MAX(started_at - run_at)
FROM tasks
WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at >= ?3
GROUP BY bucket
ORDER BY bucket

-- name: worker_register
-- A process that runs workers (tasks/fleet.py); registering again refreshes the row.
INSERT INTO tasks_workers
    (id, host, pid, version, queues, concurrency, started_at, heartbeat_at, lost_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)
ON CONFLICT (id) DO UPDATE SET queues = excluded.queues, concurrency = excluded.concurrency,
    heartbeat_at = excluded.heartbeat_at, lost_at = NULL

-- name: worker_heartbeat
UPDATE tasks_workers SET heartbeat_at = ?1, lost_at = NULL WHERE id = ?2 RETURNING id

-- name: worker_remove
DELETE FROM tasks_workers WHERE id = ?

-- name: workers_lost
-- ?1: now, ?2: a JSON array of the owners found dead.
UPDATE tasks_workers SET lost_at = ?1
WHERE id IN (SELECT value FROM json_each(?2)) AND lost_at IS NULL

-- name: workers_prune
DELETE FROM tasks_workers WHERE heartbeat_at < ? RETURNING id

-- name: workers
SELECT id, host, pid, version, queues, concurrency, started_at, heartbeat_at, lost_at
FROM tasks_workers ORDER BY started_at, id

-- name: workers_running
-- The tasks each registered worker holds now (running or asked to stop).
SELECT lease_owner, id FROM tasks
WHERE state IN ('running', 'cancelling')
    AND lease_owner IN (SELECT id FROM tasks_workers)
ORDER BY started_at, id

-- name: workflow_insert
INSERT INTO tasks_workflows (id, kind, created_at, result_ids, result_kind)
VALUES (?, ?, ?, ?, ?)

-- name: edge_insert
INSERT INTO tasks_edges (parent_id, child_id, kind, position) VALUES (?, ?, ?, ?)

-- name: parents_found
-- {marks}: the parent ids. Their state, name and workflow.
SELECT id, state, name, workflow_id FROM tasks WHERE id IN ({marks})

-- name: join_workflow
-- A task stored before that a step of a new workflow depends on, in no workflow yet.
UPDATE tasks SET workflow_id = ? WHERE id = ? AND workflow_id IS NULL

-- name: step_settle
-- A new step: in its workflow, waiting for the steps it needs that have not
-- succeeded (queued if none) and, if it is an error step, for a failure.
UPDATE tasks SET workflow_id = ?1, receives = ?2,
    blockers = (SELECT COUNT(*) FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
        WHERE e.child_id = ?3 AND e.kind = 'needs' AND +p.state <> 'succeeded'),
    state = CASE WHEN EXISTS (SELECT 1 FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
            WHERE e.child_id = ?3 AND (e.kind = 'error' OR +p.state <> 'succeeded'))
        THEN 'waiting' ELSE 'queued' END
WHERE id = ?3

-- name: step_not_run
-- A new step that needs a task stored before which has already failed or was cancelled.
UPDATE tasks SET state = 'cancelled', finished_at = ?, error_type = 'DependencyError',
    error_message = ?, version = version + 1
WHERE id = ? AND state = 'waiting'

-- name: workflow_get
SELECT id, kind, created_at, result_ids, result_kind FROM tasks_workflows WHERE id = ?

-- name: workflow_steps
SELECT {columns} FROM tasks WHERE workflow_id = ? ORDER BY id

-- name: workflow_edges
SELECT e.parent_id, e.child_id, e.kind, e.position FROM tasks_edges e
JOIN tasks c ON c.id = e.child_id WHERE c.workflow_id = ? ORDER BY e.child_id, e.position

-- name: step_inputs
SELECT e.parent_id, e.kind, p.state, p.result FROM tasks_edges e
JOIN tasks p ON p.id = e.parent_id WHERE e.child_id = ? ORDER BY e.position

-- name: task_edges
SELECT parent_id, child_id, kind, position FROM tasks_edges
WHERE parent_id = ?1 OR child_id = ?1 ORDER BY position

-- name: workflow_cancel
-- Every unfinished step: queued and waiting ones at once, running ones asked to stop.
UPDATE tasks SET version = version + 1,
    state = CASE state WHEN 'running' THEN 'cancelling' ELSE 'cancelled' END,
    finished_at = CASE state WHEN 'running' THEN NULL ELSE ? END
WHERE workflow_id = ? AND state IN ('queued', 'waiting', 'running') RETURNING id
