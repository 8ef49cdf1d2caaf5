package executor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/tools"
	"github.com/switchboard-dev/switchboard/workflow"
)

// WorkerConfig configures a Worker. Zero fields take the defaults.
type WorkerConfig struct {
	Name        string        // unique among the workers sharing the Redis; required
	Host        string        // shown on the dashboard; the host name when empty
	Concurrency int           // nodes run at once; 16 when <= 0
	Lease       time.Duration // a task's lease; bus.DefaultLease when <= 0
	Heartbeat   time.Duration // registration renewal; bus.DefaultHeartbeat when <= 0
	MaxRounds   int           // follow-up turns per conversation when the server does not say; 3
	// HTTP is how the http_request tool of the agents it hosts reaches the
	// web. The server's settings do not travel: give the worker the same.
	HTTP HTTPConfig
	// MCP is the MCP servers its agents may reach, and how: give it the
	// server's file and leave.
	MCP    MCPConfig
	Logger *slog.Logger
	// Telemetry is where the worker's traces go: the spans of the agents it
	// hosts join the traces of the server's executions. Its metrics are the
	// worker's own (the server counts the executions' model calls and
	// asks); the zero value sends none.
	Telemetry Telemetry
}

// Worker hosts the agents of executions that a server coordinates, and runs
// their nodes. It has no database: what its agents do travels back to the
// server over Redis (see remote.go), and the server's loop guards decide
// on every ask and model call. The agents are the same values as in the
// server, with a guard handle and a team that reach the server.
type Worker struct {
	cfg    WorkerConfig
	rdb    redis.UniversalClient
	ps     PubSub
	model  LLM
	logger *slog.Logger
	mcp    *tools.MCP // the MCP sessions of the agents it hosts, closed when Run returns
	tel    *telemetry // the spans of the agents it hosts
	self   string     // the worker's agent id: the server's replies to its queries come to its channel
	queue  *bus.TaskQueue
	cons   *bus.Consumer
	slots  chan struct{}

	outbox  chan outgoing // task_responses to send, in order (sendOutbox)
	stopped chan struct{} // closed when Run returns: the outbox sends what it holds and stops

	mu      sync.Mutex
	reg     *bus.Registration
	hosted  map[string]*hostedExec // by execution id
	results map[string]*bus.TaskQueue
	inUse   int
	wg      sync.WaitGroup
}

// NewWorker returns a worker that talks through ps and rdb (the same
// Redis) and calls model. Run starts it.
func NewWorker(rdb redis.UniversalClient, ps PubSub, model LLM, cfg WorkerConfig) (*Worker, error) {
	if cfg.Name == "" {
		return nil, errors.New("a worker needs a name")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Lease <= 0 {
		cfg.Lease = bus.DefaultLease
	}
	if cfg.MaxRounds <= 0 {
		cfg.MaxRounds = 3
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	q := bus.NewTaskQueue(rdb, bus.QueueOptions{Stream: bus.WorkerTasksStream(cfg.Name), Lease: cfg.Lease})
	return &Worker{
		cfg: cfg, rdb: rdb, ps: ps, model: model, logger: cfg.Logger.With("worker", cfg.Name), mcp: newMCP(cfg.MCP, cfg.HTTP, cfg.Logger),
		self: workerAgentID(cfg.Name), tel: newTelemetry(cfg.Telemetry), queue: q, cons: q.Consumer(cfg.Name),
		slots:  make(chan struct{}, cfg.Concurrency),
		outbox: make(chan outgoing, 1024), stopped: make(chan struct{}),
		hosted: map[string]*hostedExec{}, results: map[string]*bus.TaskQueue{},
	}, nil
}

// Registration returns the worker's registry entry as last written, for
// its health endpoint; ok is false while it is not registered.
func (w *Worker) Registration() (info bus.Worker, ok bool) {
	w.mu.Lock()
	reg := w.reg
	w.mu.Unlock()
	if reg == nil {
		return bus.Worker{}, false
	}
	return reg.Info(), true
}

// Run registers the worker and serves tasks until ctx ends; then it stops
// its nodes, releases its agents and deregisters. When Redis is lost long
// enough for the registration to lapse, the worker drops what it hosted
// (the server places it again) and registers anew once Redis is back.
func (w *Worker) Run(ctx context.Context) error {
	sub, err := w.subscribeSelf(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = sub.Close(cctx)
	}()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		w.sendOutbox()
	}()
	defer func() {
		close(w.stopped)
		<-sent
	}()
	w.wg.Add(3)
	go func() {
		defer w.wg.Done()
		_ = w.cons.KeepAlive(ctx, func(err error) { w.logger.Warn("renewing task leases failed", "err", err) })
	}()
	go func() {
		defer w.wg.Done()
		w.watchServers(ctx)
	}()
	go func() {
		defer w.wg.Done()
		w.serve(ctx)
	}()
	err = w.register(ctx)
	w.releaseAll("the worker is stopping")
	w.wg.Wait()
	if cerr := w.mcp.Close(); cerr != nil {
		w.logger.Warn("closing MCP sessions", "err", cerr)
	}
	return err
}

// subscribeSelf subscribes the worker's own channel, where the server's
// replies to its queries arrive (the bus hands them to the waiting query
// before any handler sees them). Anything else sent there is logged.
func (w *Worker) subscribeSelf(ctx context.Context) (bus.Subscription, error) {
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sub, err := w.ps.Subscribe(sctx, bus.Channel(w.self), func(_ context.Context, m bus.Message) {
			if m.Type == bus.TypeNotification && m.Question() == noteBroadcasts {
				w.onBroadcasts(m)
				return
			}
			w.logger.Warn("ignored a message on the worker's channel", "channel", bus.Channel(w.self), "id", m.ID, "type", m.Type, "from_agent", m.FromAgent)
		})
		cancel()
		if err == nil {
			return sub, nil
		}
		w.logger.Warn("subscribing the worker's channel failed; retrying", "err", err)
		if err := sleepCtx(ctx, time.Second); err != nil {
			return bus.Subscription{}, fmt.Errorf("subscribe worker %s: %w", w.cfg.Name, err)
		}
	}
}

