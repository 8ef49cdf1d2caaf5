-- 0009_costs: what an execution's model calls cost, in US dollars. NULL
-- when a call had no price (cost_note says why), while it runs, and for
-- executions recorded before costs were tracked, which the note says.
-- Each node's cost is in its events (exec_events, "usd").
ALTER TABLE executions ADD COLUMN cost_usd REAL;
ALTER TABLE executions ADD COLUMN cost_estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN cost_note TEXT NOT NULL DEFAULT '';
UPDATE executions SET cost_note = 'recorded before costs were tracked';
