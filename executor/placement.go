package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/workflow"
)

// WorkerOptions configure the server's side of worker mode. Zero fields
// take the defaults.
type WorkerOptions struct {
	// Lease is how long a task may go without its worker renewing it
	// before the server places its agents again; bus.DefaultLease.
	Lease time.Duration
	// HostTimeout is how long workers get to confirm they host the agents
	// of a starting execution before the server hosts them itself; 30 s,
	// long enough for a worker to confirm a burst of ten thousand.
	HostTimeout time.Duration
}

// workerPool is the server's side of worker mode: the workers it places
// agents on, its result stream, its channel for the workers' queries, and
// the placements of its running executions.
type workerPool struct {
	e           *Executor
	rdb         redis.UniversalClient
	ps          PubSub
	self        string // the server's agent id: its channel takes the workers' queries
	lease       time.Duration
	hostTimeout time.Duration
	results     *bus.TaskQueue
	cons        *bus.Consumer
	logger      *slog.Logger

	listMu   sync.Mutex // one listing of the workers at a time (liveWorkers)
	mu       sync.Mutex
	live     []bus.Worker
	liveAt   time.Time
	inflight map[string]int            // worker → runs this server has in flight on it
	execs    map[string]*placement     // execution id → its placement
	queues   map[string]*bus.TaskQueue // worker → its task stream
	ensured  map[string]bool           // worker → its stream's group was made
	placed   map[string]int            // worker → agents of running executions this server placed on it
}

// UseWorkers makes the executor place the agents of pubsub executions on
// the workers registered on rdb's Redis (the one its PubSub uses), and
// serves them until ctx ends. Without it, pubsub executions host their
// agents in this process. It fails when the executor has no PubSub.
func (e *Executor) UseWorkers(ctx context.Context, rdb redis.UniversalClient, opts WorkerOptions) error {
	if e.pubsub == nil {
		return errors.New("worker mode needs a Redis bus")
	}
	if opts.Lease <= 0 {
		opts.Lease = bus.DefaultLease
	}
	if opts.HostTimeout <= 0 {
		opts.HostTimeout = 30 * time.Second
	}
	var id [6]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
	self := "server-" + hex.EncodeToString(id[:])
	results := bus.NewTaskQueue(rdb, bus.QueueOptions{Stream: bus.ServerResultsStream(self), Group: bus.ResultsGroup, Lease: opts.Lease})
	p := &workerPool{e: e, rdb: rdb, ps: e.pubsub, self: self, lease: opts.Lease, hostTimeout: opts.HostTimeout,
		results: results, cons: results.Consumer(self), logger: e.logger.With("component", "workers"),
		inflight: map[string]int{}, execs: map[string]*placement{}, queues: map[string]*bus.TaskQueue{},
		ensured: map[string]bool{}, placed: map[string]int{}}
	e.mu.Lock()
	e.workers = p
	e.mu.Unlock()
	go p.subscribe(ctx)
	go p.read(ctx)
	go p.watch(ctx)
	return nil
}

// subscribe subscribes the server's channel, retrying while Redis is
// down, and closes the subscription when ctx ends.
func (p *workerPool) subscribe(ctx context.Context) {
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sub, err := p.ps.Subscribe(sctx, bus.Channel(p.self), p.onMessage)
		cancel()
		if err == nil {
			<-ctx.Done()
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = sub.Close(cctx)
			cancel()
			return
		}
		if sleepCtx(ctx, time.Second) != nil {
			return
		}
	}
}

// read applies what the workers send on the server's result stream, each
// entry acked once applied. Entries of executions that ended are dropped.
func (p *workerPool) read(ctx context.Context) {
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		// The stream is this server's alone: nothing reads it after it stops.
		_ = p.rdb.Del(dctx, p.results.Stream()).Err()
	}()
	// Each entry is read once (Read claims nothing) and applied once; the
	// ids whose ack failed are acked again with the next batch.
	var unacked []string
	for ctx.Err() == nil {
		tasks, err := p.cons.Read(ctx, 64)
		if err != nil && ctx.Err() == nil {
			p.logger.Debug("reading results failed", "err", err)
			_ = sleepCtx(ctx, 200*time.Millisecond)
		}
		for _, t := range tasks {
			p.apply(t)
			unacked = append(unacked, t.ID)
		}
		if len(unacked) > 0 {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := p.cons.Ack(actx, unacked...)
			cancel()
			if err == nil || errors.Is(err, bus.ErrNotPending) {
				unacked = unacked[:0]
			} else {
				p.logger.Warn("ack results failed", "err", err)
			}
		}
	}
}

// apply hands one result-stream entry to the placement it is about.
func (p *workerPool) apply(t bus.Task) {
	var res resultPayload
	if err := json.Unmarshal(t.Payload, &res); err != nil {
		p.logger.Warn("dropped a result that cannot be read", "entry", t.ID, "execution_id", t.ExecutionID, "err", err)
		return
	}
	p.mu.Lock()
	pl := p.execs[t.ExecutionID]
	p.mu.Unlock()
	if pl == nil {
		return // the execution has ended; what its agents still say changes nothing
	}
	switch res.Op {
	case opHosted:
		pl.hosted(res.Worker, res.Error)
	case opResult:
		pl.result(t.NodeID, t.Attempt, res)
	case opEvent:
		if res.Event != nil {
			pl.event(t.NodeID, t.Attempt, *res.Event)
		}
	}
}

