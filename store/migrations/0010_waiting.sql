-- 0010_waiting: what a waiting execution waits for, and the budget approved
-- for it, so that a restart finds both and continues the execution under
-- its own id. The execution's status ("waiting") is in executions; these
-- tables hold the details.
--
-- No foreign key to executions: the writer may commit an execution's
-- header after a write of the same batch that names it. A trigger removes
-- the rows with their execution instead.
CREATE TABLE execution_waits (
    execution_id TEXT NOT NULL,
    key          TEXT NOT NULL, -- the human node's id, or "budget"
    wait         TEXT NOT NULL, -- the workflow.Wait as JSON
    PRIMARY KEY (execution_id, key)
) STRICT;

CREATE TABLE execution_budget (
    execution_id TEXT    NOT NULL PRIMARY KEY,
    extra_tokens INTEGER NOT NULL DEFAULT 0, -- approved on top of token_budget, in total
    extra_usd    REAL    NOT NULL DEFAULT 0  -- approved on top of budget_usd, in total
) STRICT;

CREATE TRIGGER executions_delete_waits AFTER DELETE ON executions
BEGIN
    DELETE FROM execution_waits WHERE execution_id = OLD.id;
    DELETE FROM execution_budget WHERE execution_id = OLD.id;
END;
