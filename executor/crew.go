package executor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/workflow"
)

// crew is an execution's agents as an asker sees them: the workflow (who
// can be asked), the guard handle, the transport an ask travels by, and
// where what happens is reported. The server makes one per execution over
// its own guard and transport; a worker makes one per execution it hosts
// agents of, over a guard handle that asks the server and a transport from
// its own process. The ask is the same code in both.
type crew struct {
	wf         *workflow.Workflow
	graph      *workflow.Graph
	guard      guardHandle
	transport  transport
	askTimeout time.Duration
	mode       func() string                                            // the execution's mode as it is now, for the log's metadata
	comm       func(workflow.CommEntry)                                 // records an entry of the communication log
	log        func(level slog.Level, node, format string, args ...any) // records a line of the execution's log
	tel        *telemetry                                               // the spans of its asks; nil: none
	// counted counts an ask that was sent, by the route it took and how
	// it ended; nil counts none.
	counted func(from, via, outcome string)
}

// node returns the node with the given id, or nil.
func (c *crew) node(id string) *workflow.Node {
	if i, ok := c.graph.Index[id]; ok {
		return &c.wf.Nodes[i]
	}
	return nil
}

// ask sends question, with the asker's context (nil for none), from node to
// target through the execution's transport and returns the text the asker
// gets back: the answer, or why there is none.
func (c *crew) ask(ctx context.Context, node *workflow.Node, target, question string, qctx map[string]any, chain []string) string {
	t := c.node(target)
	switch {
	case t == nil || t.Type != workflow.NodeAIProcessor && t.Type != workflow.NodeHuman:
		return fmt.Sprintf("error: %q is not an ai-processor or human node of this workflow; you can ask: %s", target, strings.Join(c.askable(node.ID), ", "))
	case target == node.ID:
		return "error: a node cannot ask itself"
	}
	for _, waiting := range chain {
		if waiting == target {
			loop := strings.Join(append(append([]string{}, chain...), target), " → ")
			return c.refuse(node.ID, target, question, "cycle",
				fmt.Sprintf("refused: %s is already waiting for your answer (%s); answer with what you know instead of asking it", target, loop))
		}
	}
	limits := c.guard.limits()
	ctxText := contextText(qctx)
	if n := len(question) + len(ctxText); n > limits.MaxPromptBytes {
		return fmt.Sprintf("error: your question and its context are %d bytes; the limit is %d", n, limits.MaxPromptBytes)
	}
	if depth := len(chain); depth > limits.MaxDepth {
		return c.refuse(node.ID, target, question, "max_ask_depth",
			fmt.Sprintf("refused: questions may nest at most %d deep (metadata.max_ask_depth); answer with what you know", limits.MaxDepth))
	}
	// The same question with another context is another question.
	adm := c.guard.admitAsk(ctx, node.ID, target, question+ctxText)
	switch {
	case adm.refusal != "":
		return c.refuse(node.ID, target, question, adm.reason, adm.refusal)
	case adm.repeat != nil:
		// The same node asked the same node the same question before:
		// answer from the first time, and say so.
		earlier := adm.repeat
		if err := c.guard.awaitRepeat(ctx, earlier); err != nil {
			return "error: " + err.Error()
		}
		meta := map[string]any{"mode": c.mode(), "duplicate": true}
		if qctx != nil {
			meta["context"] = qctx
		}
		if earlier.id != "" {
			meta["answered_from"] = earlier.id
		}
		c.comm(workflow.CommEntry{From: node.ID, To: target, Type: workflow.CommAsk, Content: question, Metadata: copyMap(meta)})
		if !earlier.ok {
			return "error: you asked this before and it failed: " + earlier.answer
		}
		meta["success"] = true
		c.comm(workflow.CommEntry{From: target, To: node.ID, Type: workflow.CommResponse, Content: earlier.answer, Metadata: meta})
		return fmt.Sprintf("%s (%s) answered (you asked this before; this is the same answer): %s", t.Label(), target, earlier.answer)
	}
	var settled struct {
		answer, id string
		ok         bool
	}
	defer func() { c.guard.settle(adm.ticket, settled.answer, settled.id, settled.ok) }()
	ctx, span := c.tel.startAsk(ctx, node.ID, target)
	actx, cancel := askContext(ctx, time.Time{}, humanTimeout(t, c.askTimeout), target)
	defer cancel()
	defer holdClock(ctx, t)()
	// The ask is recorded as it leaves, not when the answer comes.
	r := askRequest{from: node.ID, to: target, question: question, context: qctx, chain: chain, via: c.transport.route()}
	askMeta := map[string]any{"mode": r.via, "transport": r.via, "depth": len(chain)}
	if r.via == viaRedis {
		// The id names the nodes, as the original's did: query:{from}:{to}:{time}-{suffix}.
		r.id = bus.NewQueryID(node.ID, target, time.Now())
		askMeta["message_id"] = r.id
	}
	if qctx != nil {
		askMeta["context"] = qctx
	}
	c.comm(workflow.CommEntry{From: node.ID, To: target, Type: workflow.CommAsk, Content: question, Metadata: askMeta})
	started := time.Now()
	res := c.transport.ask(actx, r)
	outcome := askOutcome(res, actx, ctx)
	endAsk(span, r, res, outcome)
	if c.counted != nil {
		c.counted(node.ID, r.via, outcome)
	}
	meta := map[string]any{"mode": res.transport, "transport": res.transport, "depth": len(chain)}
	meta["latency_ms"] = float64(time.Since(started).Microseconds()) / 1000
	if res.messageID != "" {
		meta["reply_to"] = res.messageID
		meta["message_id"] = res.responseID
	}
	if res.err != nil {
		msg := res.err.Error()
		if actx.Err() != nil && ctx.Err() == nil {
			msg = context.Cause(actx).Error()
		}
		meta["success"] = false
		meta["error"] = msg
		c.comm(workflow.CommEntry{From: target, To: node.ID, Type: workflow.CommResponse, Content: "", Metadata: meta})
		c.log(slog.LevelWarn, node.ID, "Ask from %s to %s failed: %s", node.ID, target, msg)
		settled.answer, settled.id = msg, res.messageID
		return "error: " + msg
	}
	settled.answer, settled.id, settled.ok = res.answer, res.messageID, true
	meta["success"] = true
	c.comm(workflow.CommEntry{From: target, To: node.ID, Type: workflow.CommResponse, Content: res.answer, Metadata: meta})
	return fmt.Sprintf("%s (%s) answered: %s", t.Label(), target, res.answer)
}

// refuse records an ask that a guard turned down and returns the refusal,
// which the asking model reads as the call's result.
func (c *crew) refuse(from, to, question, reason, refusal string) string {
	c.log(slog.LevelWarn, from, "Refused ask from %s to %s (%s): %s", from, to, reason, refusal)
	c.comm(workflow.CommEntry{From: from, To: to, Type: workflow.CommAsk, Content: question,
		Metadata: map[string]any{"mode": c.mode(), "refused": reason, "refusal": refusal}})
	return refusal
}

func (c *crew) askable(self string) []string {
	var ids []string
	for i := range c.wf.Nodes {
		if n := &c.wf.Nodes[i]; (n.Type == workflow.NodeAIProcessor || n.Type == workflow.NodeHuman) && n.ID != self {
			ids = append(ids, n.ID)
		}
	}
	return ids
}
