-- 0009_costs: a placeholder on the waiting branch, so that 0010 follows
-- without a gap. The costs branch owns this number; at the merge its file
-- replaces this one.
SELECT 1;
