-- 0001_init: workflows, executions and everything an execution records.
--
-- Times are INTEGER unix nanoseconds (UTC): they sort correctly, which
-- RFC3339Nano text does not (it trims trailing zeros of the fraction), and
-- they compare cheaply in the (…, created_at DESC) indexes. NULL means "not
-- set". Values that are open JSON in the domain (documents, outputs, inputs,
-- metadata, shared-context values) are TEXT holding JSON; NULL means nil.
-- Token counts are plain columns so they can be summed in SQL.

CREATE TABLE workflows (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    mode       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    doc        TEXT    NOT NULL -- the whole workflow document as JSON
) STRICT;

CREATE INDEX workflows_updated ON workflows (updated_at DESC, id DESC);

-- executions has no foreign key to workflows on purpose: deleting a workflow
-- keeps its history, and `switchboard run FILE` records executions of
-- workflows that were never stored.
CREATE TABLE executions (
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
    total_tokens      INTEGER NOT NULL DEFAULT 0
) STRICT;

-- id is the tie-breaker of every listing, so pages are stable when two
-- executions share a created_at; having it in the index lets SQLite walk the
-- index in order and stop after LIMIT rows instead of sorting.
CREATE INDEX executions_workflow_created ON executions (workflow_id, created_at DESC, id DESC);
CREATE INDEX executions_created          ON executions (created_at DESC, id DESC);
CREATE INDEX executions_status           ON executions (status, created_at DESC, id DESC);

CREATE TABLE node_states (
    execution_id      TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    node_id           TEXT    NOT NULL,
    seq               INTEGER NOT NULL, -- event seq when the node was first seen; never updated
    type              TEXT    NOT NULL DEFAULT '',
    name              TEXT    NOT NULL DEFAULT '',
    status            TEXT    NOT NULL DEFAULT '',
    output            TEXT,
    started_at        INTEGER,
    finished_at       INTEGER,
    model             TEXT    NOT NULL DEFAULT '',
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    calls             INTEGER NOT NULL DEFAULT 0,
    error             TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (execution_id, node_id)
) STRICT;

-- The append-only logs of an execution. id (the rowid) breaks ties between
-- equal seqs, so rows come back in the order they were written.
CREATE TABLE exec_logs (
    id           INTEGER NOT NULL PRIMARY KEY,
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    time         INTEGER,
    level        TEXT    NOT NULL DEFAULT '',
    message      TEXT    NOT NULL DEFAULT '',
    node_id      TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX exec_logs_execution ON exec_logs (execution_id, seq);

CREATE TABLE exec_errors (
    id           INTEGER NOT NULL PRIMARY KEY,
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    time         INTEGER,
    node_id      TEXT    NOT NULL DEFAULT '',
    code         TEXT    NOT NULL DEFAULT '',
    message      TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX exec_errors_execution ON exec_errors (execution_id, seq);

-- The communication log: asks, responses, broadcasts, context updates.
CREATE TABLE exec_messages (
    id           INTEGER NOT NULL PRIMARY KEY,
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    time         INTEGER,
    from_node    TEXT    NOT NULL DEFAULT '',
    to_node      TEXT    NOT NULL DEFAULT '',
    type         TEXT    NOT NULL DEFAULT '',
    content      TEXT    NOT NULL DEFAULT '',
    metadata     TEXT
) STRICT;

CREATE INDEX exec_messages_execution ON exec_messages (execution_id, seq);

CREATE TABLE shared_context (
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    value        TEXT,
    seq          INTEGER NOT NULL,
    updated_at   INTEGER,
    PRIMARY KEY (execution_id, key)
) STRICT;
