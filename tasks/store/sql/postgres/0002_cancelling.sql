-- A running task asked to stop is 'cancelling' until its owner confirms the
-- run has ended (or its lease runs out): only then is it 'cancelled', and
-- only then may it be retried.
ALTER TABLE tasks DROP CONSTRAINT tasks_state_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_state_check
    CHECK (state IN ('queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'));
DROP INDEX tasks_leases;
CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE state IN ('running', 'cancelling');