// liveWorkers returns the registered workers, listed at most once a
// second.
//
// One listing serves every caller while it is under way: a burst of
// starting executions would otherwise each list the workers again once
// the last listing is a second old.
func (p *workerPool) liveWorkers(ctx context.Context) ([]bus.Worker, error) {
	p.listMu.Lock()
	defer p.listMu.Unlock()
	p.mu.Lock()
	if time.Since(p.liveAt) < time.Second {
		live := p.live
		p.mu.Unlock()
		return live, nil
	}
	p.mu.Unlock()
	live, err := bus.ListWorkers(ctx, p.rdb)
	if err != nil && !errors.Is(err, bus.ErrMalformedWorker) {
		return nil, err
	}
	p.mu.Lock()
	p.live, p.liveAt = live, time.Now()
	p.mu.Unlock()
	return live, nil
}

// pick returns the live worker with the most free capacity, counting
// what this server already runs there and what it is placing now
// (placing), never one of avoid; "" when there is none.
func (p *workerPool) pick(live []bus.Worker, placing map[string]int, avoid ...string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, bestFree, bestPlaced := "", 0, 0
	for _, w := range live {
		if slices.Contains(avoid, w.Name) {
			continue
		}
		// What a worker has to do is at least what it runs (its heartbeat
		// says), what this server runs there, and the agents this server
		// placed there: a burst of executions is placed before their runs
		// start, between two heartbeats. Ties go to the worker with the
		// fewest agents placed.
		free := w.Capacity - max(w.InUse, p.inflight[w.Name], p.placed[w.Name]) - placing[w.Name]
		placed := p.placed[w.Name] + placing[w.Name]
		if best == "" || free > bestFree || free == bestFree && placed < bestPlaced {
			best, bestFree, bestPlaced = w.Name, free, placed
		}
	}
	return best
}

// queue returns the task stream of worker name.
func (p *workerPool) queue(name string) *bus.TaskQueue {
	p.mu.Lock()
	defer p.mu.Unlock()
	q, ok := p.queues[name]
	if !ok {
		q = bus.NewTaskQueue(p.rdb, bus.QueueOptions{Stream: bus.WorkerTasksStream(name), Lease: p.lease})
		p.queues[name] = q
	}
	return q
}

// submit adds a task_request for worker.
func (p *workerPool) submit(ctx context.Context, worker string, t bus.Task, payload taskPayload) error {
	payload.Server = p.self
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s task: %w", payload.Op, err)
	}
	t.Kind, t.Payload = bus.TypeTaskRequest, data
	q := p.queue(worker)
	// The group is made once per stream: a worker makes it again itself
	// when Redis lost it.
	p.mu.Lock()
	ensured := p.ensured[worker]
	p.mu.Unlock()
	if !ensured {
		if err := q.Ensure(ctx); err != nil {
			return err
		}
		p.mu.Lock()
		p.ensured[worker] = true
		p.mu.Unlock()
	}
	_, err = q.Submit(ctx, t)
	return err
}

