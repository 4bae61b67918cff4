-- Named queries of the PostgreSQL backend (loaded by tasks/store/queries.py).
-- {placeholders} are filled by the Python that uses the query: {columns} with
-- tasks.store.rows.COLUMNS (prefixed "tasks." where a join needs it), {waited}
-- with the seconds the transaction has waited so far (see writes.WAITED),
-- {queue_match} with the claim's queue condition.

-- name: advisory_lock
SELECT pg_advisory_xact_lock($1)

-- name: migrations_table
CREATE TABLE IF NOT EXISTS tasks_schema_migrations (version integer
    PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)

-- name: migration_applied
SELECT 1 FROM tasks_schema_migrations WHERE version = $1

-- name: record_migration
INSERT INTO tasks_schema_migrations VALUES ($1, $2, $3)

-- name: insert_one
-- A task with an idempotency or unique key: nothing is written when either matches.
INSERT INTO tasks (id, name, queue, state, args, kwargs, priority, max_attempts, run_at,
    created_at, idempotency_key, timeout, concurrency_key, concurrency_limit, rate_key,
    rate_limit, rate_period, unique_key, trace_context)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
    $18)
ON CONFLICT DO NOTHING RETURNING id

-- name: insert_many
INSERT INTO tasks (id, name, queue, state, args, kwargs, priority, max_attempts, run_at,
    created_at, idempotency_key, timeout, concurrency_key, concurrency_limit, rate_key,
    rate_limit, rate_period, trace_context)
SELECT v.id, v.name, v.queue, 'queued', v.args, v.kwargs, v.priority, v.max_attempts,
       v.run_at, v.created_at, NULL, v.timeout, v.ckey, v.climit, v.rkey, v.rlimit, v.rperiod,
       v.trace_context
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
            $7::bigint[], $8::float8[], $9::float8[], $10::float8[], $11::text[],
            $12::bigint[], $13::text[], $14::bigint[], $15::float8[], $16::text[])
     AS v(id, name, queue, args, kwargs, priority, max_attempts, run_at, created_at, timeout,
          ckey, climit, rkey, rlimit, rperiod, trace_context)

-- name: select_key
SELECT id FROM tasks WHERE idempotency_key = $1

-- name: select_unique
SELECT id FROM tasks WHERE unique_key = $1 AND state IN ('queued', 'running', 'cancelling')

-- name: count_queued
SELECT COUNT(*) FROM tasks WHERE state = 'queued'

-- name: finish
-- Mirrors SQLite's finish (error history and snoozes included). RETURNING the
-- ordinality tells exactly which change applied, even when two changes in one
-- batch name the same task.
UPDATE tasks SET
    state = v.state,
    result = v.result,
    error_type = CASE WHEN v.refund THEN tasks.error_type ELSE v.error_type END,
    error_message = CASE WHEN v.refund THEN tasks.error_message ELSE v.error_message END,
    error_traceback = CASE WHEN v.refund THEN tasks.error_traceback ELSE v.error_traceback END,
    errors = CASE WHEN v.refund OR v.entry IS NULL THEN tasks.errors
        ELSE (tasks.errors::jsonb || jsonb_build_array(
            v.entry::jsonb || jsonb_build_object('attempt', tasks.attempts)))::text
        END,
    snoozes = tasks.snoozes + CASE WHEN v.snooze THEN 1 ELSE 0 END,
    run_at = COALESCE(v.run_at, tasks.run_at),
    attempts = tasks.attempts - CASE WHEN v.refund THEN 1 ELSE 0 END,
    progress_current = COALESCE(v.progress_current, tasks.progress_current),
    progress_total = COALESCE(v.progress_total, tasks.progress_total),
    progress_message = COALESCE(v.progress_message, tasks.progress_message),
    started_at = CASE WHEN v.state = 'queued' THEN NULL ELSE tasks.started_at END,
    finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE $15::float8 END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    version = tasks.version + 1
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::float8[], $8::bool[], $9::float8[], $10::float8[], $11::text[], $12::text[],
            $13::text[], $14::bool[])
     WITH ORDINALITY
     AS v(id, state, result, error_type, error_message, error_traceback, run_at, refund,
          progress_current, progress_total, progress_message, owner, entry, snooze, ord)
WHERE tasks.id = v.id AND tasks.lease_owner = v.owner
    AND (tasks.state = 'running' OR (tasks.state = 'cancelling' AND v.state = 'cancelled'))
