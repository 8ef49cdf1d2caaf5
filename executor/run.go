package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// execution is the private state of one run. Nothing in it is shared with
// other executions.
type execution struct {
	e      *Executor
	wf     *workflow.Workflow
	rec    *workflow.Execution // header; only run() writes it after start
	ctx    context.Context
	logger *slog.Logger
	seq    atomic.Int64
	// graph is the workflow's order, index, parents, children and typed
	// ai-processor settings, worked out when it was parsed: nodes are
	// found by id through its index (wf.Node scans the list), and the
	// schedule keeps its counts in slices by position.
	graph *workflow.Graph

	askTimeout time.Duration
	transport  transport
	crew       *crew // the asks of the agents hosted here; its transport is set when the run opens it
	// ps is the pubsub transport, when the execution has one; placement
	// is where its agents are hosted, nil when all are in the server.
	ps            *pubsubTransport
	placement     *placement
	wantPlacement string // Options.Placement
	guard         guardHandle
	reused        map[string]any          // node → output taken over from the resumed execution
	redact        *workflow.Redactor      // masks secret values in everything recorded or shown; nil: no secrets
	secretIn      map[string]bool         // names of secret variables, masked in the inputs whatever their length
	cancel        context.CancelCauseFunc // ends the whole execution (budget overrun)

	kept *keptRecord // what the run records, for Run.Record; nil unless Options.KeepRecord
	room *waitRoom   // what it waits for: people's answers, a budget approval (waiting.go)

	waits waitRoom // where room points: no allocation of its own

	agents    []agent          // by node position; set for ai-processor nodes (agentOf)
	mcp       *mcpLists        // the MCP servers its agents reach, and their tools for this execution
	emitAgent func(agentEvent) // x.onAgentEvent, made once for every agent

	promptMu sync.Mutex
	prompts  map[string]string // node → the static part of its system prompt (prompt.go)

	mu         sync.Mutex
	vars       map[string]any
	outputs    map[string]any
	shared     map[string]any
	broadcasts []broadcast
	states     map[string]*workflow.NodeState
	usage      workflow.Usage
	cost       workflow.Cost
	late       map[string]bool   // nodes whose calls changed their state after they ended (noteLate)
	routes     map[string]string // node → the branch its condition took, or routeStop (branch.go)

}

// broadcast is one broadcast of an execution, kept for the system prompts
// of the nodes it reached; the server sends the list to the workers that
// host its agents as JSON (teamprompt.go).
type broadcast struct {
	From    string   `json:"from"`
	Message string   `json:"message"`
	Types   []string `json:"types,omitempty"`
}

func newExecution(e *Executor, wf *workflow.Workflow, rec *workflow.Execution, g *workflow.Graph, ctx context.Context) *execution {
	x := &execution{
		e: e, wf: wf, rec: rec, graph: g, ctx: ctx,
		logger:     e.logger.With("execution_id", rec.ID, "workflow_id", wf.ID),
		askTimeout: wf.MetaSeconds("ask_timeout_seconds", e.cfg.AskTimeout),
		guard:      newGuard(limitsFor(wf, e.cfg.Limits)),
		redact:     workflow.NewRedactor(wf.Secrets(rec.Inputs)),
		secretIn:   wf.SecretNames(),
		vars:       map[string]any{},
		outputs:    make(map[string]any, len(wf.Nodes)),
		shared:     map[string]any{},
		states:     make(map[string]*workflow.NodeState, len(wf.Nodes)),
	}
	for _, v := range wf.Variables {
		x.vars[v.Name] = v.Value
	}
	for k, v := range rec.Inputs {
		x.vars[k] = v
	}
	x.emitAgent = x.onAgentEvent
	x.mcp = newMCPLists(e.mcp, e.cfg.MCP, wf, x.vars, wf.Secrets(rec.Inputs))
	x.crew = &crew{wf: wf, graph: g, guard: x.guard, askTimeout: x.askTimeout, comm: x.comm, log: x.log,
		mode: func() string { return x.rec.Mode }, tel: e.tel}
	if m := e.tel.metrics(); m != nil {
		x.crew.counted = func(_, via, outcome string) { m.Ask(askTransport(via), outcome) }
	}
	x.agents = make([]agent, len(wf.Nodes))
	// The states and their zero costs are made in one piece each, not
	// one allocation per node: every execution pays for them.
	states := make([]workflow.NodeState, len(wf.Nodes))
	zeros := make([]float64, len(wf.Nodes))
	for i := range wf.Nodes {
		n := &wf.Nodes[i]
		states[i] = workflow.NodeState{NodeID: n.ID, Type: n.Type, Name: n.Label(), Status: workflow.NodePending,
			CostUSD: &zeros[i]} // until a model call costs something, or has no price
		x.states[n.ID] = &states[i]
		if n.Type == workflow.NodeAIProcessor || n.Type == workflow.NodeHuman {
			x.agents[i] = x.newAgent(n)
		}
	}
	x.initWaiting()
	return x
}

