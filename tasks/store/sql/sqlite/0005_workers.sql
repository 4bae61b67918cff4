-- Worker registry (tasks/fleet.py): one row per process that runs workers,
-- inserted at its start, refreshed by its lease heartbeat, deleted when it
-- stops cleanly. lost_at is set by the process that found it dead (its lock
-- file free) and recovered its tasks. The tasks it runs are not stored here:
-- they are the running tasks whose lease_owner is its id.
CREATE TABLE tasks_workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    version      TEXT NOT NULL,
    queues       TEXT NOT NULL,
    concurrency  INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    lost_at      REAL
) WITHOUT ROWID;
