package workflow

import (
	"strings"
	"testing"
	"time"
)

// Fold keeps a node's last state at the place of its first, the last value
// of a context key, entries in seq order with ties in arrival order, and
// gives an entry without a time its event's.
func TestFold(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	node := func(seq int64, id, status string) Event {
		return Event{Kind: EventNode, Seq: seq, Node: &NodeState{NodeID: id, Status: status}}
	}
	log := func(seq int64, msg string) Event {
		return Event{Kind: EventLog, Seq: seq, Time: t0.Add(time.Duration(seq)), Log: &LogEntry{Message: msg}}
	}
	ctx := func(seq int64, k string, v any) Event {
		return Event{Kind: EventContext, Seq: seq, Context: &ContextUpdate{Key: k, Value: v}}
	}
	f := Fold([]Event{
		{Kind: EventExecution, Seq: 1, Execution: &Execution{Status: ExecRunning}},
		node(4, "b", NodeRunning), node(3, "a", NodeRunning), log(6, "c"), log(5, "a"), ctx(7, "k", 1),
		log(5, "b"), node(8, "b", NodeCompleted), ctx(9, "k", 2),
	})
	if len(f.Nodes) != 2 || f.Nodes[0].NodeID != "a" || f.Nodes[1].NodeID != "b" || f.Nodes[1].Status != NodeCompleted {
		t.Fatalf("nodes %+v %+v, want a then b (by first seq), b completed", f.Nodes[0], f.Nodes[1])
	}
	var msgs []string
	for _, l := range f.Logs {
		msgs = append(msgs, l.Message)
	}
	if got := strings.Join(msgs, " "); got != "a b c" || !f.Logs[0].Time.Equal(t0.Add(5)) {
		t.Fatalf("logs %s (first at %s), want a b c, timed by their events", got, f.Logs[0].Time)
	}
	if f.Context["k"] != 2 || f.MaxSeq != 9 || f.Errors == nil || f.Messages == nil {
		t.Fatalf("context %v max seq %d errors %v messages %v", f.Context, f.MaxSeq, f.Errors, f.Messages)
	}
}
