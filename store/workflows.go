package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// docOf encodes a workflow for the doc column. It goes through a plain
// copy of the type so the "_id" alias added by Workflow.MarshalJSON for
// API clients is not stored twice. The id and times are stored in columns,
// which win over the document when it is read back.
func docOf(w *workflow.Workflow) (string, error) {
	type plain workflow.Workflow
	b, err := json.Marshal((*plain)(w))
	if err != nil {
		return "", &workflow.Error{Code: workflow.CodeInvalid, Message: fmt.Sprintf("workflow %s cannot be encoded as JSON", w.ID), Err: err}
	}
	return string(b), nil
}

// CreateWorkflow stores w as a new workflow. It gives w a new id
// (workflow.NewID) when w.ID is empty and sets w.CreatedAt and w.UpdatedAt
// to now (UTC); w is changed only when CreateWorkflow succeeds. It does not
// validate the document (the workflow package does).
//
// It fails with a "conflict" workflow.Error when a workflow with that id
// exists, an "invalid" one when the document cannot be encoded as JSON, an
// "unavailable" one when the DB is closed, and with ctx's error if ctx ends
// first (the workflow may then still be stored). It is safe for concurrent
// use.
func (db *DB) CreateWorkflow(ctx context.Context, w *workflow.Workflow) error {
	c := *w
	if c.ID == "" {
		c.ID = workflow.NewID()
	}
	now := time.Now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	doc, err := docOf(&c)
	if err != nil {
		return err
	}
	var inserted bool
	err = db.execThen(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO workflows (id, name, status, mode, created_at, updated_at, doc)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			c.ID, c.Name, c.Status, c.Mode(), now.UnixNano(), now.UnixNano(), doc)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		inserted = n == 1
		return err
	}, func() { db.workflows.drop(c.ID) })
	if err != nil {
		return fmt.Errorf("create workflow %s: %w", c.ID, err)
	}
	if !inserted {
		return workflow.Errorf(workflow.CodeConflict, "workflow %s already exists", c.ID)
	}
	*w = c
	return nil
}

// UpdateWorkflow replaces the stored document of workflow w.ID with w and
// sets w.UpdatedAt to now (UTC); w.CreatedAt is set to the stored creation
// time. w is changed only when UpdateWorkflow succeeds.
//
// It fails with a "not_found" workflow.Error when no workflow has that id,
// an "invalid" one when the document cannot be encoded, an "unavailable"
// one when the DB is closed, and with ctx's error if ctx ends first (the
// update may then still be applied). Concurrent updates of one workflow are
// applied one after the other; the last one wins. It is safe for concurrent
// use.
func (db *DB) UpdateWorkflow(ctx context.Context, w *workflow.Workflow) error {
	if w.ID == "" {
		return workflow.Errorf(workflow.CodeInvalid, "workflow has no id")
	}
	c := *w
	c.UpdatedAt = time.Now().UTC()
	doc, err := docOf(&c)
	if err != nil {
		return err
	}
	var (
		found   bool
		created int64
	)
	err = db.execThen(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRow(`UPDATE workflows SET name = ?, status = ?, mode = ?, updated_at = ?, doc = ?
			WHERE id = ? RETURNING created_at`,
			c.Name, c.Status, c.Mode(), c.UpdatedAt.UnixNano(), doc, c.ID).Scan(&created)
		found = err == nil
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	}, func() { db.workflows.drop(c.ID) })
	if err != nil {
		return fmt.Errorf("update workflow %s: %w", c.ID, err)
	}
	if !found {
		return notFound("workflow", c.ID, nil)
	}
	c.CreatedAt = time.Unix(0, created).UTC()
	*w = c
	return nil
}

