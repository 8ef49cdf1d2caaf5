-- 0007_placement: where a pubsub execution's agents ran (workers or the
-- server itself) and, when workers were asked for but not used, why. The
-- worker each node ran on is in its events (exec_events, "worker").
ALTER TABLE executions ADD COLUMN placement TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN placement_fallback_reason TEXT NOT NULL DEFAULT '';
