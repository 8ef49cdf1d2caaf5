package executor

import (
	"log/slog"

	"github.com/switchboard-dev/switchboard/workflow"
)

// takeOver prepares a resumed execution: the completed nodes of prev keep
// their outputs (their models are not called again) and its shared context
// carries over. Outputs were stored with secrets masked, so a reused output
// holds the mask, not the secret.
func (x *execution) takeOver(prev *workflow.Execution) {
	if prev == nil {
		return
	}
	x.reused = map[string]any{}
	for id, s := range prev.NodeStates {
		if n := x.node(id); s.Status == workflow.NodeCompleted && n != nil && n.Type != workflow.NodeStart && !reevaluated(n.Type) {
			x.reused[id] = s.Output
		}
	}
	for k, v := range prev.SharedContext {
		x.shared[k] = v
	}
}

// recordTakenOver records the shared context a resumed execution starts
// with, so its record is complete on its own.
func (x *execution) recordTakenOver() {
	x.log(slog.LevelInfo, "", "Resuming execution %s: %d completed node(s) are not run again", x.rec.ResumedFrom, len(x.reused))
	x.mu.Lock()
	shared := make(map[string]any, len(x.shared))
	for k, v := range x.shared {
		shared[k] = v
	}
	x.mu.Unlock()
	for k, v := range shared {
		x.emit(workflow.EventContext, func(ev *workflow.Event) { ev.Context = &workflow.ContextUpdate{Key: k, Value: v} })
	}
}
