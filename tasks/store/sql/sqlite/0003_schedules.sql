-- Periodic schedules (tasks/schedules.py): per schedule, the latest slot whose
-- task was inserted (it only moves forward) and whether it is paused.
CREATE TABLE tasks_schedules (
    name       TEXT PRIMARY KEY,
    last_slot  REAL NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