// node returns the node with the given id, or nil.
func (x *execution) node(id string) *workflow.Node {
	if i, ok := x.graph.Index[id]; ok {
		return &x.wf.Nodes[i]
	}
	return nil
}

// aiOf returns the ai-processor settings of n, a node of this execution's
// workflow, from those its graph read once (shared by every execution of
// the parsed workflow, so never changed).
func (x *execution) aiOf(n *workflow.Node) *workflow.AIConfig {
	if i, ok := x.graph.Index[n.ID]; ok && &x.wf.Nodes[i] == n {
		return &x.graph.AI[i]
	}
	cfg := n.AI()
	return &cfg
}

// agentOf returns n, an ai-processor node of this execution's workflow, as
// an agent. The agents are made once per execution, all in one slice; a
// node that is not the workflow's own (never the case in a run) gets one
// of its own.
func (x *execution) agentOf(n *workflow.Node) *agent {
	if i, ok := x.graph.Index[n.ID]; ok && &x.wf.Nodes[i] == n {
		return &x.agents[i]
	}
	a := x.newAgent(n)
	return &a
}

func (x *execution) newAgent(n *workflow.Node) agent {
	return agent{node: n, cfg: x.aiOf(n), wf: x.wf, graph: x.graph, model: x.e.model, guard: x.guard,
		emit: x.emitAgent, team: x, redact: x.redact, maxRounds: x.e.cfg.MaxRounds, defaultToolMode: x.e.cfg.ToolMode,
		http: x.e.cfg.HTTP, mcp: x.mcp, tel: x.e.tel}
}

// newEvent starts an event of this execution; the caller sets its payload
// and sends it. The events of every node go this way: an event handed by
// pointer to a fill function (event, emit) escapes to the heap, which cost
// an allocation per event, five per node.
func (x *execution) newEvent(kind workflow.EventKind) workflow.Event {
	return workflow.Event{ExecutionID: x.rec.ID, Seq: x.seq.Add(1), Time: time.Now().UTC(), Kind: kind}
}

// event builds an event of this execution; fill sets its payload.
func (x *execution) event(kind workflow.EventKind, fill func(*workflow.Event)) workflow.Event {
	ev := x.newEvent(kind)
	fill(&ev)
	return ev
}

// emit records an event (grouped with others by the recorder) and shows it
// to live subscribers.
func (x *execution) emit(kind workflow.EventKind, fill func(*workflow.Event)) {
	x.send(x.event(kind, fill))
}

// send records ev (grouped with others by the recorder) unless it is a
// delta, and shows it to live subscribers.
func (x *execution) send(ev workflow.Event) {
	ev = x.redactEvent(ev)
	if ev.Kind != workflow.EventDelta {
		x.e.rec.Enqueue(ev)
		if x.kept != nil {
			x.kept.add(ev)
		}
	}
	x.e.hub.publish(ev)
}

