-- Flow control (issue 17), as in SQLite: limits stored with each row and
-- enforced by the claim (see the SQLite migration for the meaning of each).
ALTER TABLE tasks ADD COLUMN concurrency_key text;
ALTER TABLE tasks ADD COLUMN concurrency_limit bigint
    CHECK (concurrency_limit IS NULL OR concurrency_limit >= 1);
ALTER TABLE tasks ADD COLUMN rate_key text;
ALTER TABLE tasks ADD COLUMN rate_limit bigint CHECK (rate_limit IS NULL OR rate_limit >= 1);
ALTER TABLE tasks ADD COLUMN rate_period double precision
    CHECK (rate_period IS NULL OR rate_period > 0);
ALTER TABLE tasks ADD COLUMN unique_key text;

DROP INDEX tasks_claimable;
CREATE INDEX tasks_claimable ON tasks (queue, priority DESC, run_at, id)
    WHERE state = 'queued' AND concurrency_key IS NULL AND rate_key IS NULL;
CREATE INDEX tasks_claimable_limited
    ON tasks (queue, priority DESC, run_at, id) INCLUDE (concurrency_key, concurrency_limit, rate_key, rate_limit)
    WHERE state = 'queued' AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL);
CREATE INDEX tasks_limited_running ON tasks (concurrency_key) INCLUDE (concurrency_limit)
    WHERE state IN ('running', 'cancelling') AND concurrency_key IS NOT NULL;
CREATE UNIQUE INDEX tasks_unique_active ON tasks (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'cancelling');

CREATE TABLE tasks_rate_starts (
    rate_key   text NOT NULL,
    until      double precision NOT NULL,
    rate_limit bigint NOT NULL
);
CREATE INDEX tasks_rate_starts_key ON tasks_rate_starts (rate_key, until);
CREATE INDEX tasks_rate_starts_until ON tasks_rate_starts (until);