// register keeps the worker registered until ctx ends.
func (w *Worker) register(ctx context.Context) error {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		reg, err := bus.Register(rctx, w.rdb, bus.Worker{Name: w.cfg.Name, Host: w.cfg.Host, PID: os.Getpid(), Capacity: w.cfg.Concurrency},
			bus.HeartbeatOptions{Interval: w.cfg.Heartbeat, OnError: func(err error) { w.logger.Warn("heartbeat failed", "err", err) }})
		cancel()
		if err != nil {
			if errors.Is(err, bus.ErrWorkerNameTaken) {
				return err
			}
			w.logger.Warn("registering failed; retrying", "err", err)
			_ = sleepCtx(ctx, time.Second)
			continue
		}
		w.mu.Lock()
		w.reg = reg
		w.mu.Unlock()
		w.updateRegistration()
		w.logger.Info("worker registered", "capacity", w.cfg.Concurrency, "tasks", w.queue.Stream())
		err = reg.Run(ctx)
		w.mu.Lock()
		w.reg = nil
		w.mu.Unlock()
		if err == nil || ctx.Err() != nil {
			return nil
		}
		// The registration lapsed: the server may already have placed this
		// worker's agents elsewhere, so they stop here.
		w.logger.Warn("the worker's registration was lost; dropping its agents and registering again", "err", err)
		w.releaseAll("the worker's registration was lost")
	}
	return nil
}

// serve reads the worker's task stream until ctx ends.
func (w *Worker) serve(ctx context.Context) {
	for ctx.Err() == nil {
		// Only new entries: what this worker holds it renews, and what a
		// previous process of the same name left is the server's to place
		// again once its lease lapses.
		tasks, err := w.cons.Read(ctx, 32)
		if err != nil && ctx.Err() == nil {
			w.logger.Warn("reading tasks failed", "err", err)
			_ = sleepCtx(ctx, 200*time.Millisecond)
		}
		for _, t := range tasks {
			w.take(ctx, t)
		}
	}
}

// take handles one task_request.
func (w *Worker) take(ctx context.Context, t bus.Task) {
	var p taskPayload
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		w.logger.Warn("dropped a task that cannot be read", "entry", t.ID, "execution_id", t.ExecutionID, "err", err)
		w.ack(ctx, t)
		return
	}
	switch p.Op {
	case opHost:
		// Hosting waits for Redis to confirm each subscription: hosts run
		// at the same time, so a burst of executions is not confirmed one
		// after the other. A run of an agent waits for its host (ready).
		he, err := w.hostedFor(ctx, t, p)
		if err != nil {
			w.hostDone(ctx, t, p, err)
			return
		}
		ready := he.expect(p.Agents)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer close(ready)
			w.hostDone(ctx, t, p, he.add(ctx, t, p))
		}()
	case opRun:
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.run(ctx, t, p)
		}()
	case opRelease:
		if len(p.Agents) > 0 {
			w.releaseAgents(t.ExecutionID, p.Agents)
		} else {
			w.release(t.ExecutionID, "the execution ended", true)
		}
		w.ack(ctx, t)
	default:
		w.logger.Warn("dropped a task of an unknown op", "entry", t.ID, "op", p.Op)
		w.ack(ctx, t)
	}
}

func (w *Worker) ack(ctx context.Context, t bus.Task) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.cons.Ack(actx, t.ID); err != nil && !errors.Is(err, bus.ErrNotPending) {
		w.logger.Warn("ack failed", "entry", t.ID, "err", err)
	}
}

