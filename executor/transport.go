package executor

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/workflow"
)

// transport carries asks and broadcasts between the agents of one execution.
// The simple transport calls the target in-process; the pubsub transport
// sends Redis messages. Both are safe for concurrent use.
type transport interface {
	// route says how the next ask will travel (viaRedis or viaInProcess),
	// so that the asker records it, with its id, before it leaves.
	route() string
	// ask carries r and waits for its answer until ctx ends: ctx carries
	// the ask's deadline (see askContext), and nothing else bounds it.
	ask(ctx context.Context, r askRequest) askResult
	broadcast(ctx context.Context, r broadcastRequest) broadcastResult
	close(ctx context.Context) error
}

type askRequest struct {
	from, to, question string
	context            map[string]any // the asker's context for the question; nil: none
	chain              []string       // nodes waiting on this ask, the first asker first; from is last
	via                string         // the route the asker recorded: viaRedis or viaInProcess
	id                 string         // the QUERY id over Redis, made and recorded by the asker
}

type askResult struct {
	answer     string
	err        error
	transport  string // "inprocess" or "redis"
	messageID  string // the QUERY id, pubsub only
	responseID string // the RESPONSE id, pubsub only
	timedOut   bool   // the bus's ask timeout passed with no reply
}

type broadcastRequest struct {
	from, message string
	types         []string
}

type broadcastResult struct {
	err       error
	transport string
	messageID string
}

const (
	viaInProcess = "inprocess"
	viaRedis     = "redis"
)

// inProcess is simple mode: an ask is a direct call of the target's answer.
type inProcess struct{ x *execution }

func (t inProcess) route() string { return viaInProcess }

func (t inProcess) ask(ctx context.Context, r askRequest) askResult {
	answer, err := t.x.answer(ctx, r)
	return askResult{answer: answer, err: err, transport: viaInProcess}
}

func (t inProcess) broadcast(context.Context, broadcastRequest) broadcastResult {
	return broadcastResult{transport: viaInProcess}
}

func (t inProcess) close(context.Context) error { return nil }

// openTransport picks the execution's transport. A pubsub request whose Redis
// cannot be reached runs in simple mode, and the record says why.
func (x *execution) openTransport(ctx context.Context) transport {
	if x.rec.RequestedMode != workflow.ModePubSub {
		return inProcess{x}
	}
	t, err := x.openPubSub(ctx)
	if err != nil {
		reason := err.Error()
		x.log(slog.LevelWarn, "", "Failed to initialize Pub/Sub mode, falling back to simple: %s", reason)
		x.setHeader(func(h *workflow.Execution) { h.Mode, h.FallbackReason = workflow.ModeSimple, reason })
		x.e.tel.metrics().PubSubFallback(metrics.FallbackAtStart)
		return inProcess{x}
	}
	return t
}

func (x *execution) openPubSub(ctx context.Context) (transport, error) {
	if x.e.pubsub == nil {
		return nil, fmt.Errorf("no Redis is configured")
	}
	return newPubSubTransport(ctx, x)
}
