-- Flow control (issue 17): limits stored with each row, enforced by the claim.
--   concurrency_key / concurrency_limit: at most that many tasks of the key
--     running (or cancelling) at once, fleet-wide;
--   rate_key / rate_limit / rate_period: at most rate_limit starts of the key
--     in any window of rate_period seconds (the starts are kept in
--     tasks_rate_starts until their window has passed);
--   unique_key: at most one queued, running or cancelling task per key.
-- The keys are scoped by task name ("name" or "name:key").
ALTER TABLE tasks ADD COLUMN concurrency_key TEXT;
ALTER TABLE tasks ADD COLUMN concurrency_limit INTEGER
    CHECK (concurrency_limit IS NULL OR concurrency_limit >= 1);
ALTER TABLE tasks ADD COLUMN rate_key TEXT;
ALTER TABLE tasks ADD COLUMN rate_limit INTEGER CHECK (rate_limit IS NULL OR rate_limit >= 1);
ALTER TABLE tasks ADD COLUMN rate_period REAL CHECK (rate_period IS NULL OR rate_period > 0);
ALTER TABLE tasks ADD COLUMN unique_key TEXT;

-- The claim walks tasks_claimable for tasks without limits (the fast path)
-- and tasks_claimable_limited, a covering index, for the others.
DROP INDEX tasks_claimable;
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

CREATE TABLE tasks_rate_starts (
    rate_key   TEXT NOT NULL,
    until      REAL NOT NULL,
    rate_limit INTEGER NOT NULL
);
CREATE INDEX tasks_rate_starts_key ON tasks_rate_starts (rate_key, until);
CREATE INDEX tasks_rate_starts_until ON tasks_rate_starts (until);