// hostedExec is what a worker holds for one execution: the agents it
// hosts and their subscriptions. Its context ends when the execution is
// released or the host task's lease is lost.
type hostedExec struct {
	w       *Worker
	id      string
	server  string // the server's agent id
	wf      *workflow.Workflow
	graph   *workflow.Graph
	limits  Limits
	crew    *crew
	desk    *desk
	results *bus.TaskQueue
	ctx     context.Context
	cancel  context.CancelCauseFunc

	newAgent func(i int) agent // the agent of the node at position i, without its emit

	mu       sync.Mutex
	released bool                     // the execution was released here: nothing more is hosted for it
	done     bool                     // released for good (by the server, or the server is gone): its tasks are acked
	ready    map[string]chan struct{} // node id → closed once its host task is done
	agents   map[string]*hostedAgent  // by node id
	entries  []string                 // host task entries, acked when released
	holds    []func()
	// broadcasts are the execution's, as the server last sent them, and
	// prompts the static part of each hosted node's system prompt (see
	// teamprompt.go).
	broadcasts []broadcast
	prompts    map[string]string
	// calls are the model calls the server granted ahead and the agents
	// here have not made yet (see callGrant); busy counts the node runs
	// of the execution under way here (working).
	calls int
	busy  int
}

// hostedAgent is one agent hosted here, with the attempt it is hosted
// under: its events carry it, so the server can drop those of a host it
// has replaced.
type hostedAgent struct {
	agent   agent
	attempt atomic.Int64 // raised by a run of a later attempt, read by emit
	sub     bus.Subscription
}

// hostDone tells the server whether the agents of a host task are hosted
// (err nil: subscribed, see add). The task stays pending (its lease
// renewed) while the agents are hosted, so that if this worker dies the
// server sees the lease lapse and places them again; a failed one is
// acked.
func (w *Worker) hostDone(ctx context.Context, t bus.Task, p taskPayload, err error) {
	res := resultPayload{Op: opHosted, Worker: w.cfg.Name}
	if err != nil {
		w.logger.Warn("hosting agents failed", "execution_id", t.ExecutionID, "agents", p.Agents, "err", err)
		res.Error = &remoteError{Message: err.Error()}
	}
	if serr := w.send(ctx, p.Server, bus.Task{ExecutionID: t.ExecutionID, NodeID: allNodes, Attempt: t.Attempt}, res); serr != nil {
		w.logger.Warn("telling the server the agents are hosted failed", "execution_id", t.ExecutionID, "err", serr)
	}
	if err != nil {
		w.ack(ctx, t)
	}
}

// hostedFor returns the execution's hosted state, made from the host task
// the first time.
func (w *Worker) hostedFor(ctx context.Context, t bus.Task, p taskPayload) (*hostedExec, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if he, ok := w.hosted[t.ExecutionID]; ok {
		return he, nil
	}
	wf, err := workflow.Parse(p.Workflow)
	if err != nil {
		return nil, fmt.Errorf("read the workflow of execution %s: %w", t.ExecutionID, err)
	}
	g := wf.Graph()
	limits := Limits{}.withDefaults()
	if p.Limits != nil {
		limits = *p.Limits
	}
	askTimeout := time.Duration(p.AskTimeoutMS) * time.Millisecond
	if askTimeout <= 0 {
		askTimeout = 30 * time.Second
	}
	results, ok := w.results[p.Server]
	if !ok {
		results = bus.NewTaskQueue(w.rdb, bus.QueueOptions{Stream: bus.ServerResultsStream(p.Server), Group: bus.ResultsGroup})
		w.results[p.Server] = results
	}
	hctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	he := &hostedExec{w: w, id: t.ExecutionID, server: p.Server, wf: wf, graph: g, limits: limits, results: results,
		ctx: hctx, cancel: cancel, agents: map[string]*hostedAgent{}}
	redact := workflow.NewRedactor(p.Secrets)
	guard := &remoteGuard{he: he}
	he.crew = &crew{wf: wf, graph: g, guard: guard, askTimeout: askTimeout,
		transport: &workerTransport{ps: w.ps, execID: he.id, wfID: wf.ID},
		mode:      func() string { return workflow.ModePubSub }, comm: he.comm, log: he.log, tel: w.tel,
		// The server counts the asks of every execution it coordinates.
		counted: func(from, _, outcome string) {
			he.event(from, he.attemptOf(from), remoteEvent{Kind: "ask", Text: outcome})
		}}
	he.desk = newDesk(he.id, wf, w.ps, askTimeout, he.comm, w.logger.With("execution_id", he.id))
	he.desk.tel = w.tel
	maxRounds := p.MaxRounds
	if maxRounds <= 0 {
		maxRounds = w.cfg.MaxRounds
	}
	for _, id := range p.Agents {
		i, ok := g.Index[id]
		if !ok || wf.Nodes[i].Type != workflow.NodeAIProcessor {
			cancel(nil)
			return nil, fmt.Errorf("execution %s has no ai-processor node %q", t.ExecutionID, id)
		}
	}
	mcpLists := newMCPLists(w.mcp, w.cfg.MCP, wf, p.MCPVars, p.Secrets)
	he.newAgent = func(i int) agent {
		return agent{node: &wf.Nodes[i], cfg: &g.AI[i], wf: wf, graph: g, model: w.model, guard: guard,
			team: remoteTeam{he}, redact: redact, maxRounds: maxRounds, defaultToolMode: p.ToolMode,
			http: w.cfg.HTTP, mcp: mcpLists, tel: w.tel}
	}
	w.hosted[t.ExecutionID] = he
	return he, nil
}

