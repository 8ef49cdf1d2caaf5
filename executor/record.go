package executor

import (
	"sync"

	"github.com/switchboard-dev/switchboard/workflow"
)

// keptRecord keeps, for Options.KeepRecord, every event a run records (as
// recorded: secrets masked), so that a caller waiting for the run can
// answer with its record without reading it back from the store: that
// read was a fifth of the CPU of a synchronous execute request. It folds
// the events with workflow.Fold, as the store folds what it wrote, and
// takes the last header with the first header's created_at.
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
	f := workflow.Fold(k.events)
	x.NodeStates = make(map[string]*workflow.NodeState, len(f.Nodes))
	for _, n := range f.Nodes {
		x.NodeStates[n.NodeID] = n
	}
	x.Logs, x.Errors, x.CommunicationLog, x.SharedContext = f.Logs, f.Errors, f.Messages, f.Context
	return &x
}
