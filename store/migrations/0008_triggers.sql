-- 0008_triggers: what started each execution (JSON of workflow.Trigger; ''
-- for executions recorded before), the webhook token of each workflow, and
-- the last schedule tick each scheduled workflow ran, so that a tick missed
-- while the server was down runs once when it starts again.
ALTER TABLE executions ADD COLUMN started_by TEXT NOT NULL DEFAULT '';

-- The token is kept as it is, not hashed: the dashboard shows the hook URL
-- to its owner. Deleting a workflow deletes its token and its tick.
CREATE TABLE webhook_tokens (
    workflow_id TEXT    NOT NULL PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    token       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE schedule_ticks (
    workflow_id TEXT    NOT NULL PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    last_tick   INTEGER NOT NULL
) STRICT;