// onMessage takes the workers' queries and streamed text on the server's
// channel.
func (p *workerPool) onMessage(ctx context.Context, m bus.Message) {
	p.mu.Lock()
	pl := p.execs[m.ExecutionID()]
	p.mu.Unlock()
	if m.Type == bus.TypeNotification {
		if pl != nil && m.Question() == noteDelta {
			if node := m.Text("node"); pl.x.node(node) != nil {
				pl.x.delta(node, m.Text("text"))
			}
		}
		return
	}
	if !m.IsQuery() {
		p.logger.Warn("ignored a message the server cannot use", "channel", bus.Channel(p.self), "id", m.ID, "type", m.Type)
		return
	}
	var reply bus.Message
	if pl == nil {
		reply = bus.NewErrorResponse(m, p.self, fmt.Sprintf("execution %q is not running on this server", m.ExecutionID()))
	} else {
		// The answer is worth nothing after the worker stopped waiting, nor
		// after the execution ended.
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		if m.ExpiresAt != nil {
			actx, cancel = context.WithDeadline(actx, *m.ExpiresAt)
			defer cancel()
		}
		defer context.AfterFunc(pl.x.ctx, cancel)()
		out, err := pl.answer(actx, m)
		if err != nil {
			reply = bus.NewErrorResponse(m, p.self, err.Error())
		} else {
			reply = bus.NewResponse(m, p.self, out)
		}
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.ps.Publish(pctx, bus.Channel(m.FromAgent), reply); err != nil {
		p.logger.Warn("answering a worker failed", "id", m.ID, "err", err)
	}
}

// watch notices, every quarter lease (at most every second), a Redis that
// was lost and workers whose tasks' leases lapsed, and keeps the streams
// short.
func (p *workerPool) watch(ctx context.Context) {
	every := min(p.lease/4, time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastTidy := time.Now()
	var downSince time.Time
	seen := p.ps.Outages()
	p.redisEmptied(ctx) // sets the marker
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.rdb.Del(dctx, p.markerKey()).Err()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !p.ps.Healthy() {
			// Down for half a lease: the workers cannot send what they do,
			// and stop their nodes themselves when their lease renewals have
			// failed for a lease.
			if downSince.IsZero() {
				downSince = time.Now()
			} else if time.Since(downSince) >= p.lease/2 {
				p.redisLost(errRedisDown, ^uint64(0))
			}
			continue
		}
		downSince = time.Time{}
		p.rdb.Expire(ctx, p.markerKey(), p.markerTTL())
		if n := p.ps.Outages(); n != seen {
			// The connection was lost and is back. A Redis that restarted
			// came back empty, and the tasks in flight on it are gone: the
			// executions placed before go in-process. After a mere blip the
			// streams are whole and the workers carry on.
			if p.redisEmptied(ctx) {
				p.redisLost(errors.New("Redis restarted and lost the tasks in flight"), n)
			}
			seen = n
		}
		p.claimLapsed(ctx)
		if time.Since(lastTidy) >= 10*time.Second {
			lastTidy = time.Now()
			p.tidy(ctx)
		}
	}
}

// markerKey is a key the server keeps on Redis for as long as it runs:
// when it is missing after the bus lost its connection, Redis came back
// empty (restarted without persistence), whereas the result stream and the
// workers' streams are made again at once by whoever writes to them next.
// It lives for ten leases past its last renewal (every watch tick), so that
// a server killed with -9 leaves nothing behind for long.
func (p *workerPool) markerKey() string { return "switchboard:server:" + p.self }

func (p *workerPool) markerTTL() time.Duration { return 10 * p.lease }

// redisEmptied reports whether Redis lost the server's marker since it
// was set, and sets it again.
func (p *workerPool) redisEmptied(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	set, err := p.rdb.SetNX(cctx, p.markerKey(), "1", p.markerTTL()).Result()
	return err == nil && set
}

// redisLost moves every agent of the executions placed before the bus's
// outage count reached outages into the server: the workers cannot be
// reached, or what they were sent is gone, and the executions finish
// in-process, as a pubsub execution does when it loses Redis.
func (p *workerPool) redisLost(cause error, outages uint64) {
	p.mu.Lock()
	pls := make([]*placement, 0, len(p.execs))
	for _, pl := range p.execs {
		if pl.outages < outages {
			pls = append(pls, pl)
		}
	}
	p.mu.Unlock()
	for _, pl := range pls {
		pl.dissolve(cause)
	}
}

// claimLapsed takes over the tasks whose lease lapsed on any worker this
// server placed agents on, and every task of a worker that is gone, read
// or not, and places their agents again.
func (p *workerPool) claimLapsed(ctx context.Context) {
	live, err := p.liveWorkers(ctx)
	if err != nil {
		return
	}
	p.mu.Lock()
	names := make([]string, 0, len(p.queues))
	for name := range p.queues {
		names = append(names, name)
	}
	p.mu.Unlock()
	for _, name := range names {
		alive := slices.ContainsFunc(live, func(w bus.Worker) bool { return w.Name == name })
		q := p.queue(name)
		c := q.Consumer(p.self)
		claim := c.ClaimStale
		if !alive {
			// A worker that is gone (it deregistered as it stopped, or its
			// registration expired) renews nothing more: its tasks are
			// taken at once instead of after their lease.
			claim = c.ClaimAbandoned
		}
		tasks, err := claim(ctx, 100)
		if err != nil {
			continue
		}
		if !alive {
			// A worker that is gone reads nothing more: what it never read is
			// placed elsewhere too.
			more, err := p.readUnread(ctx, q)
			if err == nil {
				tasks = append(tasks, more...)
			}
		}
		if len(tasks) == 0 {
			continue
		}
		ids := make([]string, 0, len(tasks))
		foreign := false
		for _, t := range tasks {
			if !p.failover(name, t) {
				// Another server's task: it places it again itself, after
				// the lease this claim started anew.
				foreign = true
				continue
			}
			ids = append(ids, t.ID)
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = c.Ack(actx, ids...)
		if !foreign {
			// The server is no consumer of a worker's stream: it claimed
			// these only to place them again.
			_ = p.rdb.XGroupDelConsumer(actx, q.Stream(), q.Group(), p.self).Err()
		}
		cancel()
	}
}

// readUnread reads, as the server, the entries of a gone worker's stream
// that it never read.
func (p *workerPool) readUnread(ctx context.Context, q *bus.TaskQueue) ([]bus.Task, error) {
	res, err := p.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: q.Group(), Consumer: p.self,
		Streams: []string{q.Stream(), ">"}, Count: 100, Block: -1}).Result()
	if err != nil {
		return nil, err
	}
	var tasks []bus.Task
	for _, s := range res {
		for _, m := range s.Messages {
			if t, err := bus.DecodeTask(m); err == nil {
				tasks = append(tasks, t)
			}
		}
	}
	return tasks, nil
}

