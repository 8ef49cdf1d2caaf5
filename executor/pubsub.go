package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/workflow"
)

// PubSub is the Redis bus that pubsub executions talk through. bus.Bus
// satisfies it. It must be safe for concurrent use.
type PubSub interface {
	Ping(ctx context.Context) error
	Healthy() bool
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
	subs []bus.Subscription

	mu       sync.Mutex
	answers  map[string]*answerOnce // query id → its answer, so a re-sent query is answered once
	degraded error                  // why Redis was lost, once it was: later asks go in-process
	closing  bool                   // close has begun: no query is taken any more
	inflight sync.WaitGroup         // queries being answered; close waits for them
}

type answerOnce struct {
	done   chan struct{}
	answer string
	err    error
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
	t := &pubsubTransport{x: x, ps: ps, answers: map[string]*answerOnce{}}
	x.log(slog.LevelInfo, "", "Initialized Redis Pub/Sub communication")
	for i := range x.wf.Nodes {
		n := &x.wf.Nodes[i]
		if n.Type != workflow.NodeAIProcessor {
			continue
		}
		agent := x.agentID(n.ID)
		sub, err := ps.Subscribe(pctx, bus.Channel(agent), t.handler(x.agentOf(n)))
		if err != nil {
			t.closeSubs()
			return nil, fmt.Errorf("subscribe agent %s: %w", agent, err)
		}
		t.subs = append(t.subs, sub)
		x.log(slog.LevelInfo, n.ID, "Registered agent: %s", agent)
	}
	sub, err := ps.Subscribe(pctx, bus.BroadcastChannel, t.onBroadcast)
	if err != nil {
		t.closeSubs()
		return nil, fmt.Errorf("subscribe to broadcasts: %w", err)
	}
	t.subs = append(t.subs, sub)
	return t, nil
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
	t.closing = true
	t.mu.Unlock()
	var errs []error
	for _, s := range t.subs {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	t.subs = nil
	// An answer that ignores its cancelled context must not keep the
	// execution from ending: the wait is bounded by ctx.
	answered := make(chan struct{})
	go func() {
		t.inflight.Wait()
		close(answered)
	}()
	select {
	case <-answered:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("queries still being answered when the agents closed: %w", context.Cause(ctx)))
	}
	return errors.Join(errs...)
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
	x := t.x
	from, to := x.agentID(r.from), x.agentID(r.to)
	// The ask's deadline is ctx's; the QUERY carries it as expires_at, and
	// the bus re-sends it once half of it has passed.
	var timeout time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	q := bus.NewQuery(from, to, r.question, queryContext(r), bus.Meta(x.rec.ID, x.wf.ID), timeout)
	if r.id != "" {
		q.ID = r.id
	}
	reply, err := t.ps.Ask(ctx, bus.Channel(to), q, timeout)
	res := askResult{transport: viaRedis, messageID: q.ID}
	if err != nil {
		if errors.Is(err, bus.ErrConnectionLost) || errors.Is(err, bus.ErrClosed) {
			t.lost(err)
			x.log(slog.LevelWarn, r.from, "Lost the Redis connection during an ask; the rest of this execution's asks go in-process")
			res.err = fmt.Errorf("the Redis connection was lost while %s waited for %s", r.from, r.to)
			return res
		}
		if errors.Is(err, bus.ErrAskTimeout) {
			res.err = fmt.Errorf("no answer from %q within %s", r.to, timeout.Round(time.Millisecond))
			return res
		}
		res.err = err
		return res
	}
	res.responseID = reply.ID
	res.answer, res.err = reply.Answer()
	return res
}

