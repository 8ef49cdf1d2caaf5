package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/workflow"
)

// PubSub is the Redis bus that pubsub executions talk through. bus.Bus
// satisfies it. It must be safe for concurrent use.
type PubSub interface {
	Ping(ctx context.Context) error
	Healthy() bool
	Outages() uint64
	Subscribe(ctx context.Context, channel string, h bus.Handler) (bus.Subscription, error)
	Publish(ctx context.Context, channel string, m bus.Message) error
	Ask(ctx context.Context, channel string, q bus.Message, timeout time.Duration) (bus.Message, error)
}

// pubsubTransport makes every ai-processor node of one execution an agent
// with its own channel. An ask is a QUERY published to the target's channel;
// the target's handler answers with a RESPONSE on the asker's channel.
type pubsubTransport struct {
	x    *execution
	ps   PubSub
	desk *desk // answers the queries of the agents hosted here
	subs []bus.Subscription

	mu       sync.Mutex
	degraded error // why Redis was lost, once it was: later asks go in-process
}

func (x *execution) agentID(node string) string { return bus.AgentID(x.rec.ID, node) }

// newPubSubTransport pings Redis (briefly) and subscribes every agent, each
// subscription confirmed, before any node runs.
func newPubSubTransport(ctx context.Context, x *execution) (transport, error) {
	ps := x.e.pubsub
	pctx, cancel := context.WithTimeout(ctx, x.e.cfg.PingTimeout)
	defer cancel()
	if err := ps.Ping(pctx); err != nil {
		return nil, fmt.Errorf("redis is unreachable: %w", err)
	}
	t := &pubsubTransport{x: x, ps: ps, desk: newDesk(x.rec.ID, x.wf, ps, x.askTimeout, x.comm, x.logger)}
	t.desk.tel = x.e.tel
	x.log(slog.LevelInfo, "", "Initialized Redis Pub/Sub communication")
	x.ps = t
	pl := x.placeAgents(pctx)
	// Failing here, the execution runs in simple mode: nothing of the
	// placement may stay.
	fail := func(err error) (transport, error) {
		t.closeSubs()
		if pl != nil {
			pl.end()
			x.placement = nil
		}
		x.ps = nil
		x.setHeader(func(h *workflow.Execution) { h.Placement, h.PlacementFallbackReason = "", "" })
		return nil, err
	}
	for i := range x.wf.Nodes {
		n := &x.wf.Nodes[i]
		// Human nodes answer in the server, where people reach them.
		if n.Type != workflow.NodeHuman && (n.Type != workflow.NodeAIProcessor || !pl.hostsHere(n.ID)) {
			continue
		}
		agent := x.agentID(n.ID)
		sub, err := ps.Subscribe(pctx, bus.Channel(agent), t.desk.handler(x.agentOf(n)))
		if err != nil {
			return fail(fmt.Errorf("subscribe agent %s: %w", agent, err))
		}
		t.mu.Lock()
		t.subs = append(t.subs, sub)
		t.mu.Unlock()
		x.log(slog.LevelInfo, n.ID, "Registered agent: %s", agent)
	}
	if pl == nil {
		// The server's own agents log the broadcasts they receive; with
		// every agent on workers there is nobody here to receive them, and
		// a burst of executions would queue a subscription each on the
		// bus's one connection.
		sub, err := ps.Subscribe(pctx, bus.BroadcastChannel, t.onBroadcast)
		if err != nil {
			return fail(fmt.Errorf("subscribe to broadcasts: %w", err))
		}
		t.mu.Lock()
		t.subs = append(t.subs, sub)
		t.mu.Unlock()
	}
	if pl != nil {
		pl.start(ctx, t.hostOne)
	}
	return t, nil
}

// hostOne subscribes the agent of node in this process: one placed on a
// worker that could not take it, or was lost.
func (t *pubsubTransport) hostOne(node string) error {
	x := t.x
	n := x.node(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	ctx, cancel := context.WithTimeout(x.ctx, 5*time.Second)
	defer cancel()
	sub, err := t.ps.Subscribe(ctx, bus.Channel(x.agentID(node)), t.desk.handler(x.agentOf(n)))
	if err != nil {
		return fmt.Errorf("subscribe agent %s: %w", x.agentID(node), err)
	}
	t.mu.Lock()
	t.subs = append(t.subs, sub)
	t.mu.Unlock()
	x.log(slog.LevelInfo, node, "Registered agent: %s", x.agentID(node))
	return nil
}

func (t *pubsubTransport) closeSubs() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.close(ctx)
}

// close unsubscribes every agent of the execution, whatever way it ended,
// and waits for the queries they are answering: closing their
// subscriptions cancels them, so no agent outlives its execution.
func (t *pubsubTransport) close(ctx context.Context) error {
	t.mu.Lock()
	subs := t.subs
	t.subs = nil
	t.mu.Unlock()
	return t.desk.close(ctx, subs)
}

// errRedisDown is the cause recorded when the bus reports its Redis connection down before an
// ask or broadcast of this execution noticed it.
var errRedisDown = errors.New("the bus's connection to Redis is down")