// failover places again the agents of a task taken from worker. It
// reports false for a task another server sent, which it leaves alone.
func (p *workerPool) failover(worker string, t bus.Task) bool {
	var tp taskPayload
	if err := json.Unmarshal(t.Payload, &tp); err != nil {
		return true // nobody can use it
	}
	if tp.Server != p.self {
		return false
	}
	p.mu.Lock()
	pl := p.execs[t.ExecutionID]
	p.mu.Unlock()
	if pl == nil {
		return true // the execution has ended
	}
	switch tp.Op {
	case opHost:
		for _, a := range tp.Agents {
			pl.move(a, worker, t.Attempt, fmt.Sprintf("its lease of %s lapsed", p.lease))
		}
	case opRun:
		pl.move(t.NodeID, worker, t.Attempt, fmt.Sprintf("its lease of %s lapsed", p.lease))
	}
	return true
}

// tidy trims the streams of the workers this server uses and its own,
// removes their dead consumers, and forgets the streams of workers that
// are gone once nothing in them is needed.
func (p *workerPool) tidy(ctx context.Context) {
	live, err := p.liveWorkers(ctx)
	if err != nil {
		return
	}
	_, _ = p.results.Trim(ctx)
	// The streams of workers this server never used are found too: those
	// of workers gone while another server ran here.
	iter := p.rdb.Scan(ctx, 0, bus.WorkerTasksStream("*"), 100).Iterator()
	for iter.Next(ctx) {
		p.queue(strings.TrimPrefix(iter.Val(), bus.WorkerTasksStream("")))
	}
	p.mu.Lock()
	queues := make(map[string]*bus.TaskQueue, len(p.queues))
	for name, q := range p.queues {
		queues[name] = q
	}
	p.mu.Unlock()
	for name, q := range queues {
		_, _ = q.Trim(ctx)
		_, _ = q.RemoveDeadConsumers(ctx)
		if slices.ContainsFunc(live, func(w bus.Worker) bool { return w.Name == name }) {
			continue
		}
		pending, err := q.Pending(ctx)
		if err != nil || pending > 0 {
			continue
		}
		// Nothing of a gone worker's stream is needed any more: what it
		// never read, claimLapsed placed again.
		if err := p.rdb.Del(ctx, q.Stream()).Err(); err == nil {
			p.mu.Lock()
			delete(p.queues, name)
			delete(p.ensured, name)
			p.mu.Unlock()
		}
	}
}

// placement is where the agents of one execution are hosted and where
// their nodes run.
type placement struct {
	p       *workerPool
	x       *execution
	outages uint64      // the bus's outage count when it was placed
	host    taskPayload // the host task's payload, less its agents

	mu      sync.Mutex
	agents  map[string]*placedAgent // node id → where it is
	used    map[string]bool         // workers that hosted any of its agents: they get the release
	waiting map[string]chan *remoteError
	tickets map[string]ticket // admitted asks of agents on workers, until settled
	ended   bool
	local   string // why the rest runs in the server, once it does
}

// ticket is an ask of an agent hosted by a worker that the guard admitted:
// its answer, once settled, serves the asker's repeats.
type ticket struct {
	node  string // the asker
	asked *askedOnce
}

// placedAgent is where one agent is hosted: a worker, or the server
// ("" worker). attempt counts its placements, and its node's run carries
// it; moved is closed when it is placed again.
type placedAgent struct {
	worker  string
	attempt int
	moved   chan struct{}
	run     chan resultPayload // the node's run waiting for its result; nil when none
}

// NoWorkersReason is the placement fallback reason of a run that found no
// worker registered: the usual case of a server used alone, which the
// dashboard mentions quietly instead of warning about it.
const NoWorkersReason = "no worker is registered on the bus"

// place decides where the agents of a pubsub execution are hosted: on
// the live workers by free capacity, or, when the run asks for local or
// no worker is registered, in the server (nil, with the reason when
// workers were wanted).
func (p *workerPool) place(ctx context.Context, x *execution) (*placement, string) {
	live, err := p.liveWorkers(ctx)
	if err != nil {
		return nil, "the workers could not be listed: " + err.Error()
	}
	if len(live) == 0 {
		return nil, NoWorkersReason
	}
	limits := x.guard.limits()
	doc, err := json.Marshal(x.wf)
	if err != nil {
		return nil, "the workflow could not be encoded for the workers: " + err.Error()
	}
	pl := &placement{p: p, x: x, outages: p.ps.Outages(), agents: map[string]*placedAgent{}, used: map[string]bool{},
		waiting: map[string]chan *remoteError{}, tickets: map[string]ticket{},
		host: taskPayload{Op: opHost, Workflow: doc, Secrets: x.wf.Secrets(x.rec.Inputs),
			AskTimeoutMS: x.askTimeout.Milliseconds(), Limits: &limits, MaxRounds: x.e.cfg.MaxRounds,
			ToolMode: x.e.cfg.ToolMode, MCPVars: mcpVars(x.wf, x.vars)}}
	placing := map[string]int{}
	for i := range x.wf.Nodes {
		n := &x.wf.Nodes[i]
		if n.Type != workflow.NodeAIProcessor {
			continue
		}
		w := p.pick(live, placing)
		placing[w]++
		pl.agents[n.ID] = &placedAgent{worker: w, attempt: 1, moved: make(chan struct{})}
	}
	p.mu.Lock()
	for w, n := range placing {
		p.placed[w] += n
	}
	p.execs[x.rec.ID] = pl
	p.mu.Unlock()
	return pl, ""
}

