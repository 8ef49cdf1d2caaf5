package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Indexes into writer.stmts.
const (
	stmtExecution = iota
	stmtChunk
	numStmts
)

// Indexes into the arguments of stmtExecution.
const (
	argCreatedAt   = 4
	argResumedFrom = 15
)

var stmtSQL = [numStmts]string{
	// created_at is set once, by the first header: listings are ordered by
	// it, and a later header that left it zero (then defaulted to the
	// event's time) must not move the execution in the list.
	stmtExecution: `INSERT INTO executions (id, workflow_id, workflow_name, status, created_at, start_time, end_time,
		requested_mode, mode, fallback_reason, error, inputs, prompt_tokens, completion_tokens, total_tokens, resumed_from,
		usage_estimated, placement, placement_fallback_reason, started_by, cost_usd, cost_estimated, cost_note)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		workflow_id = excluded.workflow_id, workflow_name = excluded.workflow_name, status = excluded.status,
		start_time = excluded.start_time, end_time = excluded.end_time,
		requested_mode = excluded.requested_mode, mode = excluded.mode, fallback_reason = excluded.fallback_reason,
		error = excluded.error, inputs = excluded.inputs, prompt_tokens = excluded.prompt_tokens,
		completion_tokens = excluded.completion_tokens, total_tokens = excluded.total_tokens,
		resumed_from = excluded.resumed_from, usage_estimated = excluded.usage_estimated,
		placement = excluded.placement, placement_fallback_reason = excluded.placement_fallback_reason,
		started_by = excluded.started_by,
		cost_usd = excluded.cost_usd, cost_estimated = excluded.cost_estimated, cost_note = excluded.cost_note`,
	stmtChunk: `INSERT INTO exec_events (execution_id, events) VALUES (?, ?)`,
}

func prepareStatements(ctx context.Context, db *sql.DB) ([numStmts]*sql.Stmt, error) {
	var stmts [numStmts]*sql.Stmt
	for i, q := range stmtSQL {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			for _, p := range stmts[:i] {
				p.Close()
			}
			return stmts, fmt.Errorf("prepare statement %d: %w", i, err)
		}
		stmts[i] = s
	}
	return stmts, nil
}

// writer is the state of the writer goroutine; nothing else touches it.
type writer struct {
	db     *sql.DB
	stmts  [numStmts]*sql.Stmt
	logger *slog.Logger

	checkpoint chan<- struct{} // asks the checkpointer for a checkpoint (checkpoint.go)
	commits    int             // since the last request

	// observe is told each batch's write time; it may hold nil.
	observe *atomic.Pointer[func(time.Duration)]

	pending error // first write error since the last Flush marker

	// The open batch: its jobs in submission order, the transaction they
	// have been applied in so far (nil until one needs it), the statements
	// bound to it, and how many of the jobs have a waiter.
	batch   []*job
	tx      *sql.Tx
	txStmts [numStmts]*sql.Stmt
	txErr   error // the transaction failed: every job of the batch shares the error
	waiters int
	opened  time.Time // when the batch's first job arrived

	// Headers held back to be coalesced (see deferUpsert): one entry per
	// execution, in the order they were first seen, and the key of each.
	upserts  []*upsert
	upsertAt map[string]int
	// The other events of the batch, one chunk per execution in the order
	// the executions were first seen (see addToChunk), and their size.
	chunks     []*chunk
	chunkAt    map[string]int
	chunkBytes int
	spare      [][]byte // chunk buffers written, for the next chunks to reuse

	// Events are encoded by enc into encBuf, then copied into their chunk.
	enc    *json.Encoder
	encBuf bytes.Buffer
}

// upsert is an execution's row that one or more header events of the open
// batch set: all of them but the last are superseded, so only the last
// values are written, once.
type upsert struct {
	jobs []*job // in submission order
}

// chunk is the events of one execution in the open batch, written as one
// exec_events row when the batch ends.
type chunk struct {
	execID string
	jobs   []*job // in submission order
	data   []byte // their encodings, as a JSON array without its closing bracket
}

// maxSpare bounds the chunk buffers kept for reuse, and maxSpareBytes the
// size of each one kept.
const (
	maxSpare      = 64
	maxSpareBytes = 64 << 10
)

// maxUpserts bounds the headers held back before they are written.
const maxUpserts = 256

// maxChunkBytes bounds the events held in chunks before they are written,
// so a batch of large outputs does not hold much memory.
const maxChunkBytes = 1 << 20