func (x *execution) log(level slog.Level, node, format string, args ...any) {
	x.logText(level, node, fmt.Sprintf(format, args...))
}

// logText is log with the message already written: the lines every node
// logs are built by concatenation, which allocates once, where Sprintf
// also boxed each argument.
func (x *execution) logText(level slog.Level, node, msg string) {
	x.logAs(level, level, node, msg)
}

// logRoutine records an info line of the execution's log that the
// process log shows only at debug level: each node's start and end. A
// server running many executions would otherwise spend its log (and the
// formatting of two lines per node) on what every execution's record and
// the dashboard show anyway; the lines that matter to an operator (the
// mode, fallbacks, failures, refused asks, the end of the execution) stay
// at info and above.
func (x *execution) logRoutine(node, msg string) {
	x.logAs(slog.LevelInfo, slog.LevelDebug, node, msg)
}

// logAs records msg at level in the execution's log and writes it to the
// process log at processLevel.
func (x *execution) logAs(level, processLevel slog.Level, node, msg string) {
	msg = x.redact.String(msg)
	if node != "" {
		x.logger.LogAttrs(context.Background(), processLevel, msg, slog.String("node_id", node))
	} else {
		x.logger.LogAttrs(context.Background(), processLevel, msg)
	}
	ev := x.newEvent(workflow.EventLog)
	ev.Log = &workflow.LogEntry{Time: ev.Time, Level: levelName(level), Message: msg, NodeID: node}
	x.send(ev)
}

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

func (x *execution) fail(node string, code workflow.Code, msg string) {
	ev := x.newEvent(workflow.EventError)
	ev.Error = &workflow.ErrorEntry{Time: ev.Time, NodeID: node, Code: code, Message: msg}
	x.send(ev)
}

func (x *execution) setHeader(change func(h *workflow.Execution)) {
	change(x.rec)
	ev := x.newEvent(workflow.EventExecution)
	ev.Execution = x.rec.Header()
	x.send(ev)
}

// nodeState changes a node's state under the lock and emits a copy.
func (x *execution) nodeState(id string, change func(s *workflow.NodeState)) {
	x.mu.Lock()
	s := x.states[id]
	change(s)
	cp := *s
	x.mu.Unlock()
	ev := x.newEvent(workflow.EventNode)
	ev.Node = &cp
	x.send(ev)
}

// run executes the workflow and returns the final status. It always ends the
// execution's record and its transport, whatever way it ends.
func (x *execution) run() (status string, err error) {
	deadline := x.wf.MetaSeconds("timeout_seconds", 0)
	ctx := x.ctx
	if deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, deadline, fmt.Errorf("execution deadline of %s passed", deadline))
		defer cancel()
	}
	start := time.Now().UTC()
	x.setHeader(func(h *workflow.Execution) {
		h.Status = workflow.ExecRunning
		h.StartTime = &start
		x.room.keepWaiting(h)
	})
	x.log(slog.LevelInfo, "", "Using communication mode: %s", x.rec.RequestedMode)
	if x.rec.ResumedFrom != "" && x.room.reentered == nil {
		x.recordTakenOver()
	}

	x.transport = x.openTransport(ctx)
	x.crew.transport = x.transport
	status, reason := x.schedule(ctx)
	if x.placement != nil {
		x.placement.end()
	}
	// The transport closes after every node has stopped, whatever way the
	// run ended, so no agent outlives its execution.
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	if err := x.transport.close(closeCtx); err != nil {
		x.log(slog.LevelWarn, "", "closing the %s transport: %v", x.rec.Mode, err)
	}
	cancelClose()

	end := time.Now().UTC()
	x.recordLate()
	x.mu.Lock()
	usage := x.usage
	x.mu.Unlock()
	cost := x.costSoFar()
	x.log(slog.LevelInfo, "", "Execution finished with status %s in %s", status, end.Sub(start).Round(time.Millisecond))
	x.setHeader(func(h *workflow.Execution) {
		h.Status, h.EndTime, h.Error, h.Usage = status, &end, reason, usage
		h.CostUSD, h.CostEstimated, h.CostNote = cost.USD(), cost.Estimated, cost.Unknown
		x.room.ended(h)
	})
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelFlush()
	err = x.e.rec.Flush(flushCtx)
	if err != nil {
		x.logger.Error("recording execution failed", "err", err)
		err = fmt.Errorf("record execution %s: %w", x.rec.ID, err)
	}
	x.e.hub.end(x.rec.ID)
	return status, err
}

