-- 0008_triggers: a placeholder on the waiting branch, so that 0010 follows
-- without a gap. The triggers branch owns this number; at the merge its
-- file replaces this one.
SELECT 1;
