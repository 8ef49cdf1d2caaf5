-- 0006_resumed_by: an execution is resumed once. Two resumes of the same
-- execution would run its remaining nodes twice, with the models billed
-- twice and two records each claiming to continue it; the second one's
-- header is refused here, in the same transaction as the check, so two
-- resumes that arrive together cannot both pass. The store reports the
-- refusal as a conflict naming the execution that resumed it first.
--
-- A trigger rather than a unique index: a database written before this
-- migration may already hold two resumes of one execution, which must
-- stay readable. The index answers the trigger, and tells pruning whether
-- an interrupted execution was resumed; only resumed executions have an
-- entry.
CREATE INDEX executions_resumed_from ON executions (resumed_from) WHERE resumed_from <> '';

CREATE TRIGGER executions_resumed_once BEFORE INSERT ON executions
    WHEN NEW.resumed_from <> '' AND EXISTS (
        SELECT 1 FROM executions
        WHERE resumed_from = NEW.resumed_from AND resumed_from <> '' AND id <> NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'execution already resumed');
END;