// expect notes that a host task for nodes is under way, and returns the
// channel to close when it is done.
func (he *hostedExec) expect(nodes []string) chan struct{} {
	ch := make(chan struct{})
	he.mu.Lock()
	defer he.mu.Unlock()
	if he.ready == nil {
		he.ready = map[string]chan struct{}{}
	}
	for _, n := range nodes {
		he.ready[n] = ch
	}
	return ch
}

// agent returns the agent of node once its host task is done; nil when it
// is not hosted here.
func (he *hostedExec) agent(ctx context.Context, node string) *hostedAgent {
	he.mu.Lock()
	ready := he.ready[node]
	he.mu.Unlock()
	if ready != nil {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil
		}
	}
	he.mu.Lock()
	defer he.mu.Unlock()
	return he.agents[node]
}

// add subscribes the agents of a host task, each confirmed, and holds the
// task until the execution is released.
func (he *hostedExec) add(ctx context.Context, t bus.Task, p taskPayload) error {
	attempt := t.Attempt
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var added []*hostedAgent
	for _, id := range p.Agents {
		he.mu.Lock()
		old := he.agents[id]
		he.mu.Unlock()
		if old != nil {
			// Hosted here already: placed here again after a loss, its events
			// now carry the new attempt.
			raise(&old.attempt, attempt)
			continue
		}
		i := he.graph.Index[id]
		ha := &hostedAgent{agent: he.newAgent(i)}
		ha.attempt.Store(int64(attempt))
		ha.agent.emit = func(ev agentEvent) { he.emit(id, int(ha.attempt.Load()), ev) }
		sub, err := he.w.ps.Subscribe(sctx, bus.Channel(bus.AgentID(he.id, id)), he.desk.handler(&ha.agent))
		if err != nil {
			for _, a := range added {
				_ = a.sub.Close(sctx)
			}
			return fmt.Errorf("subscribe agent %s: %w", bus.AgentID(he.id, id), err)
		}
		ha.sub = sub
		added = append(added, ha)
	}
	he.mu.Lock()
	if he.released {
		// Released while subscribing (the release was read with the host):
		// nothing of it may stay.
		he.mu.Unlock()
		for _, a := range added {
			_ = a.sub.Close(sctx)
		}
		he.w.ack(ctx, t)
		return errors.New("the execution was released while its agents were being hosted")
	}
	hctx, release := he.w.cons.Hold(he.ctx, t)
	for _, a := range added {
		he.agents[a.agent.node.ID] = a
	}
	he.entries = append(he.entries, t.ID)
	he.holds = append(he.holds, release)
	he.mu.Unlock()
	// A lost lease means the server is placing these agents elsewhere.
	context.AfterFunc(hctx, func() {
		if cause := context.Cause(hctx); errors.Is(cause, bus.ErrTaskLost) {
			he.w.logger.Warn("lost the lease of hosted agents; dropping them", "execution_id", he.id, "agents", p.Agents, "err", cause)
			he.w.release(he.id, cause.Error(), false)
		}
	})
	he.w.updateRegistration()
	return nil
}

// run runs one node of a hosted execution and sends its result. The task
// is held from the moment it is read, so its lease is renewed while it
// waits for a slot and while it runs; it is acked once the result is on
// the server's stream. A lost lease cancels it: another attempt runs it.
func (w *Worker) run(ctx context.Context, t bus.Task, p taskPayload) {
	hctx, releaseHold := w.cons.Hold(ctx, t)
	defer releaseHold()
	w.mu.Lock()
	he := w.hosted[t.ExecutionID]
	w.mu.Unlock()
	attempt := t.Attempt
	res := resultPayload{Op: opResult, Worker: w.cfg.Name}
	var ha *hostedAgent
	if he != nil {
		ha = he.agent(he.ctx, t.NodeID)
	}
	if ha == nil {
		// The server places the agent again and sends the run there.
		res.Error = &remoteError{Code: codeNotHosted, Message: fmt.Sprintf("worker %s does not host agent %s of execution %s", w.cfg.Name, t.NodeID, t.ExecutionID)}
		w.reply(ctx, p.Server, t, attempt, res)
		return
	}
	// The run ends with the execution here (released) or with its lease.
	tctx, cancel := context.WithCancelCause(hctx)
	defer cancel(nil)
	stop := context.AfterFunc(he.ctx, func() { cancel(context.Cause(he.ctx)) })
	defer stop()
	select {
	case w.slots <- struct{}{}:
	case <-tctx.Done():
		w.runStopped(ctx, he, t, attempt, context.Cause(tctx))
		return
	}
	defer func() { <-w.slots }()
	w.setInUse(+1)
	defer w.setInUse(-1)
	if !p.Deadline.IsZero() {
		var cancel context.CancelFunc
		tctx, cancel = context.WithDeadline(tctx, p.Deadline)
		defer cancel()
	}
	raise(&ha.attempt, attempt)
	he.takeBroadcasts(p.Broadcasts)
	done := he.working(t.NodeID)
	// The node's span here is a child of the server's, whose context the
	// task carries.
	sctx, span := tctx, noSpan()
	if w.tel.tracing() {
		sctx, span = w.tel.start(w.tel.extractTrace(tctx, map[string]any{metaTraceParent: p.Trace}), "node "+t.NodeID, trace.SpanKindConsumer,
			attribute.String("switchboard.node.id", t.NodeID), attribute.String("switchboard.worker", w.cfg.Name), attribute.Int("switchboard.attempt", attempt))
	}
	out, err := ha.agent.converse(sctx, p.Messages, llm.PurposeTask, []string{t.NodeID}, true)
	endSpan(span, err)
	done()
	if cause := context.Cause(hctx); cause != nil || he.ctx.Err() != nil {
		w.runStopped(ctx, he, t, attempt, cmp.Or(cause, context.Cause(he.ctx)))
		return
	}
	if err != nil {
		res.Error = &remoteError{Code: workflow.ErrorCode(err), Message: err.Error()}
		if errors.Is(err, context.DeadlineExceeded) {
			res.Error.Code = workflow.CodeTimeout
		}
	} else {
		res.Output = out
	}
	w.reply(ctx, p.Server, t, attempt, res)
}