// scheduler is the state of one execution's schedule: which nodes wait for
// how many parents, which cannot run and why, how many run. Nodes are
// known by their position in the workflow's node list.
type scheduler struct {
	x   *execution
	ctx context.Context

	mu        sync.Mutex
	children  [][]int  // by position: the children, in the execution's order (the graph's; read only)
	waiting   []int    // by position: parents not yet settled
	blocked   []string // by position: the parent that did not complete
	running   int
	failed    []string
	cancelled bool
	done      chan struct{} // closed when no node runs any more
	br        *branching    // conditions' and filters' branches; nil when the workflow has none (branch.go)
}

// schedule runs every node once its parents have completed, many at a time,
// and returns the execution's final status and, when not success, why.
//
// The goroutine that ran a node settles its children itself and goes on
// with the first child that became ready; only further ready children get
// goroutines of their own. A chain of nodes is thus run by one goroutine,
// not by a goroutine per node handing over to a scheduling goroutine and
// back, which cost more than the node's own work with a fast model
// (a thread wake-up and a new stack every time). Independent branches
// still run at the same time.
func (x *execution) schedule(ctx context.Context) (string, string) {
	n := len(x.wf.Nodes)
	g := x.graph
	s := &scheduler{x: x, ctx: ctx, children: g.Children, waiting: make([]int, n),
		blocked: make([]string, n), done: make(chan struct{}), br: x.branches()}
	var roots []int
	for _, i := range g.Order {
		s.waiting[i] = len(g.Parents[i])
		if s.waiting[i] == 0 {
			roots = append(roots, i)
		}
	}
	s.running = len(roots)
	if len(roots) == 0 {
		close(s.done)
	}
	// The first root runs in this goroutine, which would only wait.
	for _, i := range roots[min(1, len(roots)):] {
		go s.run(i)
	}
	if len(roots) > 0 {
		s.run(roots[0])
	}
	<-s.done
	failed, cancelled := s.failed, s.cancelled

	// Nodes never reached (a parent was cancelled) stay visible as cancelled.
	for _, i := range g.Order {
		id := x.wf.Nodes[i].ID
		x.mu.Lock()
		pending := x.states[id].Status == workflow.NodePending && !suspended(ctx)
		x.mu.Unlock()
		if pending {
			x.nodeState(id, func(s *workflow.NodeState) { s.Status = workflow.NodeCancelled })
		}
	}
	if cause := context.Cause(ctx); ctx.Err() != nil || cancelled {
		switch {
		case errors.Is(cause, errSuspended):
			return workflow.ExecWaiting, ""
		case errors.Is(cause, errStopped):
			x.fail("", workflow.CodeCancelled, "execution "+cause.Error())
			return workflow.ExecCancelled, cause.Error()
		case errors.Is(cause, errShutdown):
			return workflow.ExecInterrupted, "interrupted: " + errShutdown.Error()
		case errors.Is(cause, errBudget):
			x.mu.Lock()
			used := x.usage.TotalTokens
			x.mu.Unlock()
			msg := fmt.Sprintf("budget_exceeded: the execution used %d tokens, over its token_budget of %d", used, x.guard.limits().TokenBudget)
			if m, ok := x.overUSD(); ok {
				msg = m
			}
			x.fail("", workflow.CodeBudget, msg)
			return workflow.ExecError, msg
		case errors.Is(cause, errCancelled):
			x.fail("", workflow.CodeCancelled, "execution cancelled by request")
			return workflow.ExecCancelled, "cancelled by request"
		case cause != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
			x.fail("", workflow.CodeTimeout, cause.Error())
			return workflow.ExecError, cause.Error()
		}
	}
	if len(failed) > 0 {
		x.mu.Lock()
		msg := x.states[failed[0]].Error
		x.mu.Unlock()
		return workflow.ExecError, fmt.Sprintf("node %q failed: %s", failed[0], msg)
	}
	return workflow.ExecSuccess, ""
}

