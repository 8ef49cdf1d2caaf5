package executor

import "github.com/switchboard-dev/switchboard/workflow"

// redactEvent masks secrets in an event before it is recorded or shown: the
// secret inputs by name, and secret values wherever they occur in text.
func (x *execution) redactEvent(ev workflow.Event) workflow.Event {
	if (x.redact == nil && len(x.secretIn) == 0) || ev.Kind == workflow.EventDelta {
		// Deltas are masked where they are made (chat), across deltas.
		return ev
	}
	if ev.Execution != nil && len(ev.Execution.Inputs) > 0 {
		h := *ev.Execution
		h.Inputs = make(map[string]any, len(ev.Execution.Inputs))
		for k, v := range ev.Execution.Inputs {
			if x.secretIn[k] {
				v = workflow.Mask
			}
			h.Inputs[k] = v
		}
		ev.Execution = &h
	}
	if ev.Node != nil && ev.Node.Type == workflow.NodeStart {
		if vars, ok := ev.Node.Output.(map[string]any); ok {
			n := *ev.Node
			masked := make(map[string]any, len(vars))
			for k, v := range vars {
				if x.secretIn[k] {
					v = workflow.Mask
				}
				masked[k] = v
			}
			n.Output = masked
			ev.Node = &n
		}
	}
	return x.redact.Event(ev)
}