// runStopped ends a run that stopped before its end: another attempt runs
// the node now (its lease was lost), the execution is over (the server
// released it: the task is acked, nothing more is wanted of it), or this
// worker is stopping or lost its registration (the task stays pending, for
// the server to place again once its lease lapses).
func (w *Worker) runStopped(ctx context.Context, he *hostedExec, t bus.Task, attempt int, cause error) {
	w.logger.Info("stopped a node that is no longer this worker's", "execution_id", t.ExecutionID, "node_id", t.NodeID, "attempt", attempt, "cause", cause)
	he.mu.Lock()
	done := he.done
	he.mu.Unlock()
	if done && !errors.Is(cause, bus.ErrTaskLost) {
		w.ack(ctx, t)
	}
}

// raise sets a to attempt if that is higher.
func raise(a *atomic.Int64, attempt int) {
	for {
		cur := a.Load()
		if cur >= int64(attempt) || a.CompareAndSwap(cur, int64(attempt)) {
			return
		}
	}
}

// reply sends a node's result and acks its task once the result is on the
// server's stream. If sending fails the task stays pending, and after the
// lease the server runs the node again.
func (w *Worker) reply(ctx context.Context, server string, t bus.Task, attempt int, res resultPayload) {
	if err := w.send(ctx, server, bus.Task{ExecutionID: t.ExecutionID, NodeID: t.NodeID, Attempt: attempt}, res); err != nil {
		w.logger.Warn("sending a node's result failed", "execution_id", t.ExecutionID, "node_id", t.NodeID, "err", err)
		return
	}
	w.ack(ctx, t)
}

