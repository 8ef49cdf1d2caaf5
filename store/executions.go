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
	// CostUSD sums the cost_usd of its executions; CostUnknown counts
	// the ended ones whose cost is not known (a model without a price,
	// or recorded before costs were), which the sum leaves out.
	CostUSD     float64 `json:"cost_usd"`
	CostUnknown int     `json:"cost_unknown"`
}

const executionCols = `id, workflow_id, workflow_name, status, created_at, start_time, end_time, requested_mode, mode,
	fallback_reason, error, inputs, prompt_tokens, completion_tokens, total_tokens, resumed_from, usage_estimated,
	placement, placement_fallback_reason, started_by, cost_usd, cost_estimated, cost_note`

func scanExecution(s interface{ Scan(...any) error }) (*workflow.Execution, error) {
	var (
		e                   workflow.Execution
		created, start, end sql.NullInt64
		inputs              sql.NullString
		trigger             string
	)
	if err := s.Scan(&e.ID, &e.WorkflowID, &e.WorkflowName, &e.Status, &created, &start, &end, &e.RequestedMode,
		&e.Mode, &e.FallbackReason, &e.Error, &inputs, &e.Usage.PromptTokens, &e.Usage.CompletionTokens,
		&e.Usage.TotalTokens, &e.ResumedFrom, &e.Usage.Estimated, &e.Placement, &e.PlacementFallbackReason, &trigger,
		&e.CostUSD, &e.CostEstimated, &e.CostNote); err != nil {
		return nil, err
	}
	if err := decodeTrigger(trigger, &e); err != nil {
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
		if errors.As(err, &we) && we.Code == workflow.CodeNotFound {
			return nil, err
		}
		return nil, db.readError(fmt.Errorf("get execution %s: %w", id, err))
	}
	if err := db.withWaits(ctx, e); err != nil {
		return nil, db.readError(fmt.Errorf("get execution %s: %w", id, err))
	}
	return e, nil
}

// getExecutionQuery reads an execution's header and its chunks in one
// statement, so they are consistent (one statement is one read
// transaction) without the cost of an explicit transaction: the header's
// columns come with each chunk (an execution has one or a few), or once
// with NULL events when it has none.
var getExecutionQuery = `SELECT ` + qualified("e", executionCols) + `, ev.events
	FROM executions e LEFT JOIN exec_events ev ON ev.execution_id = e.id
	WHERE e.id = ? ORDER BY ev.id`