func (t *pubsubTransport) broadcast(ctx context.Context, r broadcastRequest) broadcastResult {
	x := t.x
	if t.inProcess() {
		return broadcastResult{transport: viaInProcess}
	}
	m := bus.NewBroadcast(x.agentID(r.from), r.message, r.types, bus.Meta(x.rec.ID, x.wf.ID), x.askTimeout)
	err := t.ps.Publish(ctx, bus.BroadcastChannel, m)
	if err != nil {
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

// handler is the query handler of agent a: the agent answers with its own
// config and model, and the handler publishes the RESPONSE to the asker.
// The answer needs only the agent and the message (the agent's calls go to
// its team), so that it can move to another process.
//
// It takes queries as other programs write them too: a task_request, and a
// query without metadata.execution_id, since the channel it arrived on names
// the agent and so the execution. What it cannot use is logged at warn level
// with the channel and the reason, never dropped silently.
func (t *pubsubTransport) handler(a *agent) bus.Handler {
	node := a.node.ID
	self := t.x.agentID(node)
	channel := bus.Channel(self)
	return func(ctx context.Context, m bus.Message) {
		if reason := t.unusable(m); reason != "" {
			t.x.logger.Warn("ignored a message an agent cannot use", "channel", channel, "id", m.ID,
				"type", m.Type, "from_agent", m.FromAgent, "reason", reason)
			return
		}
		if !t.enter() {
			return
		}
		defer t.inflight.Done()
		outside := !t.isAgent(m.FromAgent)
		answer, first, err := t.answerOnce(ctx, a, m, outside)
		var reply bus.Message
		if err != nil {
			reply = bus.NewErrorResponse(m, self, err.Error())
		} else {
			reply = bus.NewResponse(m, self, answer)
		}
		// Strict in what it sends: the reply names the execution even when the
		// query did not.
		reply.Metadata[bus.MetaExecutionID], reply.Metadata[bus.MetaWorkflowID] = t.x.rec.ID, t.x.wf.ID
		if outside && first {
			// The execution's own asks are logged by the asker; an outside
			// agent's are logged here, the only place that sees them.
			meta := map[string]any{"mode": viaRedis, "transport": viaRedis, "reply_to": m.ID, "message_id": reply.ID,
				"outside": true, "success": err == nil}
			content := answer
			if err != nil {
				content, meta["error"] = "", err.Error()
			}
			t.x.comm(workflow.CommEntry{From: node, To: m.FromAgent, Type: workflow.CommResponse, Content: content, Metadata: meta})
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := t.ps.Publish(pctx, bus.Channel(m.FromAgent), reply); err != nil {
			t.x.logger.Warn("publish response", "query_id", m.ID, "err", err)
		}
	}
}

// unusable says why a message that arrived on an agent's channel cannot be
// answered, or "" when it can. Responses to this execution's asks never get
// here: the bus hands them to the ask waiting for them.
func (t *pubsubTransport) unusable(m bus.Message) string {
	switch {
	case m.IsResponse():
		return "a response without reply_to answers no question"
	case !m.IsQuery():
		return fmt.Sprintf("type %q is not a query (or task_request)", m.Type)
	case m.ExecutionID() != "" && m.ExecutionID() != t.x.rec.ID:
		return fmt.Sprintf("metadata.execution_id %q is not the execution of this channel's agent (%s)", m.ExecutionID(), t.x.rec.ID)
	case m.Question() == "":
		return "content.question is missing, empty or not a string"
	}
	return ""
}

// enter counts a query being answered, so that close can wait for it; it
// reports false once the transport is closing.
func (t *pubsubTransport) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.inflight.Add(1)
	return true
}

// isAgent reports whether agent is one of this execution's agents.
func (t *pubsubTransport) isAgent(agent string) bool {
	for i := range t.x.wf.Nodes {
		if n := &t.x.wf.Nodes[i]; n.Type == workflow.NodeAIProcessor && agent == t.x.agentID(n.ID) {
			return true
		}
	}
	return false
}

// answerOnce answers a query id once: a re-sent query waits for, and gets,
// the first answer instead of calling the model again. first is true for the
// call that answered. A query from outside the execution (outside) is asked
// by its agent id, is logged as an ask when it arrives, and has no chain.
func (t *pubsubTransport) answerOnce(ctx context.Context, ag *agent, m bus.Message, outside bool) (answer string, first bool, err error) {
	node := ag.node.ID
	t.mu.Lock()
	a, seen := t.answers[m.ID]
	if !seen {
		a = &answerOnce{done: make(chan struct{})}
		t.answers[m.ID] = a
	}
	t.mu.Unlock()
	if seen {
		select {
		case <-a.done:
			return a.answer, false, a.err
		case <-ctx.Done():
			return "", false, ctx.Err()
		}
	}
	defer close(a.done)
	r := askRequest{to: node, question: m.Question()}
	qc := m.QueryContext()
	r.context = askerContext(qc)
	if outside {
		r.from = m.FromAgent
		meta := map[string]any{"mode": viaRedis, "transport": viaRedis, "message_id": m.ID, "outside": true}
		if r.context != nil {
			meta["context"] = r.context
		}
		t.x.comm(workflow.CommEntry{From: m.FromAgent, To: node, Type: workflow.CommAsk, Content: r.question, Metadata: meta})
	} else {
		r.from, _ = qc["from_node"].(string)
		if list, ok := qc["chain"].([]any); ok {
			for _, c := range list {
				if s, ok := c.(string); ok {
					r.chain = append(r.chain, s)
				}
			}
		}
	}
	// The answer ends with the agent's subscription (closing it, which the
	// end of the execution does, cancels ctx), or when the query expires:
	// the asker's deadline came as expires_at; a query from another program
	// may have none.
	var deadline time.Time
	if m.ExpiresAt != nil {
		deadline = *m.ExpiresAt
	}
	actx, cancel := askContext(ctx, deadline, t.x.askTimeout, node)
	defer cancel()
	a.answer, a.err = ag.answer(actx, r)
	return a.answer, true, a.err
}