// DeleteWorkflow deletes workflow id. Its executions are kept, so history
// is not lost; they keep its id and name.
//
// It fails with a "not_found" workflow.Error when no workflow has that id,
// an "unavailable" one when the DB is closed, and with ctx's error if ctx
// ends first (the delete may then still happen). It is safe for concurrent
// use.
func (db *DB) DeleteWorkflow(ctx context.Context, id string) error {
	var deleted bool
	err := db.execThen(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM workflows WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		deleted = n > 0
		return err
	}, func() { db.workflows.drop(id) })
	if err != nil {
		return fmt.Errorf("delete workflow %s: %w", id, err)
	}
	if !deleted {
		return notFound("workflow", id, nil)
	}
	return nil
}

const workflowCols = `id, created_at, updated_at, doc`

func scanWorkflow(s interface{ Scan(...any) error }) (*workflow.Workflow, error) {
	var (
		id               string
		created, updated int64
		doc              string
	)
	if err := s.Scan(&id, &created, &updated, &doc); err != nil {
		return nil, err
	}
	w := new(workflow.Workflow)
	if err := json.Unmarshal([]byte(doc), w); err != nil {
		return nil, fmt.Errorf("decode workflow %s: %w", id, err)
	}
	w.ID = id
	w.CreatedAt = time.Unix(0, created).UTC()
	w.UpdatedAt = time.Unix(0, updated).UTC()
	return w, nil
}

// GetWorkflow returns workflow id. It fails with a "not_found"
// workflow.Error when there is none, an "unavailable" one when the DB is
// closed, with ctx's error if ctx ends first, and with a wrapped error if
// the row cannot be read or decoded. It never returns nil, nil. It is safe
// for concurrent use; each call returns a new value the caller owns.
func (db *DB) GetWorkflow(ctx context.Context, id string) (*workflow.Workflow, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w, gen := db.workflows.get(id)
	if w != nil {
		return w, nil
	}
	w, err := scanWorkflow(db.queryRow(ctx, nil, `SELECT `+workflowCols+` FROM workflows WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("workflow", id, err)
	}
	if err != nil {
		return nil, db.readError(fmt.Errorf("get workflow %s: %w", id, err))
	}
	db.workflows.put(w, gen)
	return w, nil
}

// ListWorkflows returns up to limit workflows, most recently updated first,
// after skipping offset of them. limit <= 0 means no limit; a negative
// offset counts as 0. An empty result is an empty slice, not an error. It
// fails when the DB is closed, ctx ends first, or a row cannot be read or
// decoded. It is safe for concurrent use.
func (db *DB) ListWorkflows(ctx context.Context, limit, offset int) ([]*workflow.Workflow, error) {
	limit, offset = page(limit, offset)
	rows, err := db.rdb.QueryContext(ctx, `SELECT `+workflowCols+` FROM workflows
		ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, db.readError(fmt.Errorf("list workflows: %w", err))
	}
	defer rows.Close()
	out := []*workflow.Workflow{}
	for rows.Next() {
		w, err := scanWorkflow(rows)
		if err != nil {
			return nil, fmt.Errorf("list workflows: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, db.readError(fmt.Errorf("list workflows: %w", err))
	}
	return out, nil
}

// CountWorkflows returns how many workflows are stored. It fails when the
// DB is closed or ctx ends first. It is safe for concurrent use.
func (db *DB) CountWorkflows(ctx context.Context) (int, error) {
	var n int
	if err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM workflows`).Scan(&n); err != nil {
		return 0, db.readError(fmt.Errorf("count workflows: %w", err))
	}
	return n, nil
}

// page turns the API's limit/offset into SQLite's, where LIMIT -1 means
// no limit.
func page(limit, offset int) (int, int) {
	if limit <= 0 {
		limit = -1
	}
	if offset < 0 {
		offset = 0
	}
	return limit, offset
}

// readError gives a read on a closed DB the same "unavailable" error as a
// write, instead of database/sql's "sql: database is closed".
func (db *DB) readError(err error) error {
	if errors.Is(err, sql.ErrConnDone) || db.isClosed() {
		return &workflow.Error{Code: workflow.CodeUnavailable, Message: "the database is closed", Err: err}
	}
	return err
}
