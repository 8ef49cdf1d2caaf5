package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// Retention says which ended executions to delete: those created before
// now minus MaxAge (0: no age limit), and those beyond the newest MaxCount
// (0: no count limit). Executions that have not ended are never deleted.
// Nor does the count alone delete an interrupted execution that nothing
// has resumed yet: a crash marks every execution it stopped interrupted,
// and the start-up that marks them prunes at once, which would delete the
// work a resume is there to save. The age limit still applies to them.
type Retention struct {
	MaxAge   time.Duration
	MaxCount int
}

// Prune deletes up to batch ended executions that Retention no longer keeps,
// with everything they recorded, in one short transaction, and returns how
// many it deleted. Call it again until it returns less than batch: small
// batches keep the writer free for running executions. It fails when the
// database does. It is safe for concurrent use.
func (db *DB) Prune(ctx context.Context, r Retention, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	if r.MaxAge <= 0 && r.MaxCount <= 0 {
		return 0, nil
	}
	cutoff := int64(0)
	if r.MaxAge > 0 {
		cutoff = time.Now().Add(-r.MaxAge).UnixNano()
	}
	var deleted int
	err := db.exec(ctx, func(tx *sql.Tx) error {
		// The newest MaxCount are kept whatever their age; of the rest, those
		// older than the cutoff (or all of them when there is no age limit).
		keep := r.MaxCount
		if keep <= 0 {
			keep = -1 // LIMIT -1 OFFSET 0: no count limit
		}
		res, err := tx.Exec(`DELETE FROM executions WHERE id IN (
			SELECT id FROM executions e
			WHERE status IN (?, ?, ?, ?) AND id NOT IN (
				SELECT id FROM executions ORDER BY created_at DESC, id DESC LIMIT ?)
			  AND (? = 0 OR created_at < ?)
			  AND (? <> 0 OR status <> ? OR EXISTS (
				SELECT 1 FROM executions r WHERE r.resumed_from = e.id AND r.resumed_from <> ''))
			ORDER BY created_at, id LIMIT ?)`,
			workflow.ExecSuccess, workflow.ExecError, workflow.ExecCancelled, workflow.ExecInterrupted,
			countOrZero(keep, r.MaxCount), cutoff, cutoff, cutoff, workflow.ExecInterrupted, batch)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		deleted = int(n)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune executions: %w", err)
	}
	return deleted, nil
}

// countOrZero is the number of newest executions always kept: MaxCount, or
// none when only an age limit is set.
func countOrZero(keep, maxCount int) int {
	if maxCount <= 0 {
		return 0
	}
	return keep
}