// run applies jobs from q until q is closed and drained, then returns the
// first write error that no Flush reported.
//
// Jobs are applied as they arrive, inside one open transaction, and the
// transaction is committed when the queue runs dry while someone waits for
// one of its jobs (Record, a write function, Flush), when it holds maxBatch
// jobs, or linger after its first job when nobody waits. So an execution's
// score of events, emitted in a fraction of a millisecond and followed by a
// Flush, costs one commit rather than one each, and the statements still run
// while the execution goes on, on the other core. What a caller waits for is
// committed before its wait ends; events nobody waits for are committed
// within linger.
func (w *writer) run(q <-chan *job) error {
	defer func() {
		for _, s := range w.stmts {
			s.Close()
		}
	}()
	w.batch = make([]*job, 0, maxBatch)
	w.upsertAt = map[string]int{}
	w.chunkAt = map[string]int{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var (
			j  *job
			ok bool
		)
		if len(w.batch) == 0 {
			if j, ok = <-q; !ok {
				return w.pending
			}
			w.opened = time.Now()
		} else {
			select {
			case j, ok = <-q:
			default: // the queue is dry
				if w.waiters > 0 {
					w.finish()
					continue
				}
				timer.Reset(time.Until(w.opened.Add(linger)))
				select {
				case j, ok = <-q:
					timer.Stop()
				case <-timer.C:
					w.finish()
					continue
				}
			}
			if !ok {
				w.finish()
				return w.pending
			}
		}
		w.add(j)
		if len(w.batch) >= maxBatch || w.txErr != nil {
			w.finish()
		}
	}
}

// add appends j to the open batch and applies it in the batch's
// transaction, beginning one if needed. A job that fails on its own (see
// jobFailure: a broken constraint, such as a node event of an execution that
// was never recorded) gets the error in j.err and the others go on: SQLite
// has already undone that one statement and the transaction stays open; a
// write function runs inside a savepoint so all of it is undone. Any other
// error (the disk is full, the database is locked by another process past
// busy_timeout, the pool is closed) ends the transaction, and every job of
// the batch shares it (see finish). Retrying jobs one by one would multiply
// such a failure, each waiting out busy_timeout again.
func (w *writer) add(j *job) {
	w.batch = append(w.batch, j)
	if j.done != nil && !j.lazy {
		w.waiters++
	}
	if j.flush || j.err != nil || w.txErr != nil {
		return
	}
	if j.fn != nil {
		if err := j.ctx.Err(); err != nil { // its caller is gone: don't do the work
			j.err, j.skipped = err, true
			return
		}
	}
	if j.fn == nil && j.stmt != stmtExecution {
		w.addToChunk(j)
		return
	}
	if j.fn == nil {
		w.deferUpsert(j)
		return
	}
	// A write function sees every event submitted before it, and may
	// delete rows.
	if !w.begin() || !w.writeUpserts() || !w.writeChunks() {
		return
	}
	w.setErr(j, runFn(context.Background(), w.tx, j.fn))
}

// begin opens the batch's transaction if it is not open yet, and reports
// whether it is usable.
func (w *writer) begin() bool {
	if w.txErr != nil {
		return false
	}
	if w.tx == nil {
		tx, err := w.db.BeginTx(context.Background(), nil)
		if err != nil {
			w.txErr = fmt.Errorf("begin write: %w", err)
			return false
		}
		w.tx = tx
	}
	return true
}

// exec runs event job j's statement with args in the open transaction.
func (w *writer) exec(j *job, args []any) error {
	if err := w.execStmt(j.stmt, args...); err != nil {
		if c := w.alreadyResumed(j, args, err); c != nil {
			j.skipped = true // the resume's caller is told; nothing is wrong with the store
			return c
		}
		return eventWriteError(j, err)
	}
	return nil
}

// alreadyResumed explains a header refused by the trigger
// executions_resumed_once (migration 0006): a conflict naming the
// execution that resumed the same one first. It returns nil for any other
// error.
func (w *writer) alreadyResumed(j *job, args []any, err error) error {
	var se *sqlite.Error
	if j.stmt != stmtExecution || !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_CONSTRAINT_TRIGGER {
		return nil
	}
	from, _ := args[argResumedFrom].(string)
	by := "another execution"
	var id string
	if w.tx.QueryRow(`SELECT id FROM executions WHERE resumed_from = ? AND resumed_from <> '' AND id <> ?
		ORDER BY created_at, id LIMIT 1`, from, j.ev.ExecutionID).Scan(&id) == nil {
		by = "execution " + id
	}
	return &workflow.Error{Code: workflow.CodeConflict,
		Message: fmt.Sprintf("execution %s was already resumed by %s; it is resumed once", from, by), Err: err}
}

