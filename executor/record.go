package executor

import (
	"cmp"
	"slices"
	"sync"

	"github.com/switchboard-dev/switchboard/workflow"
)

// keptRecord keeps, for Options.KeepRecord, every event a run records (as
// recorded: secrets masked), so that a caller waiting for the run can
// answer with its record without reading it back from the store: that
// read was a fifth of the CPU of a synchronous execute request. It folds
// the events as the store folds what it wrote (store/events.go): a node's
// last state, a shared-context key's last value, entries in seq order
// (ties in the order recorded), the last header with the first header's
// created_at, and empty collections rather than nil.
type keptRecord struct {
	mu      sync.Mutex
	created workflow.Execution // the first header
	header  *workflow.Execution
	events  []workflow.Event
}

func (k *keptRecord) add(ev workflow.Event) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ev.Kind == workflow.EventExecution {
		if k.header == nil {
			k.created = *ev.Execution
		}
		k.header = ev.Execution
		return
	}
	k.events = append(k.events, ev)
}

// build returns the record; call it once the run has ended.
func (k *keptRecord) build() *workflow.Execution {
	k.mu.Lock()
	defer k.mu.Unlock()
	x := *k.header
	if !k.created.CreatedAt.IsZero() {
		x.CreatedAt = k.created.CreatedAt
	}
	x.NodeStates = map[string]*workflow.NodeState{}
	x.Logs, x.Errors, x.CommunicationLog = []workflow.LogEntry{}, []workflow.ErrorEntry{}, []workflow.CommEntry{}
	x.SharedContext = map[string]any{}
	evs := slices.Clone(k.events)
	slices.SortStableFunc(evs, func(a, b workflow.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, ev := range k.events { // arrival order: the last state and value win
		switch ev.Kind {
		case workflow.EventNode:
			x.NodeStates[ev.Node.NodeID] = ev.Node
		case workflow.EventContext:
			x.SharedContext[ev.Context.Key] = ev.Context.Value
		}
	}
	for _, ev := range evs { // seq order
		switch ev.Kind {
		case workflow.EventLog:
			l := *ev.Log
			if l.Time.IsZero() {
				l.Time = ev.Time
			}
			x.Logs = append(x.Logs, l)
		case workflow.EventError:
			e := *ev.Error
			if e.Time.IsZero() {
				e.Time = ev.Time
			}
			x.Errors = append(x.Errors, e)
		case workflow.EventMessage:
			m := *ev.Message
			if m.Time.IsZero() {
				m.Time = ev.Time
			}
			x.CommunicationLog = append(x.CommunicationLog, m)
		}
	}
	return &x
}