// unplace takes n agents off worker's count.
func (p *workerPool) unplace(worker string, n int) {
	if worker == "" || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.placed[worker] -= n; p.placed[worker] <= 0 {
		delete(p.placed, worker)
	}
}

// hostsHere reports whether the server hosts node's agent.
func (pl *placement) hostsHere(node string) bool {
	if pl == nil {
		return true
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	a, ok := pl.agents[node]
	return !ok || a.worker == ""
}

// start sends each worker the agents placed on it and waits until every
// worker confirms it hosts them (subscribed), so no node runs before its
// agents can be asked. A worker that cannot be sent them, refuses, or does
// not confirm within the host timeout gets none: the server hosts its
// agents (host), and tells it to drop any it hosted late.
func (pl *placement) start(ctx context.Context, host func(node string) error) {
	byWorker := map[string][]string{}
	pl.mu.Lock()
	for id, a := range pl.agents {
		byWorker[a.worker] = append(byWorker[a.worker], id)
	}
	pl.mu.Unlock()
	sent := map[string]chan *remoteError{}
	for w, ids := range byWorker {
		slices.Sort(ids)
		ch := make(chan *remoteError, 1)
		pl.mu.Lock()
		pl.waiting[w] = ch
		pl.used[w] = true
		pl.mu.Unlock()
		payload := pl.host
		payload.Agents = ids
		if err := pl.p.submit(ctx, w, bus.Task{ExecutionID: pl.x.rec.ID, NodeID: allNodes, Attempt: 1}, payload); err != nil {
			pl.hostLocally(w, ids, fmt.Sprintf("worker %s could not be sent its agents: %v", w, err), host)
			continue
		}
		sent[w] = ch
	}
	// One deadline for all of them: the workers confirm at the same time.
	wctx, cancel := context.WithTimeoutCause(ctx, pl.p.hostTimeout, fmt.Errorf("no confirmation within %s", pl.p.hostTimeout))
	defer cancel()
	for _, w := range slices.Sorted(maps.Keys(sent)) {
		ids := byWorker[w]
		select {
		case rerr := <-sent[w]:
			if rerr != nil {
				pl.hostLocally(w, ids, fmt.Sprintf("worker %s could not host its agents: %s", w, rerr.Message), host)
				continue
			}
			pl.x.log(slog.LevelInfo, "", "Worker %s hosts %s", w, strings.Join(ids, ", "))
		case <-wctx.Done():
			pl.hostLocally(w, ids, fmt.Sprintf("worker %s did not confirm it hosts its agents: %v", w, context.Cause(wctx)), host)
		}
	}
	pl.mu.Lock()
	pl.waiting = map[string]chan *remoteError{}
	allHere := true
	for _, a := range pl.agents {
		allHere = allHere && a.worker == ""
	}
	pl.mu.Unlock()
	if allHere {
		pl.x.setHeader(func(h *workflow.Execution) { h.Placement = workflow.PlacementLocal })
	}
}

// hostLocally moves agents that worker was to host into the server at
// start, with the reason, and tells the worker to drop them in case it
// hosts them after all.
func (pl *placement) hostLocally(worker string, ids []string, reason string, host func(node string) error) {
	pl.x.log(slog.LevelWarn, "", "%s; the server hosts %s", reason, strings.Join(ids, ", "))
	pl.mu.Lock()
	for _, id := range ids {
		pl.agents[id].worker = ""
	}
	pl.mu.Unlock()
	pl.p.unplace(worker, len(ids))
	pl.releaseAgents(worker, ids)
	for _, id := range ids {
		if err := host(id); err != nil {
			pl.x.log(slog.LevelWarn, id, "Hosting agent %s in the server failed: %v", id, err)
		}
	}
	pl.x.setHeader(func(h *workflow.Execution) {
		if h.PlacementFallbackReason == "" {
			h.PlacementFallbackReason = reason
		}
	})
}

// releaseAgents tells worker to drop agents of the execution, which are
// placed elsewhere now; best effort: a worker that is gone drops them
// anyway.
func (pl *placement) releaseAgents(worker string, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	payload := taskPayload{Op: opRelease, Agents: ids}
	if err := pl.p.submit(ctx, worker, bus.Task{ExecutionID: pl.x.rec.ID, NodeID: allNodes, Attempt: 1}, payload); err != nil {
		pl.p.logger.Debug("telling a worker to drop moved agents failed", "worker", worker, "execution_id", pl.x.rec.ID, "err", err)
	}
}

// hosted takes a worker's confirmation that it hosts its agents.
func (pl *placement) hosted(worker string, rerr *remoteError) {
	if rerr == nil {
		pl.sendBroadcasts(worker)
	}
	pl.mu.Lock()
	ch := pl.waiting[worker]
	pl.mu.Unlock()
	if ch != nil {
		select {
		case ch <- rerr:
		default:
		}
	}
}

// run runs node on the worker hosting its agent and returns its output;
// remote is false when the server hosts the agent, and the caller runs
// it. When the worker is lost the node runs again where its agent is
// placed next, as the next attempt.
func (pl *placement) run(ctx context.Context, node string, msgs []llm.Message) (out string, remote bool, err error) {
	for {
		pl.mu.Lock()
		a := pl.agents[node]
		if a == nil || a.worker == "" || pl.ended {
			attempt := 0
			if a != nil {
				attempt = a.attempt
			}
			pl.mu.Unlock()
			if attempt > 1 {
				// It ran on a worker before: it now runs in the server.
				pl.x.nodeState(node, func(s *workflow.NodeState) { s.Worker, s.Attempt = "", attempt })
			}
			return "", false, nil
		}
		worker, attempt, moved := a.worker, a.attempt, a.moved
		ch := make(chan resultPayload, 1)
		a.run = ch
		pl.mu.Unlock()

		pl.x.nodeState(node, func(s *workflow.NodeState) {
			s.Worker = worker
			if attempt > 1 {
				s.Attempt = attempt
			}
		})
		payload := taskPayload{Op: opRun, Messages: msgs, Trace: traceParent(ctx), Broadcasts: pl.x.broadcastsSoFar()}
		if d, ok := ctx.Deadline(); ok {
			payload.Deadline = d
		}
		if err := pl.p.submit(ctx, worker, bus.Task{ExecutionID: pl.x.rec.ID, NodeID: node, Attempt: attempt}, payload); err != nil {
			pl.move(node, worker, attempt, fmt.Sprintf("its run could not be sent: %v", err))
			continue
		}
		pl.p.mu.Lock()
		pl.p.inflight[worker]++
		pl.p.mu.Unlock()
		var res resultPayload
		var got bool
		select {
		case res = <-ch:
			got = true
		case <-moved:
		case <-ctx.Done():
		}
		pl.p.mu.Lock()
		pl.p.inflight[worker]--
		if pl.p.inflight[worker] <= 0 {
			delete(pl.p.inflight, worker)
		}
		pl.p.mu.Unlock()
		pl.mu.Lock()
		if a.run == ch {
			a.run = nil
		}
		pl.mu.Unlock()
		switch {
		case got && res.Error != nil && res.Error.Code == codeNotHosted:
			// The worker lost the agent (it restarted, or dropped it): place
			// it again and run it there.
			pl.move(node, worker, attempt, res.Error.Message)
		case got && res.Error != nil:
			return "", true, &workflow.Error{Code: res.Error.Code, Message: res.Error.Message}
		case got:
			return res.Output, true, nil
		case ctx.Err() != nil:
			return "", true, context.Cause(ctx)
		}
		// Moved: run it again where the agent is now.
	}
}

// result takes a node's result from its worker. Only the result of the
// node's current attempt counts; any other (a worker that lost its lease
// and finished anyway, a result delivered twice) is dropped.
func (pl *placement) result(node string, attempt int, res resultPayload) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	a := pl.agents[node]
	if a == nil || a.attempt != attempt || a.run == nil {
		return
	}
	select {
	case a.run <- res:
	default:
	}
	a.run = nil
}

