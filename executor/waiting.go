package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// WaitRecorder keeps what executions wait for, so that a restart finds
// them. store.DB satisfies it; a Recorder that does not leaves waits in
// memory only. It must be safe for concurrent use.
type WaitRecorder interface {
	SaveWait(ctx context.Context, executionID string, w workflow.Wait) error
	DeleteWait(ctx context.Context, executionID, key string) error
	AddBudget(ctx context.Context, executionID string, extraTokens int, extraUSD float64) error
}

// errSuspended ends a waiting execution's run when the process stops: its
// record stays "waiting", and the next start continues it (Reentry).
var errSuspended = errors.New("switchboard stopped while this execution waited; it continues when switchboard starts again")

// errStopped is the cause when a person stops a waiting execution.
var errStopped = errors.New("stopped by request")

// Reentry continues an execution that was waiting when its server stopped,
// under its own id: its completed nodes keep their outputs and are not run
// again, the others run from their start, and what it waited for is asked
// again (a human node's timeout still counts from when it first waited).
type Reentry struct {
	Execution   *workflow.Execution // its record as stored, with its waits
	Seq         int64               // the highest seq of its recorded events
	ExtraTokens int                 // budget approved so far, on top of the workflow's
	ExtraUSD    float64
}

// waitRoom is what one execution waits for, and how a person's answer or
// approval reaches the node that waits. It is safe for concurrent use.
type waitRoom struct {
	x *execution

	// open, freed and entered are made when first needed: most
	// executions never wait, and every execution has a room.
	mu      sync.Mutex
	open    map[string]*openWait // by Wait.Key
	freed   chan struct{}        // closed whenever a wait closes (and dropped, for the next slot to make)
	entered chan struct{}        // closed when the execution first waits
	// prior are the waits stored before a restart, by key, and completed
	// the nodes that had completed then (nil unless re-entered).
	prior     map[string]workflow.Wait
	completed map[string]bool
	reentered *workflow.Execution
	// clocks are the timeouts of the running ai-processor nodes of an
	// execution that pauses over its budget; they stop during a pause.
	clocks        map[*nodeClock]bool
	clocksStopped bool
	clocked       bool // its nodes' timeouts are clocks (clock.go)
}

type openWait struct {
	w        workflow.Wait
	cfg      workflow.HumanConfig
	answer   chan string // buffered: the person's answer
	answered bool
}

// initWaiting sets up the execution's waits, and the budget pause when its
// workflow asks for one. The room lives in the execution's own struct.
func (x *execution) initWaiting() {
	x.waits.x = x
	x.room = &x.waits
	if g, ok := x.guard.(*guard); ok && x.wf.OnBudget() == workflow.OnBudgetPause {
		g.gate = &budgetGate{open: x.room.openBudget, resumed: make(chan struct{})}
		x.room.clocked = true
	}
	for i := range x.wf.Nodes {
		x.room.clocked = x.room.clocked || x.wf.Nodes[i].Type == workflow.NodeHuman
	}
}

// reenter prepares a re-entered execution: the next seq, the states and
// outputs of its nodes, its shared context and its usage so far (its budget
// counts it), and the budget approved for it.
func (x *execution) reenter(r *Reentry) {
	if r == nil {
		return
	}
	prev := r.Execution
	room := x.room
	room.reentered = prev
	room.prior = map[string]workflow.Wait{}
	room.completed = map[string]bool{}
	for _, w := range prev.Waiting {
		room.prior[w.Key()] = w
	}
	x.seq.Store(r.Seq)
	var usage workflow.Usage
	var cost workflow.Cost
	calls := 0
	for id, s := range prev.NodeStates {
		st, ok := x.states[id]
		if !ok {
			continue // a node the workflow no longer has
		}
		usage, calls = usage.Add(s.Usage), calls+s.Calls
		cost = cost.Add(workflow.CostOf(s.CostUSD, s.CostNote, s.CostEstimated))
		if s.Status == workflow.NodeCompleted {
			cp := *s
			x.states[id] = &cp
			x.outputs[id] = s.Output
			room.completed[id] = true
			continue
		}
		st.Usage, st.Calls, st.Model = s.Usage, s.Calls, s.Model
		st.CostUSD, st.CostNote, st.CostEstimated = s.CostUSD, s.CostNote, s.CostEstimated
	}
	// A node's usage is stored when its state changes, the execution's
	// when it begins to wait: a node held over the budget has spent tokens
	// its stored state lacks, which the header counts.
	if prev.Usage.TotalTokens > usage.TotalTokens {
		usage = prev.Usage
	}
	x.usage, x.cost = usage, cost
	for k, v := range prev.SharedContext {
		x.shared[k] = v
	}
	if g, ok := x.guard.(*guard); ok {
		g.mu.Lock()
		g.tokens, g.llmCalls, g.usd = usage.TotalTokens, calls, cost.Known
		if g.lim.TokenBudget > 0 {
			g.lim.TokenBudget += r.ExtraTokens
		}
		if g.lim.BudgetUSD > 0 {
			g.lim.BudgetUSD += r.ExtraUSD
		}
		g.mu.Unlock()
	}
}

