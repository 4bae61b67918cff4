-- Worker registry (tasks/fleet.py), as in SQLite, plus liveness_key: the
-- session-level advisory lock the process holds on a connection of its own
-- while it lives (NULL until it first holds it). Other processes read
-- pg_locks: a registered key nobody holds means the process is gone.
-- queues is a JSON array in text, as args and result are.
CREATE TABLE tasks_workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          bigint NOT NULL,
    version      text NOT NULL,
    queues       text NOT NULL,
    concurrency  bigint NOT NULL,
    started_at   double precision NOT NULL,
    heartbeat_at double precision NOT NULL,
    lost_at      double precision,
    liveness_key bigint
);
