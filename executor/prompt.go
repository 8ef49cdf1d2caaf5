package executor

import (
	"fmt"
	"strings"

	"github.com/switchboard-dev/switchboard/workflow"
)

// communicationGuide is added to the system prompt of a node that can
// communicate, so any model knows how to reach the others. It is the same
// for every call of the node in an execution, so each node's is built once
// (it lists every other agent, which took a tenth of a Q&A execution's
// engine time when rebuilt for every model call).
func (x *execution) communicationGuide(self string) string {
	x.guideMu.Lock()
	defer x.guideMu.Unlock()
	if g, ok := x.guides[self]; ok {
		return g
	}
	if x.guides == nil {
		x.guides = map[string]string{}
	}
	var b strings.Builder
	b.WriteString("\n\nYou are one agent in a team. You can talk to the other agents while you work by writing statements on their own line:\n")
	b.WriteString("CALL: ask_node('node_id', 'your question') - ask another agent and get its answer\n")
	b.WriteString("CALL: broadcast_message('message') - tell every agent something (optionally: CALL: broadcast_message('message', ['ai-processor']))\n")
	b.WriteString("CALL: set_shared_context('key', 'value') - store a value every agent can read\n")
	b.WriteString("CALL: get_shared_context('key') - read a stored value\n")
	b.WriteString("Quote arguments with ' or \" and escape a quote of the same kind with a backslash. ")
	b.WriteString("The results of your calls come back to you in the next message; then write your final answer without CALL statements.")
	first := true
	for i := range x.wf.Nodes {
		n := &x.wf.Nodes[i]
		if n.Type != workflow.NodeAIProcessor || n.ID == self {
			continue
		}
		if first {
			b.WriteString("\nThe other agents:")
			first = false
		}
		cfg := x.aiOf(n)
		b.WriteString("\n- " + n.ID + " (" + cfg.Name + ")")
		if cfg.Description != "" {
			b.WriteString(": " + cfg.Description)
		}
	}
	g := b.String()
	x.guides[self] = g
	return g
}

// systemPrompt builds a node's system message: its own system_prompt, the
// communication guide when it may communicate, and the broadcasts it has
// received so far.
func (x *execution) systemPrompt(node *workflow.Node) string {
	cfg := x.aiOf(node)
	var b strings.Builder
	b.WriteString(cfg.SystemPrompt)
	if cfg.CanCommunicate {
		b.WriteString(x.communicationGuide(node.ID))
		x.mu.Lock()
		var got []string
		for _, bc := range x.broadcasts {
			if bc.from != node.ID && matchesType(node.Type, bc.types) {
				got = append(got, fmt.Sprintf("- from %s: %s", bc.from, bc.message))
			}
		}
		x.mu.Unlock()
		if len(got) > 0 {
			b.WriteString("\n\nMessages broadcast to the team so far:\n")
			b.WriteString(strings.Join(got, "\n"))
		}
	}
	return strings.TrimSpace(b.String())
}

func matchesType(t string, types []string) bool {
	if len(types) == 0 {
		return true
	}
	for _, want := range types {
		if want == t {
			return true
		}
	}
	return false
}

// resultsMessage is the follow-up turn that carries a reply's call results.
func resultsMessage(results []callResult) string {
	var b strings.Builder
	b.WriteString("Results of your calls:\n")
	for i, r := range results {
		fmt.Fprintf(&b, "%d. %s\n   → %s\n", i+1, r.call, r.text)
	}
	b.WriteString("Use these results to write your final answer. Do not repeat the CALL statements.")
	return b.String()
}