// reentryHeader is the header a re-entered execution starts with: its
// own, still waiting. Secret inputs were stored masked: the workflow's
// values stand for them.
func reentryHeader(prev *workflow.Execution) *workflow.Execution {
	x := prev.Header()
	x.Status, x.EndTime, x.Error, x.Waiting = workflow.ExecWaiting, nil, "", nil
	x.Mode, x.FallbackReason, x.Placement, x.PlacementFallbackReason = x.RequestedMode, "", "", ""
	x.Inputs = map[string]any{}
	for k, v := range prev.Inputs {
		if v != workflow.Mask {
			x.Inputs[k] = v
		}
	}
	return x
}

// rejoined settles node id of a re-entered execution that had completed:
// its output stands and it is not run again.
func (room *waitRoom) rejoined(id string) bool {
	return room.completed[id]
}

// keepWaiting keeps a re-entered execution's status and start time when
// its run begins: it still waits.
func (room *waitRoom) keepWaiting(h *workflow.Execution) {
	if prev := room.reentered; prev != nil {
		h.Status, h.StartTime = workflow.ExecWaiting, prev.StartTime
		room.x.log(slog.LevelInfo, "", "Continuing execution %s after a restart: %d completed node(s) are not run again", h.ID, len(room.completed))
	}
}

// ended completes the final header: a suspended run is still waiting, with
// no end time.
func (room *waitRoom) ended(h *workflow.Execution) {
	h.Waiting = nil
	if h.Status == workflow.ExecWaiting {
		h.EndTime = nil
		room.mu.Lock()
		h.Waiting = room.listLocked()
		room.mu.Unlock()
	}
}

// suspended reports whether the run ends because the process stops while
// it waits.
func suspended(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errSuspended)
}

func (room *waitRoom) listLocked() []workflow.Wait {
	list := make([]workflow.Wait, 0, len(room.open))
	for _, o := range room.open {
		list = append(list, o.w)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Key() < list[j].Key() })
	return list
}

func (room *waitRoom) waitRecorder() WaitRecorder {
	wr, _ := room.x.e.rec.(WaitRecorder)
	return wr
}

// enter opens a wait: the execution's status becomes waiting (if it was
// not), and the wait is stored before anyone is told. A wait opened while
// the process stops suspends the run at once.
func (room *waitRoom) enter(o *openWait) {
	x := room.x
	key := o.w.Key()
	// The usage so far goes with it: the header carries a total only from
	// the end of a run, and a person deciding on a budget wants to see it.
	x.mu.Lock()
	usage := x.usage
	x.mu.Unlock()
	room.mu.Lock()
	if room.open == nil {
		room.open = map[string]*openWait{}
	}
	room.open[key] = o
	list := room.listLocked()
	x.setHeader(func(h *workflow.Execution) { h.Status, h.Waiting, h.Usage = workflow.ExecWaiting, list, usage })
	room.mu.Unlock()
	if wr := room.waitRecorder(); wr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := wr.SaveWait(ctx, x.rec.ID, o.w); err != nil {
			x.log(slog.LevelError, o.w.NodeID, "Storing what the execution waits for failed; a restart will not continue it: %v", err)
		}
		cancel()
	}
	x.e.mu.Lock()
	closing := x.e.closing
	x.e.mu.Unlock()
	if closing {
		x.cancel(errSuspended)
	}
	room.mu.Lock()
	entered := room.enteredLocked()
	select {
	case <-entered:
	default:
		close(entered)
	}
	room.mu.Unlock()
}

