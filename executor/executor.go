// Package executor runs workflow executions: it orders the nodes, runs the
// ones whose parents have finished at the same time, lets ai-processor nodes
// talk to each other (ask, broadcast, shared context) in simple or pubsub
// mode, and reports every change as a workflow.Event to a Recorder and to
// live subscribers.
//
// The loop guards of an execution (ask limits, depth, cycles, repeats,
// model calls, token budget) have one authority: the server that
// coordinates the execution. An agent holds a guard handle; in process it
// is the guard itself, and an agent hosted by a worker gets a handle that
// asks the server. Counters in Redis were the other choice, and lose on
// every count: the repeat guard keeps an answer and makes a second asker
// wait for the first, which Redis counters cannot do without a waiter of
// their own; each check-and-count spans several keys (the execution's
// asks and the pair's) and would need a script to stay atomic; and the
// keys would need an expiry matched to an execution whose end only the
// server knows. The server already holds the execution's state and ends
// it when the budget is spent; asking it costs one round trip on the bus
// per ask, small next to the model call itself, and an execution's agents
// on the server (the fallback) pay nothing. Model calls are admitted a few
// at a time (callGrant) while the execution is far from max_llm_calls, and
// one at a time near it or under on_budget "pause", so an answer on a
// worker seldom waits for the server. Tokens need no round trip: a worker
// reports each model call's usage as an event, and the server adds it and
// ends an execution over its budget, as it does when its own agent's call
// overruns it. System prompts need none either: a worker builds them with
// the broadcasts the server sends it (teamprompt.go).
//
// Worker mode (UseWorkers on the server, Worker in a worker process)
// places a pubsub execution's agents on worker processes: placement.go is
// the server's side (placement by free capacity, the result stream,
// failover after a lapsed lease), worker.go the worker's, remote.go their
// messages. An agent's code is the same in both: an agent value, a crew
// for its asks and a desk for the queries it answers.
package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/tools"
	"github.com/switchboard-dev/switchboard/workflow"
)

// LLM is the chat model the executor calls. llm.OpenAI and llm.Demo satisfy
// it. It must be safe for concurrent use.
type LLM interface {
	Chat(ctx context.Context, r llm.Request) (llm.Response, error)
}

// Recorder stores the events of executions. store.DB satisfies it, and it
// must be safe for concurrent use.
//
// RecordAsync submits an event and returns a channel that receives the
// outcome once it is committed, without making the recorder commit early:
// Start submits a new execution's record this way, so it shares the commit
// of the run's first events (one commit per execution instead of two), and
// whoever needs it stored waits with Run.Stored. Enqueue submits an event
// and must not block for long; Flush returns once everything submitted
// before it is durable, with the first error since the last Flush.
type Recorder interface {
	RecordAsync(ev workflow.Event) <-chan error
	Enqueue(ev workflow.Event)
	Flush(ctx context.Context) error
}

// Config holds the executor's limits. Zero fields take the defaults.
type Config struct {
	AskTimeout  time.Duration // one ask_node round trip; workflow metadata.ask_timeout_seconds overrides
	NodeTimeout time.Duration // one node; the node's timeout_seconds overrides
	MaxRounds   int           // follow-up turns carrying call results, per conversation
	Limits      Limits        // loop guards and budgets; workflow metadata overrides them
	PingTimeout time.Duration // how long to wait for Redis when a pubsub execution starts
	// ToolMode is the tool mode of nodes that set no config.tool_mode:
	// native, text or auto (the default; see workflow.AIConfig.ToolMode).
	ToolMode string
	// HTTP is how the http_request tool and http nodes reach the web.
	HTTP HTTPConfig
	// MCP is the MCP servers agents may reach, and how.
	MCP MCPConfig
	// Prices prices model calls for the records' cost_usd and the
	// workflows' budget_usd; nil: no model has a price.
	Prices Pricer
	// OnModelCall, when set, sees every model call once it is counted,
	// with its cost. It is called from the goroutine that counts the call
	// and must not block.
	OnModelCall func(ModelCall)
	// SMTP is the mail server email nodes send through (email.go).
	SMTP SMTPConfig
	// Telemetry is where metrics and traces go; the zero value sends none.
	Telemetry Telemetry
}

