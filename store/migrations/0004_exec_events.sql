-- 0004_exec_events: an execution's events other than its header are kept
-- as chunks, one row per execution per write batch holding a JSON array of
-- events (store/events.go, storedEvent), instead of a row per event or per
-- node over five tables with their indexes; and executions becomes a
-- WITHOUT ROWID table, so a row and its id are one B-tree rather than two.
-- A Q&A execution writes two rows in seven B-trees, not eighteen in twelve:
-- rows and B-trees written are what bounds executions per second.
--
-- The rows of the old tables are moved into one chunk per execution, in
-- the order they were read before: by seq, then by table, then by arrival.
-- The chunks are built first, into a temporary table: dropping executions
-- while tables refer to it would delete their rows (foreign keys cascade).

CREATE TEMP TABLE moved_events AS
SELECT execution_id, json_group_array(json(ev) ORDER BY seq, part, rid) AS events
FROM (
    SELECT execution_id, seq, 0 AS part, rowid AS rid,
        json_object('k', 'node', 's', seq, 'node', node_id, 'type', type, 'name', name, 'status', status,
            'v', json(output), 'start', started_at, 'finish', finished_at, 'model', model,
            'pt', prompt_tokens, 'ct', completion_tokens, 'tt', total_tokens, 'calls', calls, 'err', error) AS ev
    FROM node_states
    UNION ALL
    SELECT execution_id, seq, 1, id,
        json_object('k', 'log', 's', seq, 't', time, 'level', level, 'msg', message, 'node', node_id)
    FROM exec_logs
    UNION ALL
    SELECT execution_id, seq, 2, id,
        json_object('k', 'error', 's', seq, 't', time, 'node', node_id, 'code', code, 'msg', message)
    FROM exec_errors
    UNION ALL
    SELECT execution_id, seq, 3, id,
        json_object('k', 'message', 's', seq, 't', time, 'from', from_node, 'to', to_node, 'type', type,
            'msg', content, 'meta', json(metadata))
    FROM exec_messages
    UNION ALL
    SELECT execution_id, seq, 4, rowid,
        json_object('k', 'context', 's', seq, 't', updated_at, 'key', key, 'v', json(value))
    FROM shared_context
)
GROUP BY execution_id;

DROP TABLE node_states;
DROP TABLE exec_logs;
DROP TABLE exec_errors;
DROP TABLE exec_messages;
DROP TABLE shared_context;

CREATE TABLE executions_new (
    id                TEXT    NOT NULL PRIMARY KEY,
    workflow_id       TEXT    NOT NULL,
    workflow_name     TEXT    NOT NULL DEFAULT '',
    status            TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    start_time        INTEGER,
    end_time          INTEGER,
    requested_mode    TEXT    NOT NULL DEFAULT '',
    mode              TEXT    NOT NULL DEFAULT '',
    fallback_reason   TEXT    NOT NULL DEFAULT '',
    error             TEXT    NOT NULL DEFAULT '',
    inputs            TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    resumed_from      TEXT    NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;

INSERT INTO executions_new (id, workflow_id, workflow_name, status, created_at, start_time, end_time,
        requested_mode, mode, fallback_reason, error, inputs, prompt_tokens, completion_tokens, total_tokens, resumed_from)
    SELECT id, workflow_id, workflow_name, status, created_at, start_time, end_time,
        requested_mode, mode, fallback_reason, error, inputs, prompt_tokens, completion_tokens, total_tokens, resumed_from
    FROM executions;

-- Dropping the table drops its indexes and its triggers first, so the
-- counts are left as they are: the same rows come back below.
DROP TABLE executions;
ALTER TABLE executions_new RENAME TO executions;

CREATE INDEX executions_workflow_created ON executions (workflow_id, created_at DESC, id DESC);
CREATE INDEX executions_created          ON executions (created_at DESC, id DESC);
CREATE INDEX executions_status           ON executions (status, created_at DESC, id DESC);

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

CREATE TABLE exec_events (
    id           INTEGER NOT NULL PRIMARY KEY, -- arrival order
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    events       TEXT    NOT NULL              -- JSON array of events
) STRICT;

CREATE INDEX exec_events_execution ON exec_events (execution_id, id);

INSERT INTO exec_events (execution_id, events)
    SELECT execution_id, events FROM moved_events ORDER BY execution_id;

DROP TABLE moved_events;
