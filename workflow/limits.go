package workflow

import "fmt"

// Limits bound the size of what a server accepts, so one careless or
// hostile document cannot exhaust it. Zero fields take the defaults.
type Limits struct {
	MaxNodes       int // nodes per workflow (500)
	MaxEdges       int // edges per workflow (4 × MaxNodes)
	MaxPromptBytes int // each prompt and system prompt (64 KiB)
	MaxVariables   int // variables per workflow, and inputs per run (100)
	MaxValueBytes  int // each variable value or input, as JSON (64 KiB)
}

// WithDefaults fills zero fields with the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxNodes <= 0 {
		l.MaxNodes = 500
	}
	if l.MaxEdges <= 0 {
		l.MaxEdges = 4 * l.MaxNodes
	}
	if l.MaxPromptBytes <= 0 {
		l.MaxPromptBytes = 64 << 10
	}
	if l.MaxVariables <= 0 {
		l.MaxVariables = 100
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = 64 << 10
	}
	return l
}

// CheckLimits returns a problem, with its JSON path, for each part of w
// over a limit.
func CheckLimits(w *Workflow, l Limits) []Problem {
	l = l.WithDefaults()
	var ps []Problem
	if len(w.Nodes) > l.MaxNodes {
		ps = append(ps, Problem{"nodes", fmt.Sprintf("has %d nodes; the limit is %d", len(w.Nodes), l.MaxNodes)})
	}
	if len(w.Edges) > l.MaxEdges {
		ps = append(ps, Problem{"edges", fmt.Sprintf("has %d edges; the limit is %d", len(w.Edges), l.MaxEdges)})
	}
	if len(w.Variables) > l.MaxVariables {
		ps = append(ps, Problem{"variables", fmt.Sprintf("has %d variables; the limit is %d", len(w.Variables), l.MaxVariables)})
	}
	for i := range w.Nodes {
		if i >= l.MaxNodes {
			break
		}
		for _, f := range []string{"prompt", "system_prompt"} {
			if s, ok := w.Nodes[i].Config[f].(string); ok && len(s) > l.MaxPromptBytes {
				ps = append(ps, Problem{fmt.Sprintf("nodes[%d].config.%s", i, f), fmt.Sprintf("is %d bytes; the limit is %d", len(s), l.MaxPromptBytes)})
			}
		}
	}
	for i, v := range w.Variables {
		if n := len(toText(v.Value)); n > l.MaxValueBytes {
			ps = append(ps, Problem{fmt.Sprintf("variables[%d].value", i), fmt.Sprintf("is %d bytes; the limit is %d", n, l.MaxValueBytes)})
		}
	}
	return ps
}

// CheckInputs returns a problem for each run input over a limit.
func CheckInputs(inputs map[string]any, l Limits) []Problem {
	l = l.WithDefaults()
	var ps []Problem
	if len(inputs) > l.MaxVariables {
		ps = append(ps, Problem{"inputs", fmt.Sprintf("has %d inputs; the limit is %d", len(inputs), l.MaxVariables)})
	}
	for k, v := range inputs {
		if n := len(toText(v)); n > l.MaxValueBytes {
			ps = append(ps, Problem{"inputs." + k, fmt.Sprintf("is %d bytes; the limit is %d", n, l.MaxValueBytes)})
		}
	}
	return ps
}