// run runs node i, then each ready child handed to it, until none is.
func (s *scheduler) run(i int) {
	for i >= 0 {
		i = s.finished(i, s.x.observeNode(s.ctx, s.x.wf.Nodes[i].ID))
	}
}

// finished settles the children of node i, which ended with status: a
// child whose last parent this was runs (the first one next in the calling
// goroutine, which finished returns; the others in goroutines of their
// own), or is skipped or cancelled when a parent did not complete. It
// returns -1 when no child is to run next.
func (s *scheduler) finished(i int, status string) (next int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.x.wf.Nodes[i].ID
	s.running--
	switch status {
	case workflow.NodeCompleted:
	case workflow.NodeCancelled:
		s.cancelled = true
	default:
		s.failed = append(s.failed, id)
	}
	next = -1
	for k, c := range s.children[i] {
		if status != workflow.NodeCompleted && s.blocked[c] == "" {
			s.blocked[c] = id
		}
		if s.br != nil {
			s.settleEdge(i, k, c, status)
		}
		if s.waiting[c]--; s.waiting[c] > 0 {
			continue
		}
		switch {
		case s.blocked[c] != "":
			s.skip(c, s.blocked[c])
		case s.br != nil && !s.br.live[c]:
			s.skipBranch(c) // queues in s.br.ready what another branch still reaches
		case s.ctx.Err() != nil:
			s.x.nodeState(s.x.wf.Nodes[c].ID, func(st *workflow.NodeState) { st.Status = workflow.NodeCancelled })
		default:
			s.running++
			if next < 0 {
				next = c
			} else {
				go s.run(c)
			}
		}
	}
	if s.br != nil {
		for _, c := range s.br.ready {
			s.running++
			if next < 0 {
				next = c
			} else {
				go s.run(c)
			}
		}
		s.br.ready = s.br.ready[:0]
	}
	if s.running == 0 {
		close(s.done)
	}
	return next
}

// skip settles node i, which cannot run because a parent did not complete:
// skipped after a failure, cancelled after a cancellation. s.mu is held.
func (s *scheduler) skip(i int, because string) {
	ctx := s.ctx
	s.x.nodeState(s.x.wf.Nodes[i].ID, func(st *workflow.NodeState) {
		if ctx.Err() != nil {
			st.Status = workflow.NodeCancelled
			st.Error = "cancelled: " + context.Cause(ctx).Error()
			return
		}
		st.Status = workflow.NodeSkipped
		st.Error = fmt.Sprintf("skipped: node %q did not complete", because)
	})
	for _, c := range s.children[i] {
		if s.blocked[c] == "" {
			s.blocked[c] = because
		}
		if s.waiting[c]--; s.waiting[c] == 0 {
			s.skip(c, s.blocked[c])
		}
	}
}

// nodeTimeout is the cause of a node's deadline; its message is only
// formatted when the deadline passes.
type nodeTimeout struct {
	node    string
	timeout time.Duration
}

func (e nodeTimeout) Error() string {
	return fmt.Sprintf("node %q timed out after %s", e.node, e.timeout)
}

