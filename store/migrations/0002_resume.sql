-- 0002_resume: an execution resumed from an interrupted or failed one names
-- it, so the two stay linked.
ALTER TABLE executions ADD COLUMN resumed_from TEXT NOT NULL DEFAULT '';
