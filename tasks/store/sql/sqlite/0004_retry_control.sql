-- Retry control (issue 16.6): how often a task put itself back on purpose
-- (tasks.Retry, a "snooze", which spends no attempt), a per-task timeout that
-- overrides the registered one, and every attempt's error as a JSON array of
-- {"type", "message", "traceback", "at", "attempt"} objects, oldest first
-- (the error_* columns keep the latest).
ALTER TABLE tasks ADD COLUMN snoozes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN timeout REAL CHECK (timeout IS NULL OR timeout > 0);
ALTER TABLE tasks ADD COLUMN errors TEXT NOT NULL DEFAULT '[]';