func (db *DB) getExecution(ctx context.Context, id string) (*workflow.Execution, error) {
	rows, err := db.query(ctx, nil, getExecutionQuery, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		e      *workflow.Execution
		chunks [][]byte
	)
	for rows.Next() {
		var c []byte
		x, err := scanExecution(rowWithExtra{rows, &c})
		if err != nil {
			return nil, err
		}
		if e == nil {
			e = x
		}
		if c != nil {
			chunks = append(chunks, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if e == nil {
		return nil, notFound("execution", id, sql.ErrNoRows)
	}
	f, err := fold(chunks)
	if err != nil {
		return nil, err
	}
	e.NodeStates = make(map[string]*workflow.NodeState, len(f.Nodes))
	for _, n := range f.Nodes {
		e.NodeStates[n.NodeID] = n
	}
	e.Logs, e.Errors, e.CommunicationLog, e.SharedContext = f.Logs, f.Errors, f.Messages, f.Context
	return e, nil
}

// rowWithExtra scans a row's leading columns with the given destinations
// and its last column into extra.
type rowWithExtra struct {
	rows  *sql.Rows
	extra any
}

func (r rowWithExtra) Scan(dest ...any) error { return r.rows.Scan(append(dest, r.extra)...) }

// qualified prefixes each of a comma-separated list of columns with t.
func qualified(t, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = t + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
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
	f, err := db.queryEvents(ctx, tx, id)
	if err != nil {
		return nil, db.readError(fmt.Errorf("node states of execution %s: %w", id, err))
	}
	return f.Nodes, nil
}

// queryEvents reads and folds the chunks of execution id (see events.go).
func (db *DB) queryEvents(ctx context.Context, tx *sql.Tx, id string) (workflow.Folded, error) {
	rows, err := db.query(ctx, tx, `SELECT events FROM exec_events WHERE execution_id = ? ORDER BY id`, id)
	if err != nil {
		return workflow.Folded{}, fmt.Errorf("query events: %w", err)
	}
	chunks, err := scanChunks(rows)
	if err != nil {
		return workflow.Folded{}, err
	}
	return fold(chunks)
}

func scanChunks(rows *sql.Rows) ([][]byte, error) {
	defer rows.Close()
	var chunks [][]byte
	for rows.Next() {
		var c []byte
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("scan events: %w", err)
		}
		chunks = append(chunks, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return chunks, nil
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

// interrupt records in tx what MarkInterrupted adds to execution id: its
// pending and running nodes cancelled (running ones finished now), an
// error entry and a log line with the reason, all one seq after
// everything recorded for it so the entries sort last; and its total usage,
// the sum of its nodes' as stored, since the header carries a total only
// from the end of a run, which a crash never reached.
func interrupt(tx *sql.Tx, id, reason string, now int64) error {
	rows, err := tx.Query(`SELECT events FROM exec_events WHERE execution_id = ? ORDER BY id`, id)
	if err != nil {
		return fmt.Errorf("read events of execution %s: %w", id, err)
	}
	chunks, err := scanChunks(rows)
	if err != nil {
		return fmt.Errorf("read events of execution %s: %w", id, err)
	}
	f, err := fold(chunks)
	if err != nil {
		return fmt.Errorf("read events of execution %s: %w", id, err)
	}
	seq, at := f.MaxSeq+1, time.Unix(0, now).UTC()
	var (
		evs   []workflow.Event
		usage workflow.Usage
	)
	var cost workflow.Cost
	for _, n := range f.Nodes {
		usage = usage.Add(n.Usage)
		cost = cost.Add(workflow.CostOf(n.CostUSD, n.CostNote, n.CostEstimated))
		if n.Status != workflow.NodePending && n.Status != workflow.NodeRunning {
			continue
		}
		c := *n
		if c.Status == workflow.NodeRunning {
			c.FinishedAt = &at
		}
		c.Status = workflow.NodeCancelled
		evs = append(evs, workflow.Event{Kind: workflow.EventNode, Seq: seq, Time: at, Node: &c})
	}
	evs = append(evs,
		workflow.Event{Kind: workflow.EventError, Seq: seq, Time: at, Error: &workflow.ErrorEntry{Code: workflow.ExecInterrupted, Message: reason}},
		workflow.Event{Kind: workflow.EventLog, Seq: seq, Time: at, Log: &workflow.LogEntry{Level: "error", Message: "execution interrupted: " + reason}})
	buf := []byte{'['}
	for i := range evs {
		data, err := encodeEvent(&evs[i])
		if err != nil {
			return fmt.Errorf("record interruption of execution %s: %w", id, err)
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, data...)
	}
	buf = append(buf, ']')
	if _, err := tx.Exec(`INSERT INTO exec_events (execution_id, events) VALUES (?, ?)`, id, string(buf)); err != nil {
		return fmt.Errorf("record interruption of execution %s: %w", id, err)
	}
	if _, err := tx.Exec(`UPDATE executions SET prompt_tokens = ?, completion_tokens = ?, total_tokens = ?, usage_estimated = ? WHERE id = ?`,
		usage.PromptTokens, usage.CompletionTokens, usage.TotalTokens, usage.Estimated, id); err != nil {
		return fmt.Errorf("record usage of interrupted execution %s: %w", id, err)
	}
	if _, err := tx.Exec(`UPDATE executions SET cost_usd = ?, cost_estimated = ?, cost_note = ? WHERE id = ?`,
		cost.USD(), cost.Estimated, cost.Unknown, id); err != nil {
		return fmt.Errorf("record cost of interrupted execution %s: %w", id, err)
	}
	return nil
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
	rows, err := db.rdb.QueryContext(ctx, `SELECT workflow_id, n, id, status, created_at, cost, unknown FROM (
			SELECT workflow_id, id, status, created_at,
				total(cost_usd) OVER w AS cost,
				count(*) FILTER (WHERE cost_usd IS NULL AND status NOT IN ('queued', 'running')) OVER w AS unknown,
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
		if err := rows.Scan(&wid, &s.Count, &s.LastID, &s.LastStatus, &at, &s.CostUSD, &s.CostUnknown); err != nil {
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
// reason, end_time = now and its total usage the sum of its nodes' as
// recorded; its pending and running nodes are set to
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
			if err := interrupt(tx, id, reason, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("mark interrupted executions: %w", err)
	}
	return len(ids), nil
}
