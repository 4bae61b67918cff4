-- Workflows (issue 18), as in SQLite (see sqlite/0008_workflows.sql for the
-- columns and tables). The trigger moves a workflow on in the transaction of
-- the state change that causes it, whatever wrote it.
ALTER TABLE tasks DROP CONSTRAINT tasks_state_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_state_check CHECK (state IN
    ('queued', 'waiting', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE tasks ADD COLUMN workflow_id text;
ALTER TABLE tasks ADD COLUMN blockers integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN receives text
    CHECK (receives IS NULL OR receives IN ('result', 'results', 'failure'));
CREATE INDEX tasks_by_workflow ON tasks (workflow_id, id) WHERE workflow_id IS NOT NULL;

CREATE TABLE tasks_workflows (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    created_at  double precision NOT NULL,
    result_ids  text NOT NULL,
    result_kind text NOT NULL
);

CREATE TABLE tasks_edges (
    parent_id text NOT NULL,
    child_id  text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('needs', 'error')),
    position  integer NOT NULL,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX tasks_edges_child ON tasks_edges (child_id, position);

-- The cascades (a failure cancelling every step below it, a retry reviving
-- them) are done by the outermost invocation in one pass: a statement with a
-- recursive query, or a loop level by level. The rows they change fire this
-- trigger again (pg_trigger_depth() > 1), which then only drops the error
-- steps no step can need any more: recursing once per level would run out of
-- stack on a long chain.
CREATE FUNCTION tasks_workflow_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    frontier text[];
BEGIN
    IF pg_trigger_depth() = 1 THEN
        IF NEW.state = 'succeeded' THEN
            -- the steps that need it have one blocker fewer (queued at none)
            UPDATE tasks SET blockers = blockers - 1,
                state = CASE WHEN blockers <= 1 THEN 'queued' ELSE 'waiting' END,
                version = version + 1
            WHERE state = 'waiting' AND id IN (
                SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'needs');
        ELSIF NEW.state IN ('failed', 'cancelled') AND OLD.state NOT IN ('failed', 'cancelled') THEN
            -- every step below it is cancelled, naming the step that started it
            WITH RECURSIVE below(id) AS (
                SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'needs'
                UNION
                SELECT e.child_id FROM tasks_edges e JOIN below b ON e.parent_id = b.id
                WHERE e.kind = 'needs'
            )
            UPDATE tasks SET state = 'cancelled',
                finished_at = COALESCE(NEW.finished_at, NEW.run_at),
                error_type = 'DependencyError',
                error_message = CASE WHEN NEW.error_type = 'DependencyError'
                    THEN NEW.error_message
                    ELSE 'not run: step ' || NEW.name || ' (' || NEW.id || ') '
                        || CASE NEW.state WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END
                    END,
                version = version + 1
            WHERE state = 'waiting' AND id IN (SELECT id FROM below);
            IF NEW.state = 'failed' THEN  -- its error steps run
                UPDATE tasks SET state = 'queued', blockers = 0, version = version + 1
                WHERE state = 'waiting' AND id IN (
                    SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'error');
            END IF;
        ELSIF NEW.state IN ('queued', 'waiting') AND OLD.state IN ('failed', 'cancelled') THEN
            -- retried: it waits for the steps it needs that have not succeeded ...
            UPDATE tasks SET state = 'waiting', blockers = (
                SELECT COUNT(*) FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
                WHERE e.child_id = NEW.id AND e.kind = 'needs' AND p.state <> 'succeeded')
            WHERE id = NEW.id AND state = 'queued' AND EXISTS (
                SELECT 1 FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
                WHERE e.child_id = NEW.id AND e.kind = 'needs' AND p.state <> 'succeeded');
            -- ... and, level by level, the steps cancelled because of it wait
            -- again, unless another step they need failed or was cancelled
            frontier := ARRAY[NEW.id];
            LOOP
                WITH revived AS (
                    UPDATE tasks c SET state = 'waiting', finished_at = NULL, error_type = NULL,
                        error_message = NULL, error_traceback = NULL, version = c.version + 1,
                        blockers = (SELECT COUNT(*) FROM tasks_edges e
                            JOIN tasks p ON p.id = e.parent_id
                            WHERE e.child_id = c.id AND e.kind = 'needs'
                                AND p.state <> 'succeeded')
                    WHERE c.state = 'cancelled' AND c.error_type = 'DependencyError'
                        AND c.id IN (SELECT child_id FROM tasks_edges
                            WHERE parent_id = ANY(frontier) AND kind = 'needs')
                        AND NOT EXISTS (SELECT 1 FROM tasks_edges e
                            JOIN tasks p ON p.id = e.parent_id
                            WHERE e.child_id = c.id AND e.kind = 'needs'
                                AND p.state IN ('failed', 'cancelled'))
                    RETURNING c.id
                )
                SELECT array_agg(id) INTO frontier FROM revived;
                EXIT WHEN frontier IS NULL;
            END LOOP;
        END IF;
    END IF;
    IF NEW.state IN ('succeeded', 'cancelled') THEN
        -- error steps all of whose steps succeeded or were cancelled are dropped
        DELETE FROM tasks t WHERE t.state = 'waiting' AND t.id IN (
            SELECT child_id FROM tasks_edges WHERE parent_id = NEW.id AND kind = 'error')
            AND NOT EXISTS (SELECT 1 FROM tasks_edges e JOIN tasks p ON p.id = e.parent_id
                WHERE e.child_id = t.id AND e.kind = 'error'
                    AND p.state NOT IN ('succeeded', 'cancelled'));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_workflow_moved AFTER UPDATE OF state ON tasks
FOR EACH ROW WHEN (NEW.workflow_id IS NOT NULL AND NEW.state IS DISTINCT FROM OLD.state)
EXECUTE FUNCTION tasks_workflow_moved();

CREATE FUNCTION tasks_workflow_purged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tasks_edges WHERE parent_id = OLD.id OR child_id = OLD.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_workflow_purged AFTER DELETE ON tasks
FOR EACH ROW WHEN (OLD.workflow_id IS NOT NULL) EXECUTE FUNCTION tasks_workflow_purged();