RETURNING v.ord, tasks.concurrency_key IS NOT NULL

-- name: progress
UPDATE tasks SET
    progress_current = v.current, progress_total = v.total, progress_message = v.message,
    version = tasks.version + 1
FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[])
     AS v(id, owner, current, total, message)
WHERE tasks.id = v.id AND tasks.state IN ('running', 'cancelling') AND tasks.lease_owner = v.owner

-- name: claim
-- The due rows are picked in a MATERIALIZED CTE, which runs exactly once. In the
-- form "UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" the
-- planner may put the subquery on the inner side of a nested loop and rescan it
-- per outer row; each rescan skips the rows this statement already updated and
-- picks new ones, so more than n tasks get claimed.
-- Tasks without limits only; {guard} is claim_guard (none while a due task with
-- limits waits in these queues: the claim then takes the limited path, see
-- postgres/claims.py) or "" while this process knows those tasks are held.
WITH due AS MATERIALIZED (
    SELECT id FROM tasks
    WHERE state = 'queued' AND run_at <= $1 AND {queue_match}
        AND concurrency_key IS NULL AND rate_key IS NULL
        {guard}
    ORDER BY priority DESC, run_at, id
    LIMIT $5
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks SET
    state = 'running', attempts = attempts + 1, started_at = $1 + {waited}, lease_owner = $2,
    lease_expires_at = $3 + {waited}, version = version + 1
FROM due
WHERE tasks.id = due.id
RETURNING {columns}

-- name: claim_guard
AND NOT EXISTS (SELECT 1 FROM tasks l WHERE l.state = 'queued'
    AND (l.concurrency_key IS NOT NULL OR l.rate_key IS NOT NULL)
    AND l.{queue_match} AND l.run_at <= $1)

-- name: limited_due
SELECT 1 FROM tasks WHERE state = 'queued'
    AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)
    AND queue = ANY($1::text[]) AND run_at <= $2 LIMIT 1

-- name: server_clock
SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8

-- name: running_keys
-- Per concurrency key: tasks holding a slot now, and their (lowest) limit.
SELECT concurrency_key, COUNT(*), MIN(concurrency_limit) FROM tasks
WHERE state IN ('running', 'cancelling') AND concurrency_key IS NOT NULL
GROUP BY concurrency_key

-- name: rate_prune
DELETE FROM tasks_rate_starts WHERE until <= $1

-- name: rate_started
-- Per rate key: starts whose window is still open, and their (lowest) limit.
SELECT rate_key, COUNT(*), MIN(rate_limit) FROM tasks_rate_starts WHERE until > $1
GROUP BY rate_key

-- name: rate_start
INSERT INTO tasks_rate_starts (rate_key, until, rate_limit)
SELECT * FROM unnest($1::text[], $2::float8[], $3::bigint[])

-- name: rate_reopens
SELECT MIN(until) FROM tasks_rate_starts WHERE until > $1 AND rate_key = ANY($2::text[])

-- name: queue_running
SELECT queue, COUNT(*) FROM tasks
WHERE state IN ('running', 'cancelling') AND queue = ANY($1::text[]) GROUP BY queue

-- name: unlimited_candidates
-- One queue, in the order of tasks_claimable.
SELECT id, queue, priority, run_at FROM tasks
WHERE state = 'queued' AND run_at <= $1 AND concurrency_key IS NULL AND rate_key IS NULL
    AND queue = $2
ORDER BY priority DESC, run_at, id LIMIT $3
FOR UPDATE SKIP LOCKED

-- name: limited_candidates
-- $3, $4: the concurrency keys that are full and the rate keys that are spent;
-- {after}: "" or a claim-order cursor ($6 priority, $7 run_at, $8 id).
SELECT id, queue, priority, run_at, concurrency_key, concurrency_limit, rate_key, rate_limit
FROM tasks
WHERE state = 'queued' AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)
    AND queue = ANY($1::text[]) AND run_at <= $2
    AND (concurrency_key IS NULL OR concurrency_key <> ALL($3::text[]))
    AND (rate_key IS NULL OR rate_key <> ALL($4::text[]))
    {after}
ORDER BY priority DESC, run_at, id LIMIT $5

