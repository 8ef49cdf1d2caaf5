package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// resumedByQuery finds the resume of an execution through the partial
// index on resumed_from, without reading any execution's events. A
// database written before resumes were refused twice may hold two: the
// first one counts, as in the writer's conflict message.
const resumedByQuery = `SELECT id FROM executions WHERE resumed_from = ? AND resumed_from <> ''
	ORDER BY created_at, id LIMIT 1`

// ResumedBy returns the id of the execution that resumed execution id, or
// "" when none has (or there is no execution id): not being resumed is the
// usual state of an execution, not an error. It fails with an
// "unavailable" workflow.Error when the DB is closed and with ctx's error
// if ctx ends first. It is safe for concurrent use.
func (db *DB) ResumedBy(ctx context.Context, id string) (string, error) {
	s, err := db.readStmt(ctx, resumedByQuery)
	if err != nil {
		return "", db.readError(fmt.Errorf("resumed by %s: %w", id, err))
	}
	var by string
	switch err := s.QueryRowContext(ctx, id).Scan(&by); {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", db.readError(fmt.Errorf("resumed by %s: %w", id, err))
	}
	return by, nil
}