// current reports whether attempt is node's current one; events of
// other attempts are dropped. Events about the whole execution, and of
// an agent's answers to outside queries, come under the agent's attempt.
func (pl *placement) current(node string, attempt int) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	a := pl.agents[node]
	return a == nil || a.attempt == attempt
}

// event applies what an agent hosted by a worker did.
func (pl *placement) event(node string, attempt int, ev remoteEvent) {
	x := pl.x
	if ev.Kind == "calls" {
		// Whichever attempt held them, they are the execution's.
		if g, ok := x.guard.(*guard); ok {
			g.unmadeLLMCalls(ev.Count)
		}
		return
	}
	if !pl.current(node, attempt) {
		return
	}
	if ev.Kind != "comm" && x.node(node) == nil {
		return
	}
	switch ev.Kind {
	case "usage":
		if ev.Usage != nil {
			x.remoteUsage(node, *ev.Usage, ev.Model, ev.ToolMode)
		}
	case "log":
		x.logText(slog.Level(ev.Level), node, ev.Text)
	case "comm":
		if ev.Comm != nil {
			x.comm(*ev.Comm)
		}
	case "shared":
		x.setShared(node, ev.Key, ev.Value)
	case "broadcast":
		res := broadcastResult{transport: viaRedis, messageID: ev.ID}
		if ev.Key != "" {
			res.err = errors.New(ev.Key)
		}
		x.recordBroadcast(node, ev.Text, ev.Types, res)
	case "ask":
		x.e.tel.metrics().Ask(metrics.TransportWorker, ev.Text)
	case "settle":
		pl.mu.Lock()
		tk, ok := pl.tickets[ev.Ticket]
		delete(pl.tickets, ev.Ticket)
		pl.mu.Unlock()
		if ok {
			x.guard.settle(tk.asked, ev.Text, ev.ID, ev.OK)
		}
	}
}