-- name: claim_ids
-- The limited path stamps starts and leases on the server's clock, the clock of
-- the rate windows (each start's window is recorded from its started_at).
UPDATE tasks SET
    state = 'running', attempts = attempts + 1,
    started_at = EXTRACT(EPOCH FROM clock_timestamp())::float8, lease_owner = $1,
    lease_expires_at = EXTRACT(EPOCH FROM clock_timestamp())::float8 + $2,
    version = version + 1
WHERE id = ANY($3::text[]) AND state = 'queued'
RETURNING {columns}

-- name: renew
UPDATE tasks SET lease_expires_at = $1 + {waited} WHERE id = ANY($2::text[])
    AND state IN ('running', 'cancelling') AND lease_owner = $3 RETURNING id

-- name: release
-- Gives claimed tasks back; one asked to stop ends cancelled instead (see Store.release).
UPDATE tasks SET version = version + 1, lease_owner = NULL,
    lease_expires_at = NULL,
    state = CASE state WHEN 'cancelling' THEN 'cancelled' ELSE 'queued' END,
    attempts = CASE state WHEN 'cancelling' THEN attempts
        ELSE GREATEST(attempts - 1, 0) END,
    started_at = CASE state WHEN 'cancelling' THEN started_at END,
    finished_at = CASE state WHEN 'cancelling' THEN $3::float8 END
WHERE id = ANY($1::text[])
    AND state IN ('running', 'cancelling') AND lease_owner = $2 RETURNING id

-- name: reclaim_failed
-- $1: now, $2: the error message, $3: owners known to be alive (their expired leases are kept).
UPDATE tasks SET state = 'failed', finished_at = $1, lease_owner = NULL,
    lease_expires_at = NULL, error_type = 'WorkerLostError', error_message = $2,
    error_traceback = NULL, version = version + 1,
    errors = (errors::jsonb || jsonb_build_array(jsonb_build_object('type', 'WorkerLostError',
        'message', $2::text, 'traceback', NULL, 'at', $1::float8, 'attempt', attempts)))::text
WHERE state = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts
    AND lease_owner <> ALL($3::text[])
RETURNING id

-- name: reclaim_requeued
-- $1: now, $2: owners known to be alive.
UPDATE tasks SET state = 'queued', started_at = NULL, lease_owner = NULL,
    lease_expires_at = NULL, run_at = $1, version = version + 1
WHERE state = 'running' AND lease_expires_at < $1 AND lease_owner <> ALL($2::text[])
RETURNING id

-- name: reclaim_cancelled
-- $1: now, $2: owners known to be alive.
UPDATE tasks SET state = 'cancelled', finished_at = $1, lease_owner = NULL,
    lease_expires_at = NULL, version = version + 1
WHERE state = 'cancelling' AND lease_expires_at < $1 AND lease_owner <> ALL($2::text[])
RETURNING id

-- name: reclaim_owner_failed
-- The tasks of owners known to be dead, whatever their lease: as reclaim_failed,
-- $3: the dead owners.
UPDATE tasks SET state = 'failed', finished_at = $1, lease_owner = NULL,
    lease_expires_at = NULL, error_type = 'WorkerLostError', error_message = $2,
    error_traceback = NULL, version = version + 1,
    errors = (errors::jsonb || jsonb_build_array(jsonb_build_object('type', 'WorkerLostError',
        'message', $2::text, 'traceback', NULL, 'at', $1::float8, 'attempt', attempts)))::text
WHERE state = 'running' AND attempts >= max_attempts AND lease_owner = ANY($3::text[])
RETURNING id

-- name: reclaim_owner_requeued
-- $1: now, $2: the dead owners.
UPDATE tasks SET state = 'queued', started_at = NULL, lease_owner = NULL,
    lease_expires_at = NULL, run_at = $1, version = version + 1
WHERE state = 'running' AND lease_owner = ANY($2::text[]) RETURNING id

-- name: reclaim_owner_cancelled
-- $1: now, $2: the dead owners.
UPDATE tasks SET state = 'cancelled', finished_at = $1, lease_owner = NULL,
    lease_expires_at = NULL, version = version + 1
WHERE state = 'cancelling' AND lease_owner = ANY($2::text[]) RETURNING id

-- name: cancel
-- Queued and waiting tasks are cancelled at once; running ones are asked to stop
-- (see Store.cancel).
UPDATE tasks SET version = version + 1,
    state = CASE state WHEN 'running' THEN 'cancelling' ELSE 'cancelled' END,
    finished_at = CASE state WHEN 'running' THEN NULL ELSE $1::float8 END,
    lease_owner = CASE state WHEN 'running' THEN lease_owner END,
    lease_expires_at = CASE state WHEN 'running' THEN lease_expires_at END
WHERE id = $2 AND state IN ('queued', 'waiting', 'running')

-- name: retry
-- Fresh attempts and snoozes; the error history is kept. Not while another task
-- holds its unique key (queued, running or cancelling).
UPDATE tasks SET state = 'queued', attempts = 0, snoozes = 0, run_at = $1, started_at = NULL,
    finished_at = NULL, result = NULL, error_type = NULL, error_message = NULL,
    error_traceback = NULL, progress_current = NULL, progress_total = NULL,
    progress_message = NULL, version = version + 1
WHERE id = $2 AND state IN ('failed', 'cancelled')
    AND (unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM tasks a
        WHERE a.unique_key = tasks.unique_key AND a.state IN ('queued', 'running', 'cancelling'))) RETURNING id

