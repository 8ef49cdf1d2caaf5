package workflow

import (
	"cmp"
	"slices"
)

// Folded is the record an execution's events make, headers aside.
type Folded struct {
	Nodes    []*NodeState // each node's last state, in the order the nodes were first seen
	Logs     []LogEntry
	Errors   []ErrorEntry
	Messages []CommEntry
	Context  map[string]any
	MaxSeq   int64 // the highest seq among the events
}

// Fold builds an execution's record from its events (other than headers,
// which it skips) in the order they were recorded. A node's state is its
// last event's, at the place of the first (ordered by that event's seq,
// then by arrival); a shared-context key holds its last value; log, error
// and communication entries are in seq order, ties in the order recorded,
// and an entry without a time takes its event's. The collections are never
// nil. The store reads execution records back this way and the executor
// keeps the record of a run this way, so the two agree by construction.
func Fold(evs []Event) Folded {
	f := Folded{Nodes: []*NodeState{}, Logs: []LogEntry{}, Errors: []ErrorEntry{}, Messages: []CommEntry{}, Context: map[string]any{}}
	type key struct{ seq, arrival int64 }
	var (
		nodeAt                        = map[string]int{}
		nodeKeys, logKeys, errs, msgs []key
	)
	for i, ev := range evs {
		k := key{ev.Seq, int64(i)}
		f.MaxSeq = max(f.MaxSeq, ev.Seq)
		switch ev.Kind {
		case EventNode:
			if at, ok := nodeAt[ev.Node.NodeID]; ok {
				f.Nodes[at] = ev.Node
				continue
			}
			nodeAt[ev.Node.NodeID] = len(f.Nodes)
			f.Nodes = append(f.Nodes, ev.Node)
			nodeKeys = append(nodeKeys, k)
		case EventLog:
			l := *ev.Log
			if l.Time.IsZero() {
				l.Time = ev.Time
			}
			f.Logs = append(f.Logs, l)
			logKeys = append(logKeys, k)
		case EventError:
			e := *ev.Error
			if e.Time.IsZero() {
				e.Time = ev.Time
			}
			f.Errors = append(f.Errors, e)
			errs = append(errs, k)
		case EventMessage:
			m := *ev.Message
			if m.Time.IsZero() {
				m.Time = ev.Time
			}
			f.Messages = append(f.Messages, m)
			msgs = append(msgs, k)
		case EventContext:
			f.Context[ev.Context.Key] = ev.Context.Value
		}
	}
	bySeq := func(a, b key) int { return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.arrival, b.arrival)) }
	sortBy(f.Nodes, nodeKeys, bySeq)
	sortBy(f.Logs, logKeys, bySeq)
	sortBy(f.Errors, errs, bySeq)
	sortBy(f.Messages, msgs, bySeq)
	return f
}

// sortBy orders items by their keys (same length, same order), and does
// nothing when they already are: events almost always arrive in seq order.
func sortBy[T, K any](items []T, keys []K, cmp func(a, b K) int) {
	if slices.IsSortedFunc(keys, cmp) {
		return
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp(keys[a], keys[b]) })
	sorted := make([]T, len(items))
	for i, j := range idx {
		sorted[i] = items[j]
	}
	copy(items, sorted)
}
