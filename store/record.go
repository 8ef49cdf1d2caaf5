package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/switchboard-dev/switchboard/workflow"
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
	// (stmt, args); any other event is its storedForm (stored), which the
	// writer encodes into its execution's chunk.
	stmt   int
	args   []any
	stored any
	err    error // set before the writer sees the job, or by its encoding: the event is malformed
}

// eventRef names an event: enough to say which one failed.
type eventRef struct {
	ExecutionID string
	Seq         int64
	Kind        workflow.EventKind
}

// newEventJob checks ev and turns it into a statement and its arguments,
// or into the struct it is stored as, in the caller's goroutine, so that
// the caller may change what ev points to as soon as Enqueue returns (but
// not the open values: node output, message metadata, a context value). A
// malformed event still goes to the writer with its error set, so it is
// reported in order by Flush. The writer encodes the stored struct (see
// addToChunk): the caller goes on with its run meanwhile, on the other core.
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

// invalidEvent is the error of a malformed event: the "invalid" code, and a
// message naming the event.
func invalidEvent(ev eventRef, cause error, format string, args ...any) error {
	return &workflow.Error{
		Code:    workflow.CodeInvalid,
		Message: fmt.Sprintf("%s event of execution %q (seq %d): ", ev.Kind, ev.ExecutionID, ev.Seq) + fmt.Sprintf(format, args...),
		Err:     cause,
	}
}

func prepare(j *job, ev *workflow.Event) error {
	execID := ev.ExecutionID
	if execID == "" && ev.Kind == workflow.EventExecution && ev.Execution != nil {
		execID = ev.Execution.ID
	}
	bad := func(cause error, format string, args ...any) error {
		return invalidEvent(eventRef{ExecutionID: execID, Seq: ev.Seq, Kind: ev.Kind}, cause, format, args...)
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
		trigger, err := encodeTrigger(e.Trigger)
		if err != nil {
			return bad(err, "encode trigger")
		}
		j.stmt = stmtExecution
		// In the order of stmtSQL[stmtExecution]'s columns (argCreatedAt, argResumedFrom).
		j.args = []any{execID, e.WorkflowID, e.WorkflowName, e.Status, created.UnixNano(),
			nanosPtr(e.StartTime), nanosPtr(e.EndTime), e.RequestedMode, e.Mode, e.FallbackReason, e.Error,
			inputs, e.Usage.PromptTokens, e.Usage.CompletionTokens, e.Usage.TotalTokens, e.ResumedFrom, e.Usage.Estimated,
			e.Placement, e.PlacementFallbackReason, trigger, e.CostUSD, e.CostEstimated, e.CostNote}
		return nil
	case workflow.EventNode:
		if ev.Node == nil {
			return bad(nil, "no node")
		}
		if ev.Node.NodeID == "" {
			return bad(nil, "no node id")
		}
	case workflow.EventLog:
		if ev.Log == nil {
			return bad(nil, "no log entry")
		}
	case workflow.EventError:
		if ev.Error == nil {
			return bad(nil, "no error entry")
		}
	case workflow.EventMessage:
		if ev.Message == nil {
			return bad(nil, "no message")
		}
	case workflow.EventContext:
		if ev.Context == nil {
			return bad(nil, "no context update")
		}
		if ev.Context.Key == "" {
			return bad(nil, "empty shared-context key")
		}
	default:
		return bad(nil, "unknown event kind")
	}
	stored, err := storedForm(ev)
	if err != nil {
		return bad(err, "unknown event kind")
	}
	j.stmt, j.stored = stmtChunk, stored
	return nil
}

// encodeFailure is the error of event job j whose stored form could not be
// encoded: a value with no JSON form.
func encodeFailure(j *job, err error) error {
	switch s := j.stored.(type) {
	case *storedNode:
		return invalidEvent(j.ev, err, "encode output of node %s", s.Node)
	case *storedContext:
		return invalidEvent(j.ev, err, "encode shared-context value %s", s.Key)
	case *storedMessage:
		return invalidEvent(j.ev, err, "encode message metadata")
	case *storedLog:
		return invalidEvent(j.ev, err, "encode log entry")
	}
	return invalidEvent(j.ev, err, "encode error entry")
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

// Enqueue submits ev for writing and returns without waiting; the caller
// may reuse what ev points to once Enqueue returns, but must not modify
// the open values it holds (a node's output, a message's metadata, a
// shared-context value), which are encoded later, by the writer. It blocks only while the writer's queue (4096 events) is full. An
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