// execStmt runs statement stmt with args in the open transaction.
func (w *writer) execStmt(stmt int, args ...any) error {
	s := w.txStmts[stmt]
	if s == nil {
		s = w.tx.StmtContext(context.Background(), w.stmts[stmt])
		w.txStmts[stmt] = s
	}
	_, err := s.ExecContext(context.Background(), args...)
	return err
}

// addToChunk encodes event job j's stored form (see newEventJob) into its
// execution's chunk. A value that has no JSON form makes j malformed, and
// j is not added.
func (w *writer) addToChunk(j *job) {
	if w.enc == nil {
		w.enc = json.NewEncoder(&w.encBuf)
	}
	w.encBuf.Reset()
	err := w.enc.Encode(j.stored)
	if err != nil {
		j.err = encodeFailure(j, err)
	}
	j.stored = nil
	if err != nil {
		return
	}
	data := w.encBuf.Bytes()
	data = data[:len(data)-1] // Encode ends each value with a newline
	i, ok := w.chunkAt[j.ev.ExecutionID]
	if !ok {
		i = len(w.chunks)
		w.chunkAt[j.ev.ExecutionID] = i
		c := &chunk{execID: j.ev.ExecutionID}
		if n := len(w.spare); n > 0 {
			c.data, w.spare = w.spare[n-1][:0], w.spare[:n-1]
		}
		w.chunks = append(w.chunks, c)
	}
	c := w.chunks[i]
	c.jobs = append(c.jobs, j)
	if len(c.data) == 0 {
		c.data = append(c.data, '[')
	} else {
		c.data = append(c.data, ',')
	}
	c.data = append(c.data, data...)
	if w.encBuf.Cap() > maxSpareBytes { // one large output does not pin its memory
		w.encBuf = bytes.Buffer{}
	}
	w.chunkBytes += len(data) + 1
	if w.chunkBytes >= maxChunkBytes {
		w.writeChunks()
	}
}

// writeChunks writes the held chunks, one exec_events row each, and reports
// whether the transaction is still usable. A chunk that fails on its own
// (its execution was never recorded: a foreign key) fails each of its
// events, and the others are written. The headers are written before, so
// a chunk never waits for a header of its own batch.
func (w *writer) writeChunks() bool {
	defer func() {
		clear(w.chunks)
		w.chunks = w.chunks[:0]
		clear(w.chunkAt)
		w.chunkBytes = 0
	}()
	if len(w.chunks) == 0 {
		return w.txErr == nil
	}
	if !w.writeUpserts() || !w.begin() {
		return false
	}
	for _, c := range w.chunks {
		buf := append(c.data, ']')
		if len(w.spare) < maxSpare && cap(buf) <= maxSpareBytes {
			w.spare = append(w.spare, buf)
		}
		err := w.execStmt(stmtChunk, c.execID, string(buf))
		if err == nil {
			continue
		}
		if !jobFailure(err) {
			w.txErr = fmt.Errorf("write events of execution %s: %w", c.execID, err)
			return false
		}
		for _, j := range c.jobs {
			j.err = eventWriteError(j, err)
		}
	}
	return true
}

// setErr records the outcome of j and reports whether it succeeded: a job
// failure is j's alone; any other error ends the transaction (see add).
func (w *writer) setErr(j *job, err error) bool {
	switch {
	case err == nil:
		return true
	case jobFailure(err):
		j.err = err
	default:
		w.txErr = err
	}
	return false
}

// deferUpsert holds back a header event until the end of the batch (or
// the next write function, or maxUpserts), so that the headers of one
// batch setting the same execution's row cost one statement: an execution
// sets its header three times (queued, running, its end), and a short one
// does all of it within one batch, which then inserts its row once, with
// its final values, instead of inserting it and updating it. Headers are
// written before the chunks that refer to them (writeChunks). The database
// ends up as if each header had been written in turn: the last values win,
// and an execution keeps the created_at of its first header.
func (w *writer) deferUpsert(j *job) {
	key := j.ev.ExecutionID
	if i, ok := w.upsertAt[key]; ok {
		w.upserts[i].jobs = append(w.upserts[i].jobs, j)
		return
	}
	w.upsertAt[key] = len(w.upserts)
	w.upserts = append(w.upserts, &upsert{jobs: []*job{j}})
	if len(w.upserts) >= maxUpserts {
		w.writeUpserts()
	}
}

