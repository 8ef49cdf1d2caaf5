-- 0005_resumed_by: which execution resumed this one. Pruning keeps an
-- interrupted execution until it is resumed, and asks this index; only
-- resumed executions have an entry.
CREATE INDEX executions_resumed_from ON executions (resumed_from) WHERE resumed_from <> '';
