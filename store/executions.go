package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// ExecutionFilter selects executions for ListExecutions and
// CountExecutions. Empty fields match everything. Limit <= 0 means no
// limit; a negative Offset counts as 0 (both are ignored by Count).
type ExecutionFilter struct {
	WorkflowID string
	Status     string
	Limit      int
	Offset     int
}

func (f ExecutionFilter) where() (string, []any) {
	var conds []string
	var args []any
	if f.WorkflowID != "" {
		conds = append(conds, "workflow_id = ?")
		args = append(args, f.WorkflowID)
	}
	if f.Status != "" {
		conds = append(conds, "status = ?")
		args = append(args, f.Status)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// RunSummary sums up the executions of one workflow for the dashboard's
// workflow list.
type RunSummary struct {
	Count      int       `json:"count"`       // executions recorded for the workflow
	LastID     string    `json:"last_id"`     // the most recently created one
	LastStatus string    `json:"last_status"` // its status
	LastAt     time.Time `json:"last_at"`     // its created_at (UTC)
}

const executionCols = `id, workflow_id, workflow_name, status, created_at, start_time, end_time, requested_mode, mode,
	fallback_reason, error, inputs, prompt_tokens, completion_tokens, total_tokens, resumed_from`

func scanExecution(s interface{ Scan(...any) error }) (*workflow.Execution, error) {
	var (
		e                   workflow.Execution
		created, start, end sql.NullInt64
		inputs              sql.NullString
	)
	if err := s.Scan(&e.ID, &e.WorkflowID, &e.WorkflowName, &e.Status, &created, &start, &end, &e.RequestedMode,
		&e.Mode, &e.FallbackReason, &e.Error, &inputs, &e.Usage.PromptTokens, &e.Usage.CompletionTokens,
		&e.Usage.TotalTokens, &e.ResumedFrom); err != nil {
		return nil, err
	}
	e.CreatedAt = fromNanos(created)
	e.StartTime, e.EndTime = fromNanosPtr(start), fromNanosPtr(end)
	var err error
	if e.Inputs, err = decodeMap(inputs); err != nil {
		return nil, fmt.Errorf("execution %s inputs: %w", e.ID, err)
	}
	return &e, nil
}

// GetExecution returns the full record of execution id as committed so
// far: its header, node_states, logs, errors and communication_log in the
// order they were recorded, and its shared context. The collections are
// never nil (empty when nothing was recorded), so they encode as {} and []
// for API clients. All parts are read in one read transaction, so they are
// consistent with each other even while the execution is being written.
//
// It fails with a "not_found" workflow.Error when there is no such
// execution, an "unavailable" one when the DB is closed, with ctx's error
// if ctx ends first, and with a wrapped error when a row cannot be read or
// a stored JSON value cannot be decoded. It never returns nil, nil. It is
// safe for concurrent use; the result belongs to the caller.
func (db *DB) GetExecution(ctx context.Context, id string) (*workflow.Execution, error) {
	e, err := db.getExecution(ctx, id)
	if err != nil {
		var we *workflow.Error
		if errors.As(err, &we) && we.Code == workflow.ErrNotFound {
			return nil, err
		}
		return nil, db.readError(fmt.Errorf("get execution %s: %w", id, err))
	}
	return e, nil
}

func (db *DB) getExecution(ctx context.Context, id string) (*workflow.Execution, error) {
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to lose

	e, err := scanExecution(db.queryRow(ctx, tx, `SELECT `+executionCols+` FROM executions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("execution", id, err)
	}
	if err != nil {
		return nil, err
	}
	states, err := db.queryNodeStates(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	e.NodeStates = make(map[string]*workflow.NodeState, len(states))
	for _, n := range states {
		e.NodeStates[n.NodeID] = n
	}
	if e.Logs, err = db.queryLogs(ctx, tx, id); err != nil {
		return nil, err
	}
	if e.Errors, err = db.queryErrors(ctx, tx, id); err != nil {
		return nil, err
	}
	if e.CommunicationLog, err = db.queryMessages(ctx, tx, id); err != nil {
		return nil, err
	}
	if e.SharedContext, err = db.querySharedContext(ctx, tx, id); err != nil {
		return nil, err
	}
	return e, nil
}

// NodeStates returns the node states of execution id in the order the
// nodes were first recorded (workflow.Execution.NodeStates is a map and
// cannot keep it). It fails with a "not_found" workflow.Error when there is
// no such execution, an "unavailable" one when the DB is closed, and with
// ctx's error if ctx ends first. It is safe for concurrent use.
func (db *DB) NodeStates(ctx context.Context, id string) ([]*workflow.NodeState, error) {
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, db.readError(fmt.Errorf("node states of execution %s: %w", id, err))
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to lose
	var one int
	err = db.queryRow(ctx, tx, `SELECT 1 FROM executions WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("execution", id, err)
	}
	if err != nil {
		return nil, db.readError(fmt.Errorf("node states of execution %s: %w", id, err))
	}
	states, err := db.queryNodeStates(ctx, tx, id)
	if err != nil {
		return nil, db.readError(fmt.Errorf("node states of execution %s: %w", id, err))
	}
	return states, nil
}

func (db *DB) queryNodeStates(ctx context.Context, tx *sql.Tx, id string) ([]*workflow.NodeState, error) {
	rows, err := db.query(ctx, tx, `SELECT node_id, type, name, status, output, started_at, finished_at, model,
			prompt_tokens, completion_tokens, total_tokens, calls, error
		FROM node_states WHERE execution_id = ? ORDER BY seq, rowid`, id)
	if err != nil {
		return nil, fmt.Errorf("query node states: %w", err)
	}
	defer rows.Close()
	out := []*workflow.NodeState{}
	for rows.Next() {
		var (
			n               workflow.NodeState
			output          sql.NullString
			started, finish sql.NullInt64
		)
		if err := rows.Scan(&n.NodeID, &n.Type, &n.Name, &n.Status, &output, &started, &finish, &n.Model,
			&n.Usage.PromptTokens, &n.Usage.CompletionTokens, &n.Usage.TotalTokens, &n.Calls, &n.Error); err != nil {
			return nil, fmt.Errorf("scan node state: %w", err)
		}
		if n.Output, err = decodeJSON(output); err != nil {
			return nil, fmt.Errorf("output of node %s: %w", n.NodeID, err)
		}
		n.StartedAt, n.FinishedAt = fromNanosPtr(started), fromNanosPtr(finish)
		out = append(out, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query node states: %w", err)
	}
	return out, nil
}

func (db *DB) queryLogs(ctx context.Context, tx *sql.Tx, id string) ([]workflow.LogEntry, error) {
	rows, err := db.query(ctx, tx, `SELECT time, level, message, node_id FROM exec_logs
		WHERE execution_id = ? ORDER BY seq, id`, id)
	if err != nil {
		return nil, fmt.Errorf("query logs: %w", err)
	}
	defer rows.Close()
	out := []workflow.LogEntry{}
	for rows.Next() {
		var (
			l workflow.LogEntry
			t sql.NullInt64
		)
		if err := rows.Scan(&t, &l.Level, &l.Message, &l.NodeID); err != nil {
			return nil, fmt.Errorf("scan log: %w", err)
		}
		l.Time = fromNanos(t)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query logs: %w", err)
	}
	return out, nil
}

func (db *DB) queryErrors(ctx context.Context, tx *sql.Tx, id string) ([]workflow.ErrorEntry, error) {
	rows, err := db.query(ctx, tx, `SELECT time, node_id, code, message FROM exec_errors
		WHERE execution_id = ? ORDER BY seq, id`, id)
	if err != nil {
		return nil, fmt.Errorf("query errors: %w", err)
	}
	defer rows.Close()
	out := []workflow.ErrorEntry{}
	for rows.Next() {
		var (
			e workflow.ErrorEntry
			t sql.NullInt64
		)
		if err := rows.Scan(&t, &e.NodeID, &e.Code, &e.Message); err != nil {
			return nil, fmt.Errorf("scan error entry: %w", err)
		}
		e.Time = fromNanos(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query errors: %w", err)
	}
	return out, nil
}

func (db *DB) queryMessages(ctx context.Context, tx *sql.Tx, id string) ([]workflow.CommEntry, error) {
	rows, err := db.query(ctx, tx, `SELECT time, from_node, to_node, type, content, metadata FROM exec_messages
		WHERE execution_id = ? ORDER BY seq, id`, id)
	if err != nil {
		return nil, fmt.Errorf("query communication log: %w", err)
	}
	defer rows.Close()
	out := []workflow.CommEntry{}
	for rows.Next() {
		var (
			c    workflow.CommEntry
			t    sql.NullInt64
			meta sql.NullString
		)
		if err := rows.Scan(&t, &c.From, &c.To, &c.Type, &c.Content, &meta); err != nil {
			return nil, fmt.Errorf("scan communication log: %w", err)
		}
		c.Time = fromNanos(t)
		if c.Metadata, err = decodeMap(meta); err != nil {
			return nil, fmt.Errorf("communication log metadata: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query communication log: %w", err)
	}
	return out, nil
}

func (db *DB) querySharedContext(ctx context.Context, tx *sql.Tx, id string) (map[string]any, error) {
	rows, err := db.query(ctx, tx, `SELECT key, value FROM shared_context WHERE execution_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("query shared context: %w", err)
	}
	defer rows.Close()
	out := map[string]any{}
	for rows.Next() {
		var (
			k string
			v sql.NullString
		)
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("scan shared context: %w", err)
		}
		if out[k], err = decodeJSON(v); err != nil {
			return nil, fmt.Errorf("shared context %s: %w", k, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query shared context: %w", err)
	}
	return out, nil
}

// ListExecutions returns the headers of the executions that match f,
// newest created first (ties broken by id), after skipping f.Offset of
// them: the header columns, inputs and total usage, with NodeStates, Logs,
// Errors, CommunicationLog and SharedContext nil. An empty result is an
// empty slice. Filtering by workflow, by status or by neither walks an
// index in order, so a page stays fast with many executions. It fails when
// the DB is closed, ctx ends first, or a row cannot be read. It is safe
// for concurrent use.
func (db *DB) ListExecutions(ctx context.Context, f ExecutionFilter) ([]*workflow.Execution, error) {
	q, args := listExecutionsQuery(f)
	rows, err := db.query(ctx, nil, q, args...)
	if err != nil {
		return nil, db.readError(fmt.Errorf("list executions: %w", err))
	}
	defer rows.Close()
	out := []*workflow.Execution{}
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, fmt.Errorf("list executions: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, db.readError(fmt.Errorf("list executions: %w", err))
	}
	return out, nil
}

// listExecutionsQuery is separate so a test can check its query plan.
func listExecutionsQuery(f ExecutionFilter) (string, []any) {
	where, args := f.where()
	limit, offset := page(f.Limit, f.Offset)
	return `SELECT ` + executionCols + ` FROM executions` + where +
		` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)
}

// CountExecutions returns how many executions match f (Limit and Offset
// are ignored). The count of a workflow's executions, or of all, reads the
// counts that triggers keep per workflow (migration 0003), so it costs the
// same with a hundred executions or a million; a status filter counts the
// matching rows. It fails when the DB is closed or ctx ends first. It is
// safe for concurrent use.
func (db *DB) CountExecutions(ctx context.Context, f ExecutionFilter) (int, error) {
	q, args := `SELECT coalesce(sum(n), 0) FROM execution_counts`, []any(nil)
	switch {
	case f.Status != "":
		var where string
		where, args = f.where()
		q = `SELECT count(*) FROM executions` + where
	case f.WorkflowID != "":
		q, args = q+` WHERE workflow_id = ?`, []any{f.WorkflowID}
	}
	var n int
	if err := db.queryRow(ctx, nil, q, args...).Scan(&n); err != nil {
		return 0, db.readError(fmt.Errorf("count executions: %w", err))
	}
	return n, nil
}

// WorkflowSummaries returns, for every workflow id that has executions
// (including deleted workflows and workflows run from a file and never
// stored), how many executions it has and which one was created last, in
// one query. Workflows without executions are absent from the map. It fails
// when the DB is closed or ctx ends first. It is safe for concurrent use.
func (db *DB) WorkflowSummaries(ctx context.Context) (map[string]RunSummary, error) {
	// The window walks executions_workflow_created in order, so the first
	// row of each partition is its newest execution.
	rows, err := db.rdb.QueryContext(ctx, `SELECT workflow_id, n, id, status, created_at FROM (
			SELECT workflow_id, id, status, created_at,
				count(*) OVER w AS n,
				row_number() OVER (w ORDER BY created_at DESC, id DESC) AS r
			FROM executions
			WINDOW w AS (PARTITION BY workflow_id)
		) WHERE r = 1`)
	if err != nil {
		return nil, db.readError(fmt.Errorf("workflow summaries: %w", err))
	}
	defer rows.Close()
	out := map[string]RunSummary{}
	for rows.Next() {
		var (
			wid string
			s   RunSummary
			at  int64
		)
		if err := rows.Scan(&wid, &s.Count, &s.LastID, &s.LastStatus, &at); err != nil {
			return nil, fmt.Errorf("workflow summaries: %w", err)
		}
		s.LastAt = time.Unix(0, at).UTC()
		out[wid] = s
	}
	if err := rows.Err(); err != nil {
		return nil, db.readError(fmt.Errorf("workflow summaries: %w", err))
	}
	return out, nil
}

// MarkInterrupted is for start-up, after a crash or a hard stop: every
// execution still queued or running is set to "interrupted" with error =
// reason and end_time = now; its pending and running nodes are set to
// "cancelled" (running ones also get finished_at = now); and it gets an
// ErrorEntry with code "interrupted" and a log line, both with the reason,
// after everything already recorded for it. It returns how many executions
// it marked. All of it is one transaction, written after every event
// submitted before the call.
//
// It fails when the DB is closed, when SQLite fails (nothing is changed
// then), or with ctx's error if ctx ends first (the marking may still
// happen). It is safe for concurrent use, but meant to run once, before
// any execution starts: it would also mark executions running now.
func (db *DB) MarkInterrupted(ctx context.Context, reason string) (int, error) {
	var ids []string
	err := db.exec(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		now := time.Now().UnixNano()
		rows, err := tx.Query(`UPDATE executions SET status = ?, error = ?, end_time = ?
			WHERE status IN (?, ?) RETURNING id`,
			workflow.ExecInterrupted, reason, now, workflow.ExecQueued, workflow.ExecRunning)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.Exec(`UPDATE node_states SET status = ?,
					finished_at = CASE WHEN status = ? THEN ? ELSE finished_at END
				WHERE execution_id = ? AND status IN (?, ?)`,
				workflow.NodeCancelled, workflow.NodeRunning, now, id, workflow.NodePending, workflow.NodeRunning); err != nil {
				return fmt.Errorf("cancel nodes of execution %s: %w", id, err)
			}
			// One seq after everything recorded for the execution, so the
			// entries sort last in their lists.
			var seq int64
			if err := tx.QueryRow(`SELECT 1 + max(
					coalesce((SELECT max(seq) FROM exec_logs WHERE execution_id = ?1), 0),
					coalesce((SELECT max(seq) FROM exec_errors WHERE execution_id = ?1), 0),
					coalesce((SELECT max(seq) FROM exec_messages WHERE execution_id = ?1), 0),
					coalesce((SELECT max(seq) FROM node_states WHERE execution_id = ?1), 0))`, id).Scan(&seq); err != nil {
				return fmt.Errorf("next seq of execution %s: %w", id, err)
			}
			if _, err := tx.Exec(`INSERT INTO exec_errors (execution_id, seq, time, node_id, code, message)
				VALUES (?, ?, ?, '', ?, ?)`, id, seq, now, workflow.ExecInterrupted, reason); err != nil {
				return fmt.Errorf("record interruption of execution %s: %w", id, err)
			}
			if _, err := tx.Exec(`INSERT INTO exec_logs (execution_id, seq, time, level, message, node_id)
				VALUES (?, ?, ?, 'error', ?, '')`, id, seq, now, "execution interrupted: "+reason); err != nil {
				return fmt.Errorf("log interruption of execution %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("mark interrupted executions: %w", err)
	}
	return len(ids), nil
}
