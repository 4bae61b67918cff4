-- Periodic schedules (tasks/schedules.py): per schedule, the latest slot whose
-- task was inserted (it only moves forward) and whether it is paused.
CREATE TABLE tasks_schedules (
    name       text COLLATE "C" PRIMARY KEY,
    last_slot  double precision NOT NULL,
    paused     boolean NOT NULL DEFAULT false,
    updated_at double precision NOT NULL
);
