-- Retry control (issue 16.6), as in SQLite: the snooze count (tasks.Retry
-- spends no attempt), a per-task timeout overriding the registered one, and
-- every attempt's error as a JSON array in text (as args and result are),
-- oldest first (the error_* columns keep the latest).
ALTER TABLE tasks ADD COLUMN snoozes bigint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN timeout double precision CHECK (timeout IS NULL OR timeout > 0);
ALTER TABLE tasks ADD COLUMN errors text NOT NULL DEFAULT '[]';
