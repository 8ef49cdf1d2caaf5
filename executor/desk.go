package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/workflow"
)

// desk answers the queries that arrive on the channels of the agents of one
// execution hosted in this process: the server's, or a worker's. Each query
// id is answered once, and close waits for the answers under way.
type desk struct {
	execID     string
	wf         *workflow.Workflow
	ps         Publisher
	askTimeout time.Duration
	comm       func(workflow.CommEntry) // records an entry of the communication log
	logger     *slog.Logger
	tel        *telemetry // the spans of its answers; nil: none

	mu       sync.Mutex
	answers  map[string]*answerOnce // query id → its answer, so a re-sent query is answered once
	closing  bool                   // close has begun: no query is taken any more
	inflight sync.WaitGroup         // queries being answered; close waits for them
}

// Publisher publishes a message on a channel; PubSub has it.
type Publisher interface {
	Publish(ctx context.Context, channel string, m bus.Message) error
}

type answerOnce struct {
	done   chan struct{}
	answer string
	err    error
}

func newDesk(execID string, wf *workflow.Workflow, ps Publisher, askTimeout time.Duration, comm func(workflow.CommEntry), logger *slog.Logger) *desk {
	return &desk{execID: execID, wf: wf, ps: ps, askTimeout: askTimeout, comm: comm, logger: logger, answers: map[string]*answerOnce{}}
}

// close closes the agents' subscriptions, whatever way the execution
// ended, and waits for the queries they are answering: closing their
// subscriptions cancels them, so no agent outlives its execution.
func (d *desk) close(ctx context.Context, subs []bus.Subscription) error {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// An answer that ignores its cancelled context must not keep the
	// execution from ending: the wait is bounded by ctx.
	answered := make(chan struct{})
	go func() {
		d.inflight.Wait()
		close(answered)
	}()
	select {
	case <-answered:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("queries still being answered when the agents closed: %w", context.Cause(ctx)))
	}
	return errors.Join(errs...)
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
func (d *desk) handler(a *agent) bus.Handler {
	node := a.node.ID
	self := bus.AgentID(d.execID, node)
	channel := bus.Channel(self)
	return func(ctx context.Context, m bus.Message) {
		if reason := d.unusable(m); reason != "" {
			d.logger.Warn("ignored a message an agent cannot use", "channel", channel, "id", m.ID,
				"type", m.Type, "from_agent", m.FromAgent, "reason", reason)
			return
		}
		if !d.enter() {
			return
		}
		defer d.inflight.Done()
		outside := !d.isAgent(m.FromAgent)
		// The asker's trace context came with the query: the answer's spans
		// join its trace, in whichever process answers.
		sctx, span := ctx, noSpan()
		if d.tel.tracing() {
			sctx, span = d.tel.start(d.tel.extractTrace(ctx, m.Metadata), "answer "+node, trace.SpanKindServer,
				attribute.String("switchboard.node.id", node), attribute.String("switchboard.query_id", m.ID),
				attribute.String("messaging.message.id", m.ID), attribute.String("switchboard.ask.from_agent", m.FromAgent))
		}
		answer, first, err := d.answerOnce(sctx, a, m, outside)
		endSpan(span, err)
		var reply bus.Message
		if err != nil {
			reply = bus.NewErrorResponse(m, self, err.Error())
		} else {
			reply = bus.NewResponse(m, self, answer)
		}
		// Strict in what it sends: the reply names the execution even when the
		// query did not.
		reply.Metadata[bus.MetaExecutionID], reply.Metadata[bus.MetaWorkflowID] = d.execID, d.wf.ID
		if outside && first {
			// The execution's own asks are logged by the asker; an outside
			// agent's are logged here, the only place that sees them.
			meta := map[string]any{"mode": viaRedis, "transport": viaRedis, "reply_to": m.ID, "message_id": reply.ID,
				"outside": true, "success": err == nil}
			content := answer
			if err != nil {
				content, meta["error"] = "", err.Error()
			}
			d.comm(workflow.CommEntry{From: node, To: m.FromAgent, Type: workflow.CommResponse, Content: content, Metadata: meta})
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := d.ps.Publish(pctx, bus.Channel(m.FromAgent), reply); err != nil {
			d.logger.Warn("publish response", "query_id", m.ID, "err", err)
		}
	}
}

// unusable says why a message that arrived on an agent's channel cannot be
// answered, or "" when it can. Responses to this execution's asks never get
// here: the bus hands them to the ask waiting for them.
func (d *desk) unusable(m bus.Message) string {
	switch {
	case m.IsResponse():
		return "a response without reply_to answers no question"
	case !m.IsQuery():
		return fmt.Sprintf("type %q is not a query (or task_request)", m.Type)
	case m.ExecutionID() != "" && m.ExecutionID() != d.execID:
		return fmt.Sprintf("metadata.execution_id %q is not the execution of this channel's agent (%s)", m.ExecutionID(), d.execID)
	case m.Question() == "":
		return "content.question is missing, empty or not a string"
	}
	return ""
}

// enter counts a query being answered, so that close can wait for it; it
// reports false once the transport is closing.
func (d *desk) enter() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return false
	}
	d.inflight.Add(1)
	return true
}

// isAgent reports whether agent is one of this execution's agents.
func (d *desk) isAgent(agent string) bool {
	for i := range d.wf.Nodes {
		if n := &d.wf.Nodes[i]; (n.Type == workflow.NodeAIProcessor || n.Type == workflow.NodeHuman) && agent == bus.AgentID(d.execID, n.ID) {
			return true
		}
	}
	return false
}

// answerOnce answers a query id once: a re-sent query waits for, and gets,
// the first answer instead of calling the model again. first is true for the
// call that answered. A query from outside the execution (outside) is asked
// by its agent id, is logged as an ask when it arrives, and has no chain.
func (d *desk) answerOnce(ctx context.Context, ag *agent, m bus.Message, outside bool) (answer string, first bool, err error) {
	node := ag.node.ID
	d.mu.Lock()
	a, seen := d.answers[m.ID]
	if !seen {
		a = &answerOnce{done: make(chan struct{})}
		d.answers[m.ID] = a
	}
	d.mu.Unlock()
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
		d.comm(workflow.CommEntry{From: m.FromAgent, To: node, Type: workflow.CommAsk, Content: r.question, Metadata: meta})
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
	actx, cancel := askContext(ctx, deadline, d.askTimeout, node)
	defer cancel()
	a.answer, a.err = ag.answer(actx, r)
	return a.answer, true, a.err
}