-- name: purge
WITH old AS MATERIALIZED (
    SELECT id FROM tasks
    WHERE state = ANY($3::text[]) AND finished_at < $1
        AND (workflow_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM tasks_edges e JOIN tasks c ON c.id = e.child_id
            WHERE e.parent_id = tasks.id AND c.state = 'waiting'))
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM tasks USING old WHERE tasks.id = old.id

-- name: get
SELECT {columns} FROM tasks WHERE id = $1

-- name: get_many
SELECT {columns} FROM tasks WHERE id = ANY($1::text[])

-- name: next_run_at
SELECT MIN(run_at) FROM tasks WHERE state = 'queued'
    AND queue = ANY($1::text[]) AND run_at > $2

-- name: cancel_requests
SELECT id FROM tasks WHERE state = 'cancelling' AND lease_owner = $1

-- name: schedule_register
INSERT INTO tasks_schedules (name, last_slot, paused, updated_at)
SELECT n, s, false, $3 FROM unnest($1::text[], $2::float8[]) AS v(n, s)
ON CONFLICT (name) DO NOTHING

-- name: schedule_states
SELECT name, last_slot, paused FROM tasks_schedules

-- name: schedule_fired
UPDATE tasks_schedules SET last_slot = GREATEST(last_slot, $1), updated_at = $2 WHERE name = $3

-- name: schedule_paused
UPDATE tasks_schedules SET paused = $1, updated_at = $2 WHERE name = $3
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
-- As in SQLite; rate windows are on the server's clock.
WITH now AS (SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS at)
SELECT
    (SELECT COUNT(*) FROM tasks
     WHERE state IN ('running', 'cancelling') AND concurrency_key = $1),
    (SELECT COUNT(*) FROM tasks_rate_starts, now WHERE rate_key = $2 AND until > now.at),
    (SELECT MIN(until) - MIN(now.at) FROM tasks_rate_starts, now
     WHERE rate_key = $2 AND until > now.at),
    (SELECT COUNT(*) FROM tasks WHERE state IN ('running', 'cancelling') AND queue = $3)

-- name: finished_by_queue
-- Per queue: tasks that reached a terminal state at or after $1 (walks tasks_finished).
SELECT queue, COUNT(*)
FROM tasks
WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at >= $1
GROUP BY queue
ORDER BY queue

-- name: activity
-- Finished tasks per bucket of $2 seconds from $1: count, failures, and the start
-- latency (started_at - run_at) of those that ran: mean and maximum.
SELECT floor((finished_at - $1) / $2)::bigint AS bucket,
       COUNT(*),
       SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END),
       AVG(started_at - run_at),
       MAX(started_at - run_at)
FROM tasks
WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at >= $1
GROUP BY bucket
ORDER BY bucket

-- name: worker_register
-- A process that runs workers (tasks/fleet.py); registering again refreshes the row.
INSERT INTO tasks_workers
    (id, host, pid, version, queues, concurrency, started_at, heartbeat_at, lost_at, liveness_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)
ON CONFLICT (id) DO UPDATE SET queues = excluded.queues, concurrency = excluded.concurrency,
    heartbeat_at = excluded.heartbeat_at, lost_at = NULL, liveness_key = excluded.liveness_key

-- name: worker_heartbeat
UPDATE tasks_workers SET heartbeat_at = $1, lost_at = NULL WHERE id = $2 RETURNING id