func (c Config) withDefaults() Config {
	if c.AskTimeout <= 0 {
		c.AskTimeout = 30 * time.Second
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = 300 * time.Second
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = 3
	}
	c.Limits = c.Limits.withDefaults()
	if c.PingTimeout <= 0 {
		c.PingTimeout = 2 * time.Second
	}
	if !workflow.ValidToolMode(c.ToolMode) {
		c.ToolMode = workflow.ToolModeAuto
	}
	return c
}

// Options are the choices of one execution.
type Options struct {
	Inputs map[string]any // override workflow variables by name
	Mode   string         // "simple", "pubsub" or "" for the workflow's own mode
	// Placement is where a pubsub execution's agents run: "auto" (or "")
	// places them on the workers registered on the bus, and in the server
	// when there is none; "local" keeps them in the server.
	Placement string
	// Resume, when set, is an interrupted or failed execution of the same
	// workflow: its completed nodes are not run again, their outputs and
	// its shared context are taken over, and the new execution links to it.
	Resume *workflow.Execution
	// KeepRecord keeps the events the run records in memory, so that
	// Run.Record can return its record once it has ended without reading
	// the store (a synchronous API call answers with it).
	KeepRecord bool
	// Trigger says what started the execution; it is recorded, and
	// prompts read it as {{trigger.…}}.
	Trigger *workflow.Trigger
	// Reenter, when set, continues an execution that was waiting when the
	// process stopped, under its own id (see Reentry).
	Reenter *Reentry
	// Trace is the remote parent of the execution's span (the traceparent
	// of the request that started it); the zero value starts a new trace.
	Trace trace.SpanContext
}

// Executor starts and tracks executions. It holds no state shared between
// executions other than the index of running ones. It is safe for concurrent
// use.
type Executor struct {
	rec    Recorder
	model  LLM
	pubsub PubSub // nil: pubsub requests fall back to simple
	logger *slog.Logger
	cfg    Config
	hub    *hub
	// workers is worker mode, set by UseWorkers: the agents of pubsub
	// executions are placed on workers; nil: in this process.
	workers *workerPool
	// mcp holds the MCP sessions of every execution, closed by Shutdown.
	mcp *tools.MCP
	tel *telemetry // metrics and traces

	base       context.Context // parent of every run; cancelled by Shutdown's hard stop
	cancelBase context.CancelFunc

	mu      sync.Mutex
	runs    map[string]*Run
	ended   map[string]endedRedactor // redactors of recently ended runs, for messages still in flight
	endedQ  []string                 // their ids in the order they ended, oldest first
	closing bool
	wg      sync.WaitGroup
}

// New returns an Executor that records to rec and calls model. ps may be nil,
// in which case pubsub executions run in simple mode with a recorded reason.
func New(rec Recorder, model LLM, ps PubSub, logger *slog.Logger, cfg Config) *Executor {
	base, cancel := context.WithCancel(context.Background())
	return &Executor{
		rec: rec, model: model, pubsub: ps, logger: logger, cfg: cfg.withDefaults(), mcp: newMCP(cfg.MCP, cfg.HTTP, logger),
		hub: newHub(), tel: newTelemetry(cfg.Telemetry), base: base, cancelBase: cancel, runs: map[string]*Run{}, ended: map[string]endedRedactor{},
	}
}

// Run is a started execution.
type Run struct {
	ID         string
	WorkflowID string
	Started    time.Time
	done       chan struct{}
	cancel     context.CancelCauseFunc
	redact     *workflow.Redactor
	status     string
	err        error

	kept      *keptRecord  // nil unless Options.KeepRecord
	stored    <-chan error // the outcome of recording the new execution
	storedMu  sync.Mutex
	storedErr error
	storedSet bool

	room *waitRoom // what it waits for (waiting.go)
}

// Record returns the execution's record as it was recorded (secrets
// masked), the same as the store returns once the run has ended, and
// true; or nil and false when the run was not started with
// Options.KeepRecord or has not ended yet.
func (r *Run) Record() (*workflow.Execution, bool) {
	if r.kept == nil {
		return nil, false
	}
	select {
	case <-r.done:
		return r.kept.build(), true
	default:
		return nil, false
	}
}

