-- 0005_usage_estimated: whether an execution's token counts are (partly)
-- estimates, made where the model server reported no usage. A node's flag
-- is in its events (exec_events, "est").
ALTER TABLE executions ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