// send adds a task_response to the server's result stream, after every
// one posted before it, and waits until it is there.
func (w *Worker) send(ctx context.Context, server string, t bus.Task, res resultPayload) error {
	sent := w.post(server, t, res, true)
	select {
	case err := <-sent:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// outgoing is a task_response waiting in the worker's outbox.
type outgoing struct {
	server string
	task   bus.Task
	sent   chan error // gets the outcome
}

// post queues a task_response for the server's result stream without
// waiting: an agent's events do not hold up its conversation. The outbox
// sends in order, so a node's result, posted after its events, never
// overtakes them (the server ends the node, and maybe the execution, when
// its result arrives).
//
// sent is nil for a post nobody waits for: a failure to send it is logged.
func (w *Worker) post(server string, t bus.Task, res resultPayload, wait bool) (sent chan error) {
	if wait {
		sent = make(chan error, 1)
	}
	fail := func(err error) chan error {
		if sent != nil {
			sent <- err
		} else {
			w.logger.Warn("sending to the server failed", "execution_id", t.ExecutionID, "node_id", t.NodeID, "op", res.Op, "err", err)
		}
		return sent
	}
	payload, err := json.Marshal(res)
	if err != nil {
		return fail(fmt.Errorf("encode %s: %w", res.Op, err))
	}
	t.Kind, t.Payload = bus.TypeTaskResponse, payload
	select {
	case w.outbox <- outgoing{server: server, task: t, sent: sent}:
	case <-w.stopped:
		return fail(errors.New("the worker has stopped"))
	}
	return sent
}

// sendOutbox sends what post queued, in order, a pipeline of what has
// gathered at a time, until the outbox is closed.
func (w *Worker) sendOutbox() {
	batch := make([]outgoing, 0, 64)
	for {
		var first outgoing
		select {
		case first = <-w.outbox:
		case <-w.stopped:
			// What was posted before the stop still goes out.
			select {
			case first = <-w.outbox:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < cap(batch) {
			select {
			case o := <-w.outbox:
				batch = append(batch, o)
			default:
				break gather
			}
		}
		for len(batch) > 0 {
			// One pipeline per server's stream, keeping the order.
			n := 1
			for n < len(batch) && batch[n].server == batch[0].server {
				n++
			}
			w.flush(batch[:n])
			batch = batch[n:]
		}
	}
}

func (w *Worker) flush(batch []outgoing) {
	server := batch[0].server
	w.mu.Lock()
	q, ok := w.results[server]
	if !ok {
		q = bus.NewTaskQueue(w.rdb, bus.QueueOptions{Stream: bus.ServerResultsStream(server), Group: bus.ResultsGroup})
		w.results[server] = q
	}
	w.mu.Unlock()
	tasks := make([]bus.Task, len(batch))
	for i, o := range batch {
		tasks[i] = o.task
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ids, err := q.SubmitAll(ctx, tasks)
	for i, o := range batch {
		switch {
		case o.sent == nil && i >= len(ids):
			w.logger.Warn("sending to the server failed", "execution_id", o.task.ExecutionID, "node_id", o.task.NodeID, "err", err)
		case o.sent == nil:
		case i < len(ids):
			o.sent <- nil
		default:
			o.sent <- err
		}
	}
}

// release drops the agents of an execution: their subscriptions close
// (cancelling the answers under way) and its nodes stop. ack says whether
// its host tasks are done with (the server released the execution, or is
// gone); otherwise they stay pending, and once their lease lapses the
// server places the agents again (this worker is stopping, or lost its
// registration).
func (w *Worker) release(execID, why string, ack bool) {
	w.mu.Lock()
	he := w.hosted[execID]
	delete(w.hosted, execID)
	w.mu.Unlock()
	if he == nil {
		return
	}
	he.mu.Lock()
	he.released, he.done = true, ack // before the cancel, which the runs read them after
	he.mu.Unlock()
	he.cancel(errors.New(why))
	he.mu.Lock()
	subs := make([]bus.Subscription, 0, len(he.agents))
	for _, a := range he.agents {
		subs = append(subs, a.sub)
	}
	entries, holds := he.entries, he.holds
	he.agents, he.entries, he.holds = map[string]*hostedAgent{}, nil, nil
	he.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := he.desk.close(ctx, subs); err != nil {
		w.logger.Warn("closing the agents of an execution", "execution_id", execID, "err", err)
	}
	for _, release := range holds {
		release()
	}
	if len(entries) > 0 && ack {
		if err := w.cons.Ack(ctx, entries...); err != nil && !errors.Is(err, bus.ErrNotPending) {
			w.logger.Warn("ack host tasks failed", "execution_id", execID, "err", err)
		}
	}
	w.updateRegistration()
}

// releaseAgents drops some agents of an execution, which the server has
// placed elsewhere: their subscriptions close, so they answer no query
// here any more. Their host task stays held until the execution is
// released.
func (w *Worker) releaseAgents(execID string, agents []string) {
	w.mu.Lock()
	he := w.hosted[execID]
	w.mu.Unlock()
	if he == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, id := range agents {
		he.mu.Lock()
		a := he.agents[id]
		delete(he.agents, id)
		he.mu.Unlock()
		if a != nil {
			if err := a.sub.Close(ctx); err != nil {
				w.logger.Warn("closing a moved agent", "execution_id", execID, "agent", id, "err", err)
			}
		}
	}
	w.updateRegistration()
}

// releaseAll drops every hosted execution, leaving its host tasks to the
// server (see release).
func (w *Worker) releaseAll(why string) {
	w.mu.Lock()
	ids := make([]string, 0, len(w.hosted))
	for id := range w.hosted {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	for _, id := range ids {
		w.release(id, why, false)
	}
}

func (w *Worker) setInUse(d int) {
	w.mu.Lock()
	w.inUse += d
	w.mu.Unlock()
	w.updateRegistration()
}

// updateRegistration puts what the worker runs and hosts now into its
// registry entry; it reaches Redis with the next heartbeat.
func (w *Worker) updateRegistration() {
	w.mu.Lock()
	reg, inUse := w.reg, w.inUse
	var agents []string
	for _, he := range w.hosted {
		he.mu.Lock()
		for id := range he.agents {
			agents = append(agents, bus.AgentID(he.id, id))
		}
		he.mu.Unlock()
	}
	w.mu.Unlock()
	if reg == nil {
		return
	}
	slices.Sort(agents)
	reg.Update(func(r *bus.Worker) { r.InUse, r.Agents = inUse, agents })
}

// emit sends what an agent hosted here reports to the server: streamed
// text as a notification on its channel (it may be lost: the reply in the
// result carries the whole text), the rest as events on its result
// stream, in order.
func (he *hostedExec) emit(node string, attempt int, ev agentEvent) {
	switch {
	case ev.delta != "":
		m := bus.NewQuery(he.w.self, he.server, noteDelta, map[string]any{"node": node, "text": ev.delta}, bus.Meta(he.id, he.wf.ID), 0)
		m.Type, m.RequiresResponse = bus.TypeNotification, false
		ctx, cancel := context.WithTimeout(he.ctx, 5*time.Second)
		defer cancel()
		if err := he.w.ps.Publish(ctx, bus.Channel(he.server), m); err != nil && he.ctx.Err() == nil {
			he.w.logger.Debug("sending streamed text failed", "execution_id", he.id, "err", err)
		}
	case ev.usage != nil:
		u := ev.usage.usage
		he.event(node, attempt, remoteEvent{Kind: "usage", Usage: &u, Model: ev.usage.model, ToolMode: ev.usage.toolMode})
	case ev.log != "":
		he.event(node, attempt, remoteEvent{Kind: "log", Level: int(ev.level), Text: ev.log})
	}
}

// event sends one event of an agent to the server.
func (he *hostedExec) event(node string, attempt int, ev remoteEvent) {
	res := resultPayload{Op: opEvent, Worker: he.w.cfg.Name, Event: &ev}
	he.w.post(he.server, bus.Task{ExecutionID: he.id, NodeID: node, Attempt: attempt}, res, false)
}

// attemptOf is the attempt an agent is hosted under here.
func (he *hostedExec) attemptOf(node string) int {
	he.mu.Lock()
	defer he.mu.Unlock()
	if a, ok := he.agents[node]; ok {
		return int(a.attempt.Load())
	}
	return 1
}

// comm records an entry of the communication log on the server. The
// entry is reported as the event of the node that made it: the asker of an
// ask, the answering agent of an outside agent's query.
func (he *hostedExec) comm(c workflow.CommEntry) {
	node := c.From
	if _, ok := he.graph.Index[node]; !ok {
		node = c.To
	}
	if c.Time.IsZero() {
		c.Time = time.Now().UTC()
	}
	he.event(node, he.attemptOf(node), remoteEvent{Kind: "comm", Comm: &c})
}

// log records a line of the execution's log on the server.
func (he *hostedExec) log(level slog.Level, node, format string, args ...any) {
	he.event(node, he.attemptOf(node), remoteEvent{Kind: "log", Level: int(level), Text: fmt.Sprintf(format, args...)})
}

// call asks the server op for node, bounded by ctx.
func (he *hostedExec) call(ctx context.Context, op string, req rpcRequest) (rpcReply, error) {
	var out rpcReply
	err := callServer(ctx, he.w.ps, he.w.self, he.server, he.id, op, req, &out)
	return out, err
}

// remoteGuard is the guard handle of agents hosted by a worker: the
// server decides, as it does for its own agents (see the package comment).
type remoteGuard struct{ he *hostedExec }

func (g *remoteGuard) limits() Limits { return g.he.limits }

func (g *remoteGuard) admitAsk(ctx context.Context, from, to, question string) askAdmission {
	r, err := g.he.call(ctx, rpcAdmitAsk, rpcRequest{Node: from, To: to, Question: question})
	switch {
	case err != nil:
		return askAdmission{refusal: "error: the server could not admit the ask: " + err.Error(), reason: "unavailable"}
	case r.Refusal != "":
		return askAdmission{refusal: r.Refusal, reason: r.Reason}
	case r.Repeat != nil:
		done := make(chan struct{})
		close(done)
		return askAdmission{repeat: &askedOnce{done: done, answer: r.Repeat.Answer, id: r.Repeat.ID, ok: r.Repeat.OK}}
	}
	return askAdmission{ticket: &askedOnce{done: make(chan struct{}), ticket: r.Ticket, node: from}}
}

// awaitRepeat has nothing to wait for: the server answered admitAsk once
// the earlier ask had its answer.
func (g *remoteGuard) awaitRepeat(context.Context, *askedOnce) error { return nil }

func (g *remoteGuard) settle(a *askedOnce, answer, id string, ok bool) {
	g.he.event(a.node, g.he.attemptOf(a.node), remoteEvent{Kind: "settle", Ticket: a.ticket, Text: answer, ID: id, OK: ok})
}

// working counts a run of node under way here; the func it returns ends
// it. When the last one ends, the model calls granted ahead and not made
// go back to the server: counted as made, they would bring the execution
// to max_llm_calls early while the agents of the nodes that run next, on
// other workers, still need calls. The run hands them back before its
// result is sent, so the server has them before the next node starts.
// Answers keep what is left between them: each would otherwise ask the
// server again; calls an agent keeps after its own run, for answers
// that never come, still count as made.
func (he *hostedExec) working(node string) (done func()) {
	he.mu.Lock()
	he.busy++
	he.mu.Unlock()
	return func() {
		he.mu.Lock()
		he.busy--
		unmade := 0
		if he.busy == 0 {
			unmade, he.calls = he.calls, 0
		}
		he.mu.Unlock()
		if unmade > 0 {
			he.event(node, he.attemptOf(node), remoteEvent{Kind: "calls", Count: unmade})
		}
	}
}

// admitLLMCall spends a call the server granted ahead, or asks it for
// callGrant more (see guard.admitLLMCalls).
func (g *remoteGuard) admitLLMCall(ctx context.Context) error {
	he := g.he
	he.mu.Lock()
	if he.calls > 0 {
		he.calls--
		he.mu.Unlock()
		return nil
	}
	he.mu.Unlock()
	r, err := he.call(ctx, rpcAdmitCall, rpcRequest{Want: callGrant})
	switch {
	case err != nil:
		return &workflow.Error{Code: workflow.CodeUnavailable, Message: "the server could not admit a model call", Err: err}
	case r.Refusal != "":
		return &workflow.Error{Code: workflow.CodeInvalid, Message: r.Refusal}
	}
	if r.Granted > 1 {
		he.mu.Lock()
		he.calls += r.Granted - 1
		he.mu.Unlock()
	}
	return nil
}

func (g *remoteGuard) admitToolCall(ctx context.Context) error {
	r, err := g.he.call(ctx, rpcAdmitTool, rpcRequest{})
	switch {
	case err != nil:
		return &workflow.Error{Code: workflow.CodeUnavailable, Message: "the server could not admit a tool call", Err: err}
	case r.Refusal != "":
		return &workflow.Error{Code: workflow.CodeInvalid, Message: r.Refusal}
	}
	return nil
}

// spend leaves the count to the server, which adds the usage the agent
// reports after every model call and ends the execution when it is over
// its budget, as it does for its own agents.
func (g *remoteGuard) spend(context.Context, int) (int, bool) { return 0, false }

// remoteTeam is the team of agents hosted by a worker: asks go from here
// over the bus, and the execution's shared context, broadcasts and system
// prompts are the server's.
type remoteTeam struct{ he *hostedExec }

func (t remoteTeam) ask(ctx context.Context, from *workflow.Node, target, question string, qctx map[string]any, chain []string) string {
	return t.he.crew.ask(ctx, from, target, question, qctx, chain)
}

func (t remoteTeam) broadcast(ctx context.Context, from *workflow.Node, message string, types []string) string {
	he := t.he
	res := he.crew.transport.broadcast(ctx, broadcastRequest{from: from.ID, message: message, types: types})
	ev := remoteEvent{Kind: "broadcast", Text: message, Types: types, ID: res.messageID}
	if res.err != nil {
		ev.Key = res.err.Error()
	}
	he.event(from.ID, he.attemptOf(from.ID), ev)
	to := recipients(he.wf, he.graph, from.ID, types)
	return broadcastSummary(to)
}

func (t remoteTeam) setShared(from, key string, value any) {
	t.he.event(from, t.he.attemptOf(from), remoteEvent{Kind: "shared", Key: key, Value: value})
}

func (t remoteTeam) comm(c workflow.CommEntry) { t.he.comm(c) }

func (t remoteTeam) getShared(key string) (any, bool) {
	ctx, cancel := context.WithTimeout(t.he.ctx, t.he.crew.askTimeout)
	defer cancel()
	r, err := t.he.call(ctx, rpcGetShared, rpcRequest{Key: key})
	if err != nil {
		t.he.w.logger.Warn("reading the shared context failed", "execution_id", t.he.id, "key", key, "err", err)
		return nil, false
	}
	return r.Value, r.Found
}

// workerTransport carries the asks and broadcasts of agents hosted by a
// worker over the bus. Without Redis a worker can do nothing, so there is
// no in-process fallback here: the server runs the node again itself.
type workerTransport struct {
	ps           PubSub
	execID, wfID string
}

func (t *workerTransport) route() string { return viaRedis }

func (t *workerTransport) ask(ctx context.Context, r askRequest) askResult {
	res, _ := busAsk(ctx, t.ps, t.execID, t.wfID, r)
	return res
}

func (t *workerTransport) broadcast(ctx context.Context, r broadcastRequest) broadcastResult {
	return busBroadcast(ctx, t.ps, t.execID, t.wfID, r, 0)
}

func (t *workerTransport) close(context.Context) error { return nil }

// watchServers releases the executions of a server that is gone: one that
// was killed never sends their release, and its agents would otherwise stay
// hosted here for ever. A server is gone when nobody has listened on its
// channel at two checks in a row, half a lease apart; its result stream is
// then deleted, since nobody will read it.
func (w *Worker) watchServers(ctx context.Context) {
	tick := time.NewTicker(w.cfg.Lease / 2)
	defer tick.Stop()
	strikes := map[string]int{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		servers := map[string][]string{}
		for id, he := range w.hosted {
			servers[he.server] = append(servers[he.server], id)
		}
		w.mu.Unlock()
		for server, execs := range servers {
			cctx, cancel := context.WithTimeout(ctx, w.cfg.Lease/2)
			n, err := w.rdb.PubSubNumSub(cctx, bus.Channel(server)).Result()
			cancel()
			if err != nil {
				continue // Redis is down: the registration's loss handles that
			}
			if n[bus.Channel(server)] > 0 {
				delete(strikes, server)
				continue
			}
			if strikes[server]++; strikes[server] < 2 {
				continue
			}
			delete(strikes, server)
			w.logger.Warn("the server of hosted executions is gone; releasing them", "server", server, "executions", len(execs))
			for _, id := range execs {
				w.release(id, "server "+server+" is gone", true)
			}
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = w.rdb.Del(dctx, bus.ServerResultsStream(server)).Err()
			cancel()
			w.mu.Lock()
			delete(w.results, server)
			w.mu.Unlock()
		}
	}
}