// failTickets drops the open asks of node's agent from the loop guard:
// its host was lost, and with it their answers. The node's next attempt
// asking the same question asks anew, rather than being held as a repeat
// of an ask that failed (or waiting for one that is never settled); a
// repeat already waiting learns that it failed.
func (pl *placement) failTickets(node string) {
	pl.mu.Lock()
	var open []*askedOnce
	for id, tk := range pl.tickets {
		if node == "" || tk.node == node {
			open = append(open, tk.asked)
			delete(pl.tickets, id)
		}
	}
	pl.mu.Unlock()
	// The executions of a server always have its in-process guard.
	g, isGuard := pl.x.guard.(*guard)
	for _, a := range open {
		why := "the asking agent's worker was lost before the answer came"
		if isGuard {
			g.forget(a, why)
		} else {
			pl.x.guard.settle(a, why, "", false)
		}
	}
}

// answer answers a worker's query about this execution.
func (pl *placement) answer(ctx context.Context, m bus.Message) (string, error) {
	var req rpcRequest
	args, _ := m.QueryContext()[rpcArgs].(string)
	if err := json.Unmarshal([]byte(args), &req); err != nil {
		return "", fmt.Errorf("the arguments of %s cannot be read: %w", m.Question(), err)
	}
	x := pl.x
	var out rpcReply
	switch m.Question() {
	case rpcAdmitAsk:
		adm := x.guard.admitAsk(ctx, req.Node, req.To, req.Question)
		switch {
		case adm.refusal != "":
			out.Refusal, out.Reason = adm.refusal, adm.reason
		case adm.repeat != nil:
			if err := x.guard.awaitRepeat(ctx, adm.repeat); err != nil {
				return "", err
			}
			out.Repeat = &struct {
				Answer string `json:"answer"`
				ID     string `json:"id,omitempty"`
				OK     bool   `json:"ok"`
			}{adm.repeat.answer, adm.repeat.id, adm.repeat.ok}
		default:
			var id [8]byte
			_, _ = rand.Read(id[:])
			out.Ticket = hex.EncodeToString(id[:])
			pl.mu.Lock()
			pl.tickets[out.Ticket] = ticket{node: req.Node, asked: adm.ticket}
			pl.mu.Unlock()
		}
	case rpcAdmitCall:
		var err error
		if g, ok := x.guard.(*guard); ok {
			out.Granted, err = g.admitLLMCalls(ctx, max(req.Want, 1))
		} else {
			err = x.guard.admitLLMCall(ctx)
		}
		if err != nil {
			out.Refusal = workflow.ErrorMessage(err)
		}
	case rpcAdmitTool:
		if err := x.guard.admitToolCall(ctx); err != nil {
			out.Refusal = workflow.ErrorMessage(err)
		}
	case rpcGetShared:
		out.Value, out.Found = x.getShared(req.Key)
	case rpcSystemPrompt: // workers build prompts themselves now; one of an older release asks
		n := x.node(req.Node)
		if n == nil || n.Type != workflow.NodeAIProcessor {
			return "", fmt.Errorf("no ai-processor node %q", req.Node)
		}
		out.Prompt = x.systemPrompt(n)
	default:
		return "", fmt.Errorf("unknown query %q", m.Question())
	}
	data, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode the reply to %s: %w", m.Question(), err)
	}
	return string(data), nil
}

// move places node's agent again after it was lost on worker (its task of
// attempt lapsed, its run could not be sent, or the worker no longer hosts
// it; why says which): on another live worker, or in the server. The new
// host has the agent before the run waiting on it is sent again, and the
// old worker is told to drop it. A loss already handled (an older
// attempt) changes nothing.
func (pl *placement) move(node, worker string, attempt int, why string) {
	pl.mu.Lock()
	a := pl.agents[node]
	if a == nil || a.worker != worker || attempt < a.attempt || pl.ended {
		pl.mu.Unlock()
		return
	}
	local := pl.local != ""
	pl.mu.Unlock()
	ctx, cancel := context.WithTimeout(pl.x.ctx, 5*time.Second)
	defer cancel()
	next := ""
	if !local {
		if live, err := pl.p.liveWorkers(ctx); err == nil {
			next = pl.p.pick(live, nil, worker)
		}
	}
	pl.mu.Lock()
	if a.worker != worker || pl.ended {
		pl.mu.Unlock()
		return
	}
	a.attempt++
	newAttempt := a.attempt
	pl.mu.Unlock()
	pl.failTickets(node)
	where := "the server"
	if next != "" {
		where = "worker " + next
		payload := pl.host
		payload.Agents = []string{node}
		if err := pl.p.submit(ctx, next, bus.Task{ExecutionID: pl.x.rec.ID, NodeID: allNodes, Attempt: newAttempt}, payload); err != nil {
			pl.x.log(slog.LevelWarn, node, "Sending agent %s to worker %s failed (%v); the server hosts it", node, next, err)
			next, where = "", "the server"
		}
	}
	if next == "" {
		if err := pl.x.hostHere(node); err != nil {
			pl.x.log(slog.LevelWarn, node, "Hosting agent %s in the server failed: %v", node, err)
		}
	}
	// Only now is the run waiting on the agent sent again: a worker reads
	// its host task first.
	pl.mu.Lock()
	a.worker = next
	if next != "" {
		pl.used[next] = true
	}
	close(a.moved)
	a.moved = make(chan struct{})
	pl.mu.Unlock()
	pl.p.unplace(worker, 1)
	if next != "" {
		pl.p.mu.Lock()
		pl.p.placed[next]++
		pl.p.mu.Unlock()
	}
	pl.releaseAgents(worker, []string{node})
	pl.x.log(slog.LevelWarn, node, "Agent %s was lost on worker %s (%s); it is now hosted by %s, attempt %d", node, worker, why, where, newAttempt)
}