-- name: worker_liveness_key
-- The process holds its advisory lock (again): others may now tell whether it lives.
UPDATE tasks_workers SET liveness_key = $2 WHERE id = $1

-- name: worker_remove
DELETE FROM tasks_workers WHERE id = $1

-- name: workers_lost
UPDATE tasks_workers SET lost_at = $1 WHERE id = ANY($2::text[]) AND lost_at IS NULL

-- name: workers_prune
DELETE FROM tasks_workers WHERE heartbeat_at < $1 RETURNING id

-- name: workers
-- Every row, with whether its advisory lock is held now (pg_locks shows a bigint
-- key as classid = high half, objid = low half, objsubid = 1); NULL: no key yet.
WITH held AS (
    SELECT l.classid::bigint * 4294967296 + l.objid::bigint AS key FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT id, host, pid, version, queues, concurrency, started_at, heartbeat_at, lost_at,
    CASE WHEN liveness_key IS NULL THEN NULL
        ELSE liveness_key IN (SELECT key FROM held) END AS live
FROM tasks_workers ORDER BY started_at, id

-- name: workers_running
-- The tasks each registered worker holds now (running or asked to stop).
SELECT lease_owner, id FROM tasks
WHERE state IN ('running', 'cancelling')
    AND lease_owner IN (SELECT id FROM tasks_workers)
ORDER BY started_at, id

-- name: liveness_lock
-- Held by the liveness session until it ends (tasks/store/postgres/liveness.py).
SELECT pg_advisory_lock($1)

-- name: workflow_insert
INSERT INTO tasks_workflows (id, kind, created_at, result_ids, result_kind)
VALUES ($1, $2, $3, $4, $5)

-- name: edges_insert
INSERT INTO tasks_edges (parent_id, child_id, kind, position)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])

-- name: parents_found
-- Tasks stored before that steps of a new workflow need, locked until it
-- commits: a parent that ends meanwhile waits, then its trigger sees the edges.
SELECT id, state, name, workflow_id FROM tasks WHERE id = ANY($1::text[]) ORDER BY id
FOR UPDATE

-- name: join_workflow
UPDATE tasks SET workflow_id = $1 WHERE id = ANY($2::text[]) AND workflow_id IS NULL

-- name: steps_settle
-- New steps: in their workflow, waiting for the steps they need that have not
-- succeeded (queued if none) and, for error steps, for a failure.
UPDATE tasks t SET workflow_id = $1, receives = v.receives,
    blockers = (SELECT COUNT(*) FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
        WHERE e.child_id = t.id AND e.kind = 'needs' AND p.state <> 'succeeded'),
    state = CASE WHEN EXISTS (SELECT 1 FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
            WHERE e.child_id = t.id AND (e.kind = 'error' OR p.state <> 'succeeded'))
        THEN 'waiting' ELSE 'queued' END
FROM unnest($2::text[], $3::text[]) AS v(id, receives)
WHERE t.id = v.id

-- name: step_not_run
UPDATE tasks SET state = 'cancelled', finished_at = $1, error_type = 'DependencyError',
    error_message = $2, version = version + 1
WHERE id = $3 AND state = 'waiting'

-- name: workflow_get
SELECT id, kind, created_at, result_ids, result_kind FROM tasks_workflows WHERE id = $1

-- name: workflow_steps
SELECT {columns} FROM tasks WHERE workflow_id = $1 ORDER BY id

-- name: workflow_edges
SELECT e.parent_id, e.child_id, e.kind, e.position FROM tasks_edges e
JOIN tasks c ON c.id = e.child_id WHERE c.workflow_id = $1 ORDER BY e.child_id, e.position

-- name: step_inputs
SELECT e.parent_id, e.kind, p.state, p.result FROM tasks_edges e
JOIN tasks p ON p.id = e.parent_id WHERE e.child_id = $1 ORDER BY e.position

-- name: task_edges
SELECT parent_id, child_id, kind, position FROM tasks_edges
WHERE parent_id = $1 OR child_id = $1 ORDER BY position

-- name: workflow_cancel
UPDATE tasks SET version = version + 1,
    state = CASE state WHEN 'running' THEN 'cancelling' ELSE 'cancelled' END,
    finished_at = CASE state WHEN 'running' THEN NULL ELSE $1::float8 END
WHERE workflow_id = $2 AND state IN ('queued', 'waiting', 'running') RETURNING id