// Stored waits until the execution's record exists in the store, so it can
// be read, listed and found again after a crash; answer a client with the
// execution's id only after it. It returns the error recording it (the run
// then ends with an error too), or ctx's error if ctx ends first. It is safe
// for concurrent use.
func (r *Run) Stored(ctx context.Context) error {
	r.storedMu.Lock()
	defer r.storedMu.Unlock()
	if r.storedSet {
		return r.storedErr
	}
	select {
	case err := <-r.stored:
		if err != nil {
			err = fmt.Errorf("record new execution of workflow %s: %w", r.WorkflowID, err)
		}
		r.storedErr, r.storedSet = err, true
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the execution has ended and everything it did is
// recorded.
func (r *Run) Done() <-chan struct{} { return r.done }

// Wait blocks until the execution has ended or ctx is done. It returns the
// final status, and an error only when ctx ended first or recording failed.
func (r *Run) Wait(ctx context.Context) (string, error) {
	select {
	case <-r.done:
		return r.status, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// errShutdown is the cancellation cause when the process stops.
var errShutdown = errors.New("switchboard is shutting down")

// errCancelled is the cancellation cause of a user's cancel request.
var errCancelled = errors.New("cancelled by request")

// Start records a new execution of wf (status queued) and runs it in the
// background. The record is submitted before Start returns and committed
// with the run's first events; call Run.Stored before giving the id to
// anyone who will read it from the store (it reports a record that could
// not be written). A resume (Options.Resume) runs only once its record is
// stored; one the store refuses, as a second resume of the same execution,
// ends without running, with Run.Stored's error. Start fails when the
// workflow cannot be ordered, an input gives a secret a value too short to
// mask, the requested mode is unknown, or the executor is shutting down.
func (e *Executor) Start(wf *workflow.Workflow, opts Options) (*Run, error) {
	g := wf.Graph()
	if err := g.Err(); err != nil {
		return nil, err
	}
	if len(g.Dangling) > 0 {
		// Such a node could never be settled; Validate refuses it too.
		k := g.Dangling[0]
		return nil, &workflow.Error{Code: workflow.CodeInvalid, Message: "workflow is invalid", Problems: []workflow.Problem{{
			Path:    fmt.Sprintf("edges[%d]", k),
			Message: fmt.Sprintf("edge from %q to %q names a node that is not in this workflow", wf.Edges[k].From, wf.Edges[k].To)}}}
	}
	if ps := wf.CheckSecretInputs(opts.Inputs); len(ps) > 0 {
		return nil, &workflow.Error{Code: workflow.CodeInvalid, Message: "inputs are invalid", Problems: ps}
	}
	mode := opts.Mode
	if mode == "" {
		mode = wf.Mode()
	}
	if mode != workflow.ModeSimple && mode != workflow.ModePubSub {
		return nil, &workflow.Error{Code: workflow.CodeInvalid, Message: "unknown communication mode",
			Problems: []workflow.Problem{{Path: "communication_mode", Message: fmt.Sprintf("must be %q or %q, not %q", workflow.ModeSimple, workflow.ModePubSub, mode)}}}
	}
	switch opts.Placement {
	case "", workflow.PlacementAuto, workflow.PlacementLocal:
	default:
		return nil, &workflow.Error{Code: workflow.CodeInvalid, Message: "unknown placement",
			Problems: []workflow.Problem{{Path: "placement", Message: fmt.Sprintf("must be %q or %q, not %q", workflow.PlacementAuto, workflow.PlacementLocal, opts.Placement)}}}
	}
	now := time.Now().UTC()
	x := &workflow.Execution{
		ID: workflow.NewID(), WorkflowID: wf.ID, WorkflowName: wf.Name, Status: workflow.ExecQueued,
		CreatedAt: now, RequestedMode: mode, Mode: mode, Inputs: opts.Inputs, Trigger: opts.Trigger,
	}
	if opts.Resume != nil {
		x.ResumedFrom = opts.Resume.ID
	}
	if opts.Reenter != nil {
		x = reentryHeader(opts.Reenter.Execution)
	}
	if x.Inputs == nil {
		x.Inputs = map[string]any{}
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, workflow.Errorf(workflow.CodeUnavailable, "switchboard is shutting down; not starting new executions")
	}
	runCtx, cancel := context.WithCancelCause(e.base)
	r := &Run{ID: x.ID, WorkflowID: wf.ID, Started: now, done: make(chan struct{}), cancel: cancel}
	e.runs[x.ID] = r
	e.wg.Add(1)
	e.mu.Unlock()
	e.tel.metrics().ExecutionStarted(mode)
	runCtx, span := e.tel.startExecution(runCtx, x, opts.Trace)

	ex := newExecution(e, wf, x, g, runCtx)
	ex.takeOver(opts.Resume)
	ex.reenter(opts.Reenter)
	ex.wantPlacement = opts.Placement
	ex.cancel = cancel
	r.redact = ex.redact
	r.room = ex.room
	if opts.KeepRecord {
		ex.kept = &keptRecord{}
		r.kept = ex.kept
	}
	header := ex.redactEvent(ex.event(workflow.EventExecution, func(ev *workflow.Event) { ev.Execution = x.Header() }))
	if ex.kept != nil {
		ex.kept.add(header)
	}
	r.stored = e.rec.RecordAsync(header)
	// The goroutine reads only this of opts: capturing opts itself would
	// move the whole Options to the heap on every start.
	resume := opts.Resume != nil
	go func() {
		defer e.wg.Done()
		defer e.forget(r)
		defer cancel(nil)
		// The store refuses a second resume of the same execution (a
		// conflict): a resume runs only once its record is stored, so that
		// the refused one calls no model. The writer answers every record,
		// so this wait ends without a context.
		if resume {
			if err := r.Stored(context.Background()); err != nil {
				r.status, r.err = workflow.ExecError, err
				e.hub.end(x.ID)
				e.tel.endExecution(span, r.status, x)
				close(r.done)
				return
			}
		}
		r.status, r.err = ex.run()
		// Counted before Done, so whoever waits for the run sees it counted.
		e.tel.endExecution(span, r.status, x)
		close(r.done)
	}()
	return r, nil
}

// endedRedactor keeps an ended run's redactor a while: the bus monitor may
// show the run's last messages after it ended, and they must stay masked.
type endedRedactor struct {
	r  *workflow.Redactor
	at time.Time
}

const keepEndedRedactors = 10 * time.Minute

func (e *Executor) forget(r *Run) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.runs, r.ID)
	if r.redact == nil {
		return
	}
	// Forget those kept longer than keepEndedRedactors, oldest first: they
	// are in the order they ended, so this stops at the first one still
	// kept, and a run's end costs the same with a million ended before it.
	now := time.Now()
	n := 0
	for _, id := range e.endedQ {
		if now.Sub(e.ended[id].at) <= keepEndedRedactors {
			break
		}
		delete(e.ended, id)
		n++
	}
	e.endedQ = e.endedQ[n:]
	e.endedQ = append(e.endedQ, r.ID)
	e.ended[r.ID] = endedRedactor{r.redact, now}
}

// Cancel asks a running execution to stop. It reports whether the execution
// was running in this process.
func (e *Executor) Cancel(id string) bool {
	e.mu.Lock()
	r, ok := e.runs[id]
	e.mu.Unlock()
	if ok {
		r.cancel(errCancelled)
	}
	return ok
}

// Redact masks the secret values of an execution in text, for the bus
// monitor, which sees raw messages. It knows the executions running in this
// process and those that ended in the last ten minutes; other text is
// returned as it is.
func (e *Executor) Redact(executionID, text string) string {
	e.mu.Lock()
	var red *workflow.Redactor
	if r := e.runs[executionID]; r != nil {
		red = r.redact
	} else if er, ok := e.ended[executionID]; ok {
		red = er.r
	}
	e.mu.Unlock()
	return red.String(text)
}

// Running returns the number of executions in progress.
func (e *Executor) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.runs)
}

// Subscribe returns the live events of an execution from now on, and a
// function to stop them. The channel is closed when the execution ends or
// stop is called. A subscriber that falls behind loses delta events first.
func (e *Executor) Subscribe(id string) (<-chan workflow.Event, func()) {
	return e.hub.subscribe(id)
}

// SubscribeAll returns the live events of every execution, for list pages.
func (e *Executor) SubscribeAll() (<-chan workflow.Event, func()) {
	return e.hub.subscribe("")
}

// Shutdown stops accepting executions, waits for running ones until ctx is
// done, then cancels them (they end as interrupted) and waits for them to be
// recorded. It returns ctx's error if it had to cancel.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.suspendWaiting()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	// The MCP servers stop once no execution can call them.
	defer e.closeMCP()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	for _, r := range e.runs {
		r.cancel(errShutdown)
	}
	e.mu.Unlock()
	<-done
	e.cancelBase()
	return ctx.Err()
}

func (e *Executor) closeMCP() {
	if err := e.mcp.Close(); err != nil {
		e.logger.Warn("closing MCP sessions", "err", err)
	}
}