// runNode runs one node to an end state and returns that state.
func (x *execution) runNode(ctx context.Context, id string) string {
	if x.room.rejoined(id) {
		return workflow.NodeCompleted
	}
	node := x.node(id)
	start := time.Now().UTC()
	x.nodeState(id, func(s *workflow.NodeState) { s.Status = workflow.NodeRunning; s.StartedAt = &start })
	x.logRoutine(id, "Node "+id+" ("+node.Type+") started")

	// Only a model can take long: start and end nodes get no timer.
	nctx := ctx
	if node.Type == workflow.NodeAIProcessor {
		timeout := x.e.cfg.NodeTimeout
		if t := x.aiOf(node).Timeout; t > 0 {
			timeout = t
		}
		var cancel context.CancelFunc
		nctx, cancel = x.nodeDeadline(ctx, timeout, nodeTimeout{id, timeout})
		defer cancel()
	}

	var output any
	var err error
	if out, ok := x.reused[id]; ok {
		end := time.Now().UTC()
		x.mu.Lock()
		x.outputs[id] = out
		x.mu.Unlock()
		x.nodeState(id, func(s *workflow.NodeState) {
			s.Status, s.Output, s.FinishedAt = workflow.NodeCompleted, out, &end
		})
		x.log(slog.LevelInfo, id, "Node %s reused its output from execution %s (not run again)", id, x.rec.ResumedFrom)
		return workflow.NodeCompleted
	}
	switch node.Type {
	case workflow.NodeStart:
		x.mu.Lock()
		vars := make(map[string]any, len(x.vars))
		for k, v := range x.vars {
			vars[k] = v
		}
		x.mu.Unlock()
		output = vars
	case workflow.NodeEnd:
		output = x.endOutput(id)
	case workflow.NodeAIProcessor:
		output, err = x.runAI(nctx, node)
	case workflow.NodeHTTP, workflow.NodeWebhook, workflow.NodeCondition, workflow.NodeFilter,
		workflow.NodeTransformer, workflow.NodeDelay, workflow.NodeEmail:
		output, err = x.runAction(ctx, node) // in this process, never on a worker (actions.go)
	case workflow.NodeHuman:
		output, err = x.runHuman(ctx, node)
	default:
		err = workflow.Errorf(workflow.CodeInvalid, "node type %q cannot run", node.Type)
	}
	end := time.Now().UTC()
	status := workflow.NodeCompleted
	if err != nil {
		status = workflow.NodeError
		code := workflow.ErrorCode(err)
		msg := err.Error()
		switch {
		case ctx.Err() != nil:
			// The whole execution was cancelled or shut down.
			status = workflow.NodeCancelled
			msg = "cancelled: " + context.Cause(ctx).Error()
		case nctx.Err() != nil:
			code, msg = workflow.CodeTimeout, context.Cause(nctx).Error()
		}
		x.nodeState(id, func(s *workflow.NodeState) { s.Status, s.Error, s.FinishedAt = status, msg, &end })
		if status == workflow.NodeError {
			x.fail(id, code, msg)
			x.log(slog.LevelError, id, "Node %s failed: %s", id, msg)
		} else {
			x.log(slog.LevelWarn, id, "Node %s %s", id, msg)
		}
		return status
	}
	x.mu.Lock()
	x.outputs[id] = output
	x.mu.Unlock()
	x.nodeState(id, func(s *workflow.NodeState) { s.Status, s.Output, s.FinishedAt = status, output, &end })
	x.mu.Lock()
	toolMode := x.states[id].ToolMode
	x.mu.Unlock()
	msg := "Node " + id + " completed in " + end.Sub(start).Round(time.Millisecond).String()
	if toolMode != "" {
		msg += " (tool_mode " + toolMode + ")"
	}
	x.logRoutine(id, msg)
	return status
}

// endOutput collects what flows into an end node: its parent's output, or a
// map of them when there are several.
func (x *execution) endOutput(id string) any {
	parents := x.graph.Parents[x.graph.Index[id]]
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(parents) == 1 {
		return x.outputs[x.wf.Nodes[parents[0]].ID]
	}
	out := make(map[string]any, len(parents))
	for _, p := range parents {
		pid := x.wf.Nodes[p].ID
		if v, ok := x.outputs[pid]; ok { // a skipped branch has none
			out[pid] = v
		}
	}
	return out
}