// leave closes a wait: the execution runs again once nothing else waits.
// A suspended run keeps its waits stored, for the next start.
func (room *waitRoom) leave(o *openWait, ctx context.Context) {
	x := room.x
	key := o.w.Key()
	if suspended(ctx) || suspended(x.ctx) {
		return
	}
	room.mu.Lock()
	if room.open[key] == o {
		delete(room.open, key)
	}
	if room.freed != nil {
		close(room.freed)
		room.freed = nil
	}
	if len(room.open) == 0 && x.ctx.Err() == nil {
		x.setHeader(func(h *workflow.Execution) { h.Status, h.Waiting = workflow.ExecRunning, nil })
	} else if x.ctx.Err() == nil {
		list := room.listLocked()
		x.setHeader(func(h *workflow.Execution) { h.Waiting = list })
	}
	room.mu.Unlock()
	if wr := room.waitRecorder(); wr != nil {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := wr.DeleteWait(dctx, x.rec.ID, key); err != nil {
			x.log(slog.LevelWarn, o.w.NodeID, "Removing an answered wait from the store failed: %v", err)
		}
		cancel()
	}
}

// slot waits until human node id has no open question (one person answers
// one question of a node at a time), then holds it with o. It fails when
// ctx ends first.
func (room *waitRoom) slot(ctx context.Context, o *openWait) error {
	key := o.w.Key()
	for {
		room.mu.Lock()
		if _, busy := room.open[key]; !busy {
			if room.open == nil {
				room.open = map[string]*openWait{}
			}
			room.open[key] = o
			room.mu.Unlock()
			return nil
		}
		if room.freed == nil {
			room.freed = make(chan struct{})
		}
		freed := room.freed
		room.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// openBudget opens the budget wait: the execution went over its token
// budget or its budget_usd, as over says, and its model calls hold until
// someone approves more or stops it. The budget gate calls it once per
// pause.
func (room *waitRoom) openBudget(over workflow.Wait) {
	over.Since = time.Now().UTC()
	o := &openWait{w: over}
	if over.BudgetUSD > 0 && over.SpentUSD > over.BudgetUSD {
		room.x.log(slog.LevelWarn, "", "USD budget exceeded: %s spent, budget %s; the execution waits for an approval (on_budget pause)",
			workflow.FormatUSD(over.SpentUSD), workflow.FormatUSD(over.BudgetUSD))
	} else {
		room.x.log(slog.LevelWarn, "", "Token budget exceeded: %d tokens used, budget %d; the execution waits for an approval (on_budget pause)", over.TokensUsed, over.TokenBudget)
	}
	room.stopClocks()
	room.enter(o)
}

// closeBudget closes the budget wait once an approval raised the budget.
func (room *waitRoom) closeBudget() {
	room.mu.Lock()
	o := room.open[workflow.WaitBudget]
	room.mu.Unlock()
	if o != nil {
		room.leave(o, context.Background())
	}
	room.startClocks()
}

// waiting returns the open wait with key, or nil.
func (room *waitRoom) waiting(key string) *openWait {
	room.mu.Lock()
	defer room.mu.Unlock()
	return room.open[key]
}

func (room *waitRoom) keys() []string {
	room.mu.Lock()
	defer room.mu.Unlock()
	keys := make([]string, 0, len(room.open))
	for k := range room.open {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Waiting is closed when the execution first waits for a person (status
// waiting), so that a synchronous caller can answer with its record then
// instead of holding the request open for as long as the person takes.
// An execution that cannot wait (no human node, no budget pause) has a
// nil channel, which never closes.
func (r *Run) Waiting() <-chan struct{} {
	if r.room == nil || !r.room.clocked {
		return nil
	}
	r.room.mu.Lock()
	defer r.room.mu.Unlock()
	return r.room.enteredLocked()
}

// enteredLocked returns the channel closed when the execution first
// waits, made on first use; room.mu is held.
func (room *waitRoom) enteredLocked() chan struct{} {
	if room.entered == nil {
		room.entered = make(chan struct{})
	}
	return room.entered
}

// room returns the waits of execution id when it runs in this process and
// waits now, or a conflict saying why not.
func (e *Executor) room(id string) (*waitRoom, *Run, error) {
	e.mu.Lock()
	r, ok := e.runs[id]
	e.mu.Unlock()
	if !ok || r.room == nil {
		return nil, nil, workflow.Errorf(workflow.CodeConflict, "execution %s is not waiting in this process", id)
	}
	if len(r.room.keys()) == 0 {
		return nil, nil, workflow.Errorf(workflow.CodeConflict, "execution %s is not waiting (it is running)", id)
	}
	return r.room, r, nil
}

// Answer gives a person's answer to human node nodeID of waiting
// execution id. The answer becomes the node's output (or the reply of the
// ask_node that put the question). It fails with a conflict when the
// execution is not waiting in this process, and as invalid (naming node_id
// or answer) when the node is not waiting for an answer or a choice is not
// one of its choices. It is safe for concurrent use.
func (e *Executor) Answer(id, nodeID, answer string) error {
	room, _, err := e.room(id)
	if err != nil {
		return err
	}
	invalid := func(path, format string, args ...any) error {
		return &workflow.Error{Code: workflow.CodeInvalid, Message: "the answer cannot be taken",
			Problems: []workflow.Problem{{Path: path, Message: fmt.Sprintf(format, args...)}}}
	}
	room.mu.Lock()
	defer room.mu.Unlock()
	o := room.open[nodeID]
	if o == nil || nodeID == workflow.WaitBudget {
		var waiting []string
		for k, w := range room.open {
			if w.w.Reason == workflow.WaitHuman {
				waiting = append(waiting, k)
			}
		}
		sort.Strings(waiting)
		if len(waiting) == 0 {
			return workflow.Errorf(workflow.CodeConflict, "execution %s waits for a budget approval, not for an answer", id)
		}
		return invalid("node_id", "node %q is not waiting for an answer; waiting: %s", nodeID, strings.Join(waiting, ", "))
	}
	if msg := o.cfg.CheckAnswer(answer); msg != "" {
		return invalid("answer", "%s", msg)
	}
	if o.answered {
		return workflow.Errorf(workflow.CodeConflict, "node %q of execution %s was answered already", nodeID, id)
	}
	o.answered = true
	o.answer <- answer
	return nil
}

// Approve raises the budget of execution id, waiting over its budget, by
// extraTokens tokens and extraUSD dollars, and lets it go on. The approval
// is stored first, so that a restart keeps it. It fails with a conflict
// when the execution is not waiting for a budget approval in this process,
// and as invalid (naming extra_tokens) when the raised budget is still
// below what the execution has used. It is safe for concurrent use.
func (e *Executor) Approve(id string, extraTokens int, extraUSD float64) error {
	room, _, err := e.room(id)
	if err != nil {
		return err
	}
	if room.waiting(workflow.WaitBudget) == nil {
		return workflow.Errorf(workflow.CodeConflict, "execution %s waits for an answer, not for a budget approval", id)
	}
	g, ok := room.x.guard.(*guard)
	if !ok || g.gate == nil {
		return workflow.Errorf(workflow.CodeConflict, "execution %s has no budget to raise", id)
	}
	if err := g.checkRaise(extraTokens, extraUSD); err != nil {
		return err
	}
	if wr := room.waitRecorder(); wr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := wr.AddBudget(ctx, id, extraTokens, extraUSD); err != nil {
			return fmt.Errorf("store the approval of execution %s: %w", id, err)
		}
	}
	room.x.log(slog.LevelInfo, "", "Budget approved: %d more tokens, %g more USD; the execution goes on", extraTokens, extraUSD)
	room.closeBudget()
	g.raise(extraTokens, extraUSD)
	return nil
}

// Stop ends waiting execution id: it ends cancelled, with why. It fails
// with a conflict when the execution is not waiting in this process. It is
// safe for concurrent use.
func (e *Executor) Stop(id string) error {
	room, r, err := e.room(id)
	if err != nil {
		return err
	}
	what := "an answer"
	if room.waiting(workflow.WaitBudget) != nil {
		what = "a budget approval"
	}
	r.cancel(fmt.Errorf("%w while it waited for %s", errStopped, what))
	return nil
}

// suspendWaiting ends the runs that wait for a person, keeping them
// waiting in the store, when the process stops: a person may take days,
// and the next start continues them.
func (e *Executor) suspendWaiting() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runs {
		if r.room != nil && len(r.room.keys()) > 0 {
			r.cancel(errSuspended)
		}
	}
}