// dissolve moves every agent into the server for the rest of the run,
// Redis being lost for cause.
func (pl *placement) dissolve(cause error) {
	reason := fmt.Sprintf("Redis connection lost at %s: %v; the rest of the run went in-process", time.Now().UTC().Format(time.RFC3339), cause)
	pl.mu.Lock()
	if pl.local != "" || pl.ended {
		pl.mu.Unlock()
		return
	}
	pl.local = reason
	pl.mu.Unlock()
	// The execution's asks go in-process before any node runs in the
	// server: its agents' channels are not subscribed here.
	pl.x.transportLost(cause)
	pl.mu.Lock()
	var moved []string
	byWorker := map[string]int{}
	for id, a := range pl.agents {
		if a.worker == "" {
			continue
		}
		byWorker[a.worker]++
		a.worker = ""
		a.attempt++
		close(a.moved)
		a.moved = make(chan struct{})
		moved = append(moved, id)
	}
	used := slices.Collect(maps.Keys(pl.used))
	pl.mu.Unlock()
	for w, n := range byWorker {
		pl.p.unplace(w, n)
	}
	pl.failTickets("")
	slices.Sort(moved)
	pl.x.log(slog.LevelWarn, "", "%s; the server hosts %s", reason, strings.Join(moved, ", "))
	pl.x.setHeader(func(h *workflow.Execution) { h.PlacementFallbackReason = reason })
	if !pl.p.ps.Healthy() {
		// The execution's own asks go in-process now; only outside agents
		// need the channels, and they cannot reach them without Redis.
		return
	}
	for _, id := range moved {
		if err := pl.x.hostHere(id); err != nil {
			pl.x.log(slog.LevelWarn, id, "Hosting agent %s in the server failed: %v", id, err)
		}
	}
	// Workers still reachable stop what they run for it.
	for _, w := range used {
		pl.releaseAgents(w, moved)
	}
}

// end tells the workers that hosted agents of the execution to release
// them, and forgets the placement.
func (pl *placement) end() {
	pl.mu.Lock()
	pl.ended = true
	used := make([]string, 0, len(pl.used))
	for w, ok := range pl.used {
		if ok {
			used = append(used, w)
		}
	}
	byWorker := map[string]int{}
	for _, a := range pl.agents {
		byWorker[a.worker]++
	}
	pl.mu.Unlock()
	p := pl.p
	for w, n := range byWorker {
		p.unplace(w, n)
	}
	p.mu.Lock()
	delete(p.execs, pl.x.rec.ID)
	p.mu.Unlock()
	pl.failTickets("")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, w := range used {
		if err := p.submit(ctx, w, bus.Task{ExecutionID: pl.x.rec.ID, NodeID: allNodes, Attempt: 1}, taskPayload{Op: opRelease}); err != nil {
			p.logger.Debug("sending a release failed", "worker", w, "execution_id", pl.x.rec.ID, "err", err)
		}
	}
}

// workerPool returns the executor's worker mode; nil when it is off.
func (e *Executor) workerPool() *workerPool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.workers
}

// placeAgents decides where a pubsub execution's agents are hosted and
// records it: nil when the server hosts them all.
func (x *execution) placeAgents(ctx context.Context) *placement {
	p := x.e.workerPool()
	if x.wantPlacement == workflow.PlacementLocal || p == nil {
		x.setHeader(func(h *workflow.Execution) { h.Placement = workflow.PlacementLocal })
		return nil
	}
	pl, reason := p.place(ctx, x)
	if pl == nil {
		x.log(slog.LevelInfo, "", "The server hosts the agents: %s", reason)
		x.setHeader(func(h *workflow.Execution) { h.Placement, h.PlacementFallbackReason = workflow.PlacementLocal, reason })
		return nil
	}
	x.setHeader(func(h *workflow.Execution) { h.Placement = workflow.PlacementWorkers })
	x.placement = pl
	return pl
}

// hostHere subscribes node's agent in the server, after its worker was
// lost.
func (x *execution) hostHere(node string) error {
	if x.ps == nil {
		return errors.New("the execution has no pubsub transport")
	}
	return x.ps.hostOne(node)
}

// transportLost makes the rest of the execution's asks go in-process.
func (x *execution) transportLost(cause error) {
	if x.ps != nil {
		x.ps.lost(cause)
	}
}

// remoteUsage accounts for a model call of an agent hosted by a worker, as
// chat does for the server's own: the token budget, the node's and the
// execution's usage.
func (x *execution) remoteUsage(node string, u workflow.Usage, model, toolMode string) {
	total, over := x.guard.spend(x.ctx, u.TotalTokens)
	call := modelCall{usage: u, model: model, overBudget: over, toolMode: toolMode}
	if over {
		x.log(slog.LevelError, node, "Token budget exceeded: %d tokens used, budget %d; ending the execution", total, x.guard.limits().TokenBudget)
	}
	x.onAgentEvent(agentEvent{node: node, usage: &call})
}