// writeUpserts writes the held-back rows, each with the values of its last
// event, and reports whether the transaction is still usable. When a row
// fails on its own, its events are written one by one instead, so that
// each gets the outcome it would have had alone.
func (w *writer) writeUpserts() bool {
	defer func() {
		clear(w.upserts)
		w.upserts = w.upserts[:0]
		clear(w.upsertAt)
	}()
	if len(w.upserts) == 0 {
		return w.txErr == nil
	}
	if !w.begin() {
		return false
	}
	for _, u := range w.upserts {
		last := u.jobs[len(u.jobs)-1]
		args := last.args
		if len(u.jobs) > 1 {
			// created_at of the first header
			args = append([]any(nil), last.args...)
			args[argCreatedAt] = u.jobs[0].args[argCreatedAt]
		}
		err := w.exec(last, args)
		if err != nil && jobFailure(err) && len(u.jobs) > 1 {
			for _, j := range u.jobs {
				if !w.setErr(j, w.exec(j, j.args)) && w.txErr != nil {
					return false
				}
			}
			continue
		}
		if err != nil {
			if !jobFailure(err) {
				w.txErr = err
				return false
			}
			last.err = err
		}
	}
	return true
}

// finish commits the open batch (or rolls it back when it failed) and
// answers its waiters in submission order.
func (w *writer) finish() {
	start := time.Now()
	w.writeUpserts()
	w.writeChunks()
	if w.tx != nil {
		if w.txErr == nil {
			if err := w.tx.Commit(); err != nil {
				w.txErr = fmt.Errorf("commit write: %w", err)
			}
			if w.commits++; w.commits >= checkpointEvery && w.checkpoint != nil {
				select {
				case w.checkpoint <- struct{}{}:
					w.commits = 0
				default: // one is running or asked for already
				}
			}
		} else {
			_ = w.tx.Rollback()
		}
		if fn := w.observe.Load(); fn != nil {
			(*fn)(time.Since(start))
		}
		w.tx = nil
		w.txStmts = [numStmts]*sql.Stmt{}
	}
	if w.txErr != nil {
		// The transaction is gone: every job that had not failed on its
		// own shares the failure.
		for _, j := range w.batch {
			if j.err == nil && !j.flush {
				j.err = w.txErr
			}
		}
	}

	failed, firstErr := 0, error(nil)
	for _, j := range w.batch {
		if j.after != nil {
			j.after()
		}
		if j.flush {
			j.done <- w.pending
			w.pending = nil
			continue
		}
		if j.err != nil && !j.skipped {
			failed++
			if firstErr == nil {
				firstErr = j.err
			}
			if w.pending == nil {
				w.pending = j.err
			}
		}
		if j.done != nil {
			j.done <- j.err
		}
	}
	if failed > 0 { // once per batch, however many failed
		w.logger.Error("store: write failed", "failed", failed, "batch", len(w.batch), "err", firstErr)
	}
	clear(w.batch) // drop references so finished jobs can be collected
	w.batch = w.batch[:0]
	w.txErr = nil
	w.waiters = 0
}

// runFn runs fn inside a savepoint, so a failure of fn undoes all of fn
// and nothing else.
func runFn(ctx context.Context, tx *sql.Tx, fn func(tx *sql.Tx) error) error {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT job`); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		if jobFailure(err) {
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO job`); rerr != nil {
				return errors.Join(err, rerr) // not a job failure any more: ends the transaction
			}
		}
		if _, rerr := tx.ExecContext(ctx, `RELEASE job`); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	_, err := tx.ExecContext(ctx, `RELEASE job`)
	return err
}

// jobFailure reports whether err is the fault of one job's data rather
// than of the database: a broken constraint, a value too big or of the
// wrong type, or a domain error from a write function.
func jobFailure(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
			return true
		}
		return false
	}
	var we *workflow.Error
	return errors.As(err, &we)
}

// eventWriteError explains why SQLite refused an event. A foreign-key
// failure means the execution row does not exist (its EventExecution was
// never recorded, or was recorded after this event), which is reported as
// not_found rather than as an internal error.
func eventWriteError(j *job, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return &workflow.Error{
			Code:    workflow.CodeNotFound,
			Message: fmt.Sprintf("%s event (seq %d): execution %s not found", j.ev.Kind, j.ev.Seq, j.ev.ExecutionID),
			Err:     err,
		}
	}
	return fmt.Errorf("write %s event of execution %s (seq %d): %w", j.ev.Kind, j.ev.ExecutionID, j.ev.Seq, err)
}
