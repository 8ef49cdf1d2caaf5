package executor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// runHuman runs a human node: its rendered question waits for a person,
// and the answer is its output. The execution waits (status waiting)
// meanwhile; nothing else of it holds.
func (x *execution) runHuman(ctx context.Context, node *workflow.Node) (any, error) {
	cfg := node.Human()
	q, err := workflow.Render(cfg.Question, x.scope(cfg.Question))
	if err != nil {
		return nil, fmt.Errorf("render question of node %q: %w", node.ID, err)
	}
	return x.askPerson(ctx, node, cfg, q, "")
}

// answerPerson answers an ask_node to human node: the asker's question goes
// to the person, whose answer is the reply. It runs in the server, which
// hosts every human node, in either mode.
func (x *execution) answerPerson(ctx context.Context, node *workflow.Node, r askRequest) (string, error) {
	q := r.question
	if len(r.context) > 0 {
		q += "\n\nContext: " + contextText(r.context)
	}
	return x.askPerson(ctx, node, node.Human(), q, r.from)
}

// askPerson puts question to the person who answers human node node (one
// question of a node at a time: a second waits for the first to be
// answered) and waits for the answer, until the node's timeout (which
// takes its default answer, or fails) or until ctx ends. askedBy is the
// asking node of an ask_node, "" for the node's own run. A wait stored
// before a restart with the same question keeps its start, so the timeout
// counts from when it first waited.
func (x *execution) askPerson(ctx context.Context, node *workflow.Node, cfg workflow.HumanConfig, question, askedBy string) (string, error) {
	room := x.room
	o := &openWait{cfg: cfg, answer: make(chan string, 1), w: workflow.Wait{Reason: workflow.WaitHuman, NodeID: node.ID,
		Question: question, Input: cfg.Input, Choices: cfg.Choices, AskedBy: askedBy, Since: time.Now().UTC()}}
	if err := room.slot(ctx, o); err != nil {
		return "", err
	}
	room.mu.Lock()
	if p, ok := room.prior[node.ID]; ok && p.AskedBy == askedBy && p.Question == question {
		o.w.Since = p.Since
		delete(room.prior, node.ID)
	}
	room.mu.Unlock()
	var timer <-chan time.Time
	switch {
	case cfg.Timeout > 0:
		d := o.w.Since.Add(cfg.Timeout)
		o.w.Deadline, o.w.Default = &d, cfg.Default
		t := time.NewTimer(time.Until(d))
		defer t.Stop()
		timer = t.C
	default:
		// An ask without the node's own timeout ends with the ask's.
		if d, ok := ctx.Deadline(); ok {
			d = d.UTC()
			o.w.Deadline = &d
		}
	}
	if askedBy == "" {
		x.nodeState(node.ID, func(s *workflow.NodeState) { s.Status = workflow.NodeWaiting })
		x.log(slog.LevelInfo, node.ID, "Node %s waits for a person's answer: %s", node.ID, question)
	} else {
		x.log(slog.LevelInfo, node.ID, "Node %s asks the person of node %s: %s", askedBy, node.ID, question)
	}
	room.enter(o)
	defer room.leave(o, ctx)
	select {
	case a := <-o.answer:
		x.log(slog.LevelInfo, node.ID, "A person answered node %s", node.ID)
		return a, nil
	case <-timer:
		if cfg.Default != nil {
			x.log(slog.LevelInfo, node.ID, "No answer to node %s within %s; it takes its default answer", node.ID, cfg.Timeout)
			return *cfg.Default, nil
		}
		return "", workflow.Errorf(workflow.CodeTimeout, "no answer from a person to node %q within %s", node.ID, cfg.Timeout)
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// humanTimeout is how long an ask to a human node waits: the node's
// timeout_seconds and a margin to carry its default answer back, or the
// ask's timeout when the node sets none.
func humanTimeout(t *workflow.Node, askTimeout time.Duration) time.Duration {
	if t.Type != workflow.NodeHuman {
		return askTimeout
	}
	if d := t.Human().Timeout; d > 0 {
		return d + 10*time.Second
	}
	return askTimeout
}