// inProcess reports whether the execution's asks and broadcasts go in-process from now on:
// Redis was lost earlier in the execution, or the bus reports it down now (which is recorded
// as the loss).
func (t *pubsubTransport) inProcess() bool {
	t.mu.Lock()
	degraded := t.degraded != nil
	t.mu.Unlock()
	if degraded {
		return true
	}
	if !t.ps.Healthy() {
		t.lost(errRedisDown)
		return true
	}
	return false
}

// lost records, the first time only, that Redis was lost in the middle of the execution: the
// rest of it goes in-process (a reconnect later does not switch back, so that one run does not
// mix transports), and the record's fallback_reason says when and why, as it does for a
// fallback at start. The mode stays pubsub: the execution did use it.
func (t *pubsubTransport) lost(cause error) {
	t.mu.Lock()
	first := t.degraded == nil
	if first {
		t.degraded = cause
	}
	t.mu.Unlock()
	if !first {
		return
	}
	t.x.e.tel.metrics().PubSubFallback(metrics.FallbackDuring)
	reason := fmt.Sprintf("Redis connection lost at %s: %v; the rest of the run went in-process",
		time.Now().UTC().Format(time.RFC3339), cause)
	t.x.log(slog.LevelWarn, "", "%s", reason)
	t.x.setHeader(func(h *workflow.Execution) { h.FallbackReason = reason })
}

// route is viaRedis until Redis is lost during the execution.
func (t *pubsubTransport) route() string {
	if t.inProcess() {
		return viaInProcess
	}
	return viaRedis
}

func (t *pubsubTransport) ask(ctx context.Context, r askRequest) askResult {
	if r.via != viaRedis {
		// Redis was lost during this execution: finish it in-process.
		return inProcess{t.x}.ask(ctx, r)
	}
	res, lost := busAsk(ctx, t.ps, t.x.rec.ID, t.x.wf.ID, r)
	if lost != nil {
		t.lost(lost)
		t.x.log(slog.LevelWarn, r.from, "Lost the Redis connection during an ask; the rest of this execution's asks go in-process")
	}
	return res
}

// busAsk sends r as a QUERY to its target's channel and waits for the
// RESPONSE, until ctx's deadline (the ask's). lost is set when the bus lost
// its connection to Redis meanwhile.
func busAsk(ctx context.Context, ps PubSub, execID, wfID string, r askRequest) (res askResult, lost error) {
	from, to := bus.AgentID(execID, r.from), bus.AgentID(execID, r.to)
	// The ask's deadline is ctx's; the QUERY carries it as expires_at, and
	// the bus re-sends it once half of it has passed.
	var timeout time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	q := bus.NewQuery(from, to, r.question, queryContext(r), bus.Meta(execID, wfID), timeout)
	if r.id != "" {
		q.ID = r.id
	}
	injectTrace(ctx, q.Metadata)
	reply, err := ps.Ask(ctx, bus.Channel(to), q, timeout)
	res = askResult{transport: viaRedis, messageID: q.ID}
	if err != nil {
		if errors.Is(err, bus.ErrConnectionLost) || errors.Is(err, bus.ErrClosed) {
			res.err = fmt.Errorf("the Redis connection was lost while %s waited for %s", r.from, r.to)
			return res, err
		}
		if errors.Is(err, bus.ErrAskTimeout) {
			res.timedOut = true
			res.err = fmt.Errorf("no answer from %q within %s", r.to, timeout.Round(time.Millisecond))
			return res, nil
		}
		res.err = err
		return res, nil
	}
	res.responseID = reply.ID
	res.answer, res.err = reply.Answer()
	return res, nil
}

func (t *pubsubTransport) broadcast(ctx context.Context, r broadcastRequest) broadcastResult {
	if t.inProcess() {
		return broadcastResult{transport: viaInProcess}
	}
	return busBroadcast(ctx, t.ps, t.x.rec.ID, t.x.wf.ID, r, t.x.askTimeout)
}

// busBroadcast publishes r on the broadcast channel; it expires after ttl
// (never when ttl <= 0).
func busBroadcast(ctx context.Context, ps PubSub, execID, wfID string, r broadcastRequest, ttl time.Duration) broadcastResult {
	m := bus.NewBroadcast(bus.AgentID(execID, r.from), r.message, r.types, bus.Meta(execID, wfID), ttl)
	if err := ps.Publish(ctx, bus.BroadcastChannel, m); err != nil {
		return broadcastResult{transport: viaInProcess, err: fmt.Errorf("publish broadcast: %w", err)}
	}
	return broadcastResult{transport: viaRedis, messageID: m.ID}
}

// onBroadcast receives broadcasts; those of other executions are ignored.
// The sender already told this execution's nodes (see execution.broadcast),
// so receipt is only logged here.
func (t *pubsubTransport) onBroadcast(_ context.Context, m bus.Message) {
	if m.ExecutionID() != t.x.rec.ID {
		return
	}
	t.x.logger.Debug("broadcast received", "message_id", m.ID, "from", m.FromAgent)
}
