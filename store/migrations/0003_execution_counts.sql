-- 0003_execution_counts: how many executions each workflow has, kept by
-- triggers in the same transactions as the executions themselves. The
-- total of a workflow's listing (X-Total-Count) reads one row here instead
-- of counting every index entry of the workflow, which takes 20 ms with
-- 100,000 executions. Only a new, deleted or moved execution changes a
-- count, so the status changes of running executions cost nothing here.
CREATE TABLE execution_counts (
    workflow_id TEXT    NOT NULL PRIMARY KEY,
    n           INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO execution_counts (workflow_id, n)
    SELECT workflow_id, count(*) FROM executions GROUP BY workflow_id;

CREATE TRIGGER executions_counted AFTER INSERT ON executions BEGIN
    INSERT INTO execution_counts (workflow_id, n) VALUES (NEW.workflow_id, 1)
        ON CONFLICT (workflow_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER executions_uncounted AFTER DELETE ON executions BEGIN
    UPDATE execution_counts SET n = n - 1 WHERE workflow_id = OLD.workflow_id;
END;

CREATE TRIGGER executions_moved AFTER UPDATE OF workflow_id ON executions
    WHEN OLD.workflow_id IS NOT NEW.workflow_id
BEGIN
    UPDATE execution_counts SET n = n - 1 WHERE workflow_id = OLD.workflow_id;
    INSERT INTO execution_counts (workflow_id, n) VALUES (NEW.workflow_id, 1)
        ON CONFLICT (workflow_id) DO UPDATE SET n = n + 1;
END;
