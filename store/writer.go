package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// job is one unit of work for the writer goroutine: an execution event, a
// write function, or a Flush marker.
type job struct {
	// ev identifies an event job (execution, seq, kind) in error messages
	// and in the batch. Only those are kept, so the store holds no memory
	// of the caller's after Enqueue returns, and a job stays small.
	ev eventRef

	// fn runs inside the batch transaction, in a savepoint of its own. ctx
	// is its caller's: fn is skipped once ctx is done, but a started fn
	// runs with a background context, so one caller giving up cannot abort
	// the transaction other jobs share.
	fn  func(tx *sql.Tx) error
	ctx context.Context
	// after runs in the writer once fn's transaction has ended, committed
	// or not, before the waiter hears of it (execThen).
	after func()

	flush bool
	// skipped: the job's outcome is its waiter's alone, neither logged nor
	// reported by Flush (fn was not run because its caller's ctx was done;
	// a header was refused as a second resume of an execution).
	skipped bool

	done chan error // buffered (1); nil when nobody waits (Enqueue)
	lazy bool       // done is read later, if at all: no reason to commit early (RecordAsync)

	// set by newEventJob: a header is an upsert of its execution's row
	// (stmt, args); any other event is its encoded storedEvent (data), to
	// be written in its execution's chunk.
	stmt int
	args []any
	data []byte
	err  error // set before the writer sees the job: the event is malformed
}

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
		requested_mode, mode, fallback_reason, error, inputs, prompt_tokens, completion_tokens, total_tokens, resumed_from)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		workflow_id = excluded.workflow_id, workflow_name = excluded.workflow_name, status = excluded.status,
		start_time = excluded.start_time, end_time = excluded.end_time,
		requested_mode = excluded.requested_mode, mode = excluded.mode, fallback_reason = excluded.fallback_reason,
		error = excluded.error, inputs = excluded.inputs, prompt_tokens = excluded.prompt_tokens,
		completion_tokens = excluded.completion_tokens, total_tokens = excluded.total_tokens,
		resumed_from = excluded.resumed_from`,
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
	chunkBuf   []byte // reused to assemble each chunk's JSON array
}

// eventRef names an event: enough to say which one failed.
type eventRef struct {
	ExecutionID string
	Seq         int64
	Kind        workflow.EventKind
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
	size   int    // bytes of their data
}

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
// executions_resumed_once (migration 0005): a conflict naming the
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

// addToChunk adds event job j to its execution's chunk.
func (w *writer) addToChunk(j *job) {
	i, ok := w.chunkAt[j.ev.ExecutionID]
	if !ok {
		i = len(w.chunks)
		w.chunkAt[j.ev.ExecutionID] = i
		w.chunks = append(w.chunks, &chunk{execID: j.ev.ExecutionID})
	}
	c := w.chunks[i]
	c.jobs = append(c.jobs, j)
	c.size += len(j.data) + 1
	w.chunkBytes += len(j.data) + 1
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
	buf := w.chunkBuf
	defer func() {
		if cap(buf) <= 2*maxChunkBytes { // bounded: chunks are written by maxChunkBytes
			w.chunkBuf = buf[:0]
		}
	}()
	for _, c := range w.chunks {
		buf = slices.Grow(buf[:0], c.size+2)
		buf = append(buf, '[')
		for k, j := range c.jobs {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, j.data...)
		}
		buf = append(buf, ']')
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

// newEventJob checks ev and encodes it into a statement and its arguments,
// in the caller's goroutine: JSON encoding runs in parallel rather than in
// the single writer, a malformed event never costs a rollback, and the
// caller may change what ev points to as soon as Enqueue returns. A
// malformed event still goes to the writer with its error set, so it is
// reported in order by Flush.
func newEventJob(ev workflow.Event, wait bool) *job {
	j := &job{}
	if wait {
		j.done = make(chan error, 1)
	}
	j.err = prepare(j, &ev)
	j.ev = eventRef{ExecutionID: ev.ExecutionID, Seq: ev.Seq, Kind: ev.Kind}
	if ev.Kind == workflow.EventExecution && ev.Execution != nil && j.ev.ExecutionID == "" {
		j.ev.ExecutionID = ev.Execution.ID
	}
	return j
}

func prepare(j *job, ev *workflow.Event) error {
	execID := ev.ExecutionID
	if execID == "" && ev.Kind == workflow.EventExecution && ev.Execution != nil {
		execID = ev.Execution.ID
	}
	bad := func(cause error, format string, args ...any) error {
		return &workflow.Error{
			Code:    workflow.CodeInvalid,
			Message: fmt.Sprintf("%s event of execution %q (seq %d): ", ev.Kind, execID, ev.Seq) + fmt.Sprintf(format, args...),
			Err:     cause,
		}
	}
	if execID == "" {
		return bad(nil, "no execution id")
	}
	switch ev.Kind {
	case workflow.EventExecution:
		e := ev.Execution
		if e == nil {
			return bad(nil, "no execution")
		}
		if e.ID != "" && e.ID != execID {
			return bad(nil, "carries execution %q", e.ID)
		}
		if e.Status == "" {
			return bad(nil, "no status")
		}
		created := e.CreatedAt
		if created.IsZero() {
			created = ev.Time
		}
		if created.IsZero() {
			return bad(nil, "no created_at")
		}
		inputs, err := encodeMap(e.Inputs)
		if err != nil {
			return bad(err, "encode inputs")
		}
		j.stmt = stmtExecution
		// In the order of stmtSQL[stmtExecution]'s columns (argCreatedAt, argResumedFrom).
		j.args = []any{execID, e.WorkflowID, e.WorkflowName, e.Status, created.UnixNano(),
			nanosPtr(e.StartTime), nanosPtr(e.EndTime), e.RequestedMode, e.Mode, e.FallbackReason, e.Error,
			inputs, e.Usage.PromptTokens, e.Usage.CompletionTokens, e.Usage.TotalTokens, e.ResumedFrom}
	case workflow.EventNode:
		if ev.Node == nil {
			return bad(nil, "no node")
		}
		if ev.Node.NodeID == "" {
			return bad(nil, "no node id")
		}
		return encodeInto(j, ev, func(err error) error { return bad(err, "encode output of node %s", ev.Node.NodeID) })
	case workflow.EventLog:
		if ev.Log == nil {
			return bad(nil, "no log entry")
		}
		return encodeInto(j, ev, func(err error) error { return bad(err, "encode log entry") })
	case workflow.EventError:
		if ev.Error == nil {
			return bad(nil, "no error entry")
		}
		return encodeInto(j, ev, func(err error) error { return bad(err, "encode error entry") })
	case workflow.EventMessage:
		if ev.Message == nil {
			return bad(nil, "no message")
		}
		return encodeInto(j, ev, func(err error) error { return bad(err, "encode message metadata") })
	case workflow.EventContext:
		if ev.Context == nil {
			return bad(nil, "no context update")
		}
		if ev.Context.Key == "" {
			return bad(nil, "empty shared-context key")
		}
		return encodeInto(j, ev, func(err error) error { return bad(err, "encode shared-context value %s", ev.Context.Key) })
	default:
		return bad(nil, "unknown event kind")
	}
	return nil
}

// encodeInto encodes ev into j.data, reporting a failure with bad.
func encodeInto(j *job, ev *workflow.Event, bad func(error) error) error {
	data, err := encodeEvent(ev)
	if err != nil {
		return bad(err)
	}
	j.stmt, j.data = stmtChunk, data
	return nil
}

// submit hands j to the writer. It fails only when the DB is closed. It
// blocks while the queue is full.
func (db *DB) submit(j *job) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return errClosed()
	}
	db.queue <- j
	return nil
}

// wait waits for j's result. If ctx ends first it returns ctx's error; the
// job may still be applied afterwards.
func wait(ctx context.Context, j *job) error {
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exec runs fn in the writer goroutine, inside a transaction shared with
// whatever else is being written, and waits for the commit.
func (db *DB) exec(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.execThen(ctx, fn, nil)
}

// execThen is exec, with after (if not nil) run in the writer once the
// transaction has ended, whether fn ran or not: for caches of what fn
// changes, which must not be dropped before the change is visible.
func (db *DB) execThen(ctx context.Context, fn func(tx *sql.Tx) error, after func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{fn: fn, ctx: ctx, after: after, done: make(chan error, 1)}
	if err := db.submit(j); err != nil {
		return err
	}
	return wait(ctx, j)
}

// Record writes ev and waits until it is committed. Events of any number of
// goroutines that arrive together share one transaction (group commit), so
// Record's cost is mostly waiting for the next commit.
//
// How each kind is stored: EventExecution upserts the execution's header
// (ev.Execution's collections are ignored; created_at is kept from the
// first header, which takes ev.Time when CreatedAt is zero); EventNode
// upserts the node's whole state, keeping the position where the node was
// first seen; EventLog, EventError and EventMessage append an entry (its
// time defaults to ev.Time) ordered by ev.Seq, then by arrival;
// EventContext sets one shared-context key. Open values (outputs, inputs,
// metadata, context values) are stored as JSON and read back as decoded
// JSON: strings stay strings, numbers become float64, objects
// map[string]any.
//
// Record fails when the event is malformed (unknown kind, no execution id,
// no payload for its kind, a value that cannot be encoded as JSON: an
// "invalid" workflow.Error); when it names an execution whose
// EventExecution was never recorded (a "not_found" workflow.Error, from a
// foreign key); when the database fails (disk full, locked by another
// process past busy_timeout: the whole batch fails with it); when the DB is
// closed ("unavailable"); or when ctx ends first, in which case the event
// may still be written. An event that fails on its own does not fail the
// other events of its batch. EventDelta is not stored, and Record returns
// nil for it at once. Events are applied in the order they are submitted.
// Record is safe for concurrent use.
func (db *DB) Record(ctx context.Context, ev workflow.Event) error {
	if ev.Kind == workflow.EventDelta {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	j := newEventJob(ev, true)
	if err := db.submit(j); err != nil {
		return err
	}
	return wait(ctx, j)
}

// RecordAsync submits ev for writing like Enqueue and returns a channel
// that receives the outcome Record would have returned once the event is
// committed (or has failed). Unlike Record it does not make the writer
// commit early: the event shares the transaction of what follows it, and
// is committed within linger or with the next write someone waits for. So
// a new execution's header and the events of its first moments cost one
// commit instead of two, and the caller learns about the header only when
// it needs to. The channel is buffered; nobody has to read it. A failure
// is also reported by the next Flush, as for Enqueue. After Close the
// channel receives the "unavailable" error at once. RecordAsync is safe
// for concurrent use.
func (db *DB) RecordAsync(ev workflow.Event) <-chan error {
	done := make(chan error, 1)
	if ev.Kind == workflow.EventDelta {
		done <- nil
		return done
	}
	j := newEventJob(ev, false)
	j.done, j.lazy = done, true
	if err := db.submit(j); err != nil {
		done <- err
	}
	return done
}

// Enqueue submits ev for writing and returns without waiting; ev is
// encoded before Enqueue returns, so the caller may reuse what it points
// to. It blocks only while the writer's queue (4096 events) is full. An
// error writing ev (see Record) is logged and returned by the next Flush,
// or by Close. After Close the event is dropped and logged. EventDelta is
// ignored. Events are applied in the order they are submitted, and as
// Record applies them. Enqueue is safe for concurrent use.
func (db *DB) Enqueue(ev workflow.Event) {
	if ev.Kind == workflow.EventDelta {
		return
	}
	if err := db.submit(newEventJob(ev, false)); err != nil {
		db.logger.Error("store: event dropped", "execution_id", ev.ExecutionID, "kind", ev.Kind, "seq", ev.Seq, "err", err)
	}
}

// Flush waits until every event submitted before the call (by any
// goroutine) is committed, and returns the first write error since the
// previous Flush, whichever event or write it came from, and clears it. It
// fails when the DB is closed or when ctx ends first. Flush is safe for
// concurrent use; concurrent Flushes split the errors between them.
func (db *DB) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{flush: true, done: make(chan error, 1)}
	if err := db.submit(j); err != nil {
		return err
	}
	if err := wait(ctx, j); err != nil {
		return fmt.Errorf("flush store: %w", err)
	}
	return nil
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
