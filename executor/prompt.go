package executor

import (
	"fmt"
	"strings"

	"github.com/switchboard-dev/switchboard/workflow"
)

// The communication guide is added to the system prompt of a node that can
// communicate, so any model knows how to reach the others.
const (
	guideIntro = "\n\nYou are one agent in a team. You can talk to the other agents while you work by writing statements on their own line:\n" +
		"CALL: ask_node('node_id', 'your question') - ask another agent and get its answer (a third argument, a dict like {'key': 'value'}, goes with the question as context)\n" +
		"CALL: broadcast_message('message') - tell every agent something (optionally: CALL: broadcast_message('message', ['ai-processor']))\n" +
		"CALL: set_shared_context('key', 'value') - store a value every agent can read\n" +
		"CALL: get_shared_context('key') - read a stored value (CALL: get_shared_context('key', 'default') gives the default when nothing is stored)\n" +
		"Quote arguments with ' or \" and escape a quote of the same kind with a backslash. " +
		"The results of your calls come back to you in the next message; then write your final answer without CALL statements."
	guideAgents = "\nThe other agents:"
)

// staticPrompt is the part of node's system message that is the same for
// every call of the node in an execution (see buildStaticPrompt), built once
// per node and execution: built again for every model call, in a builder
// growing from nothing, it took a tenth of a Q&A execution's engine time and
// made a fifth of the engine's garbage.
func (x *execution) staticPrompt(node *workflow.Node) string {
	x.promptMu.Lock()
	defer x.promptMu.Unlock()
	if p, ok := x.prompts[node.ID]; ok {
		return p
	}
	if x.prompts == nil {
		x.prompts = map[string]string{}
	}
	p := buildStaticPrompt(x.wf, x.aiOf, node)
	x.prompts[node.ID] = p
	return p
}

// buildStaticPrompt builds node's own system_prompt and, when it may
// communicate, the communication guide, which lists every other agent. aiOf
// gives a node's config. A worker builds the same text for the agents it
// hosts.
func buildStaticPrompt(wf *workflow.Workflow, aiOf func(*workflow.Node) *workflow.AIConfig, node *workflow.Node) string {
	cfg := aiOf(node)
	if !cfg.CanCommunicate {
		return cfg.SystemPrompt
	}
	var b strings.Builder
	// Room for a line of ~60 bytes per other agent, so that usually the
	// builder never grows.
	b.Grow(len(cfg.SystemPrompt) + len(guideIntro) + len(guideAgents) + 64*len(wf.Nodes))
	b.WriteString(cfg.SystemPrompt)
	b.WriteString(guideIntro)
	first := true
	for i := range wf.Nodes {
		n := &wf.Nodes[i]
		if n.Type != workflow.NodeAIProcessor && n.Type != workflow.NodeHuman || n.ID == node.ID {
			continue
		}
		if first {
			b.WriteString(guideAgents)
			first = false
		}
		ai := aiOf(n)
		b.WriteString("\n- ")
		b.WriteString(n.ID)
		b.WriteString(" (")
		b.WriteString(ai.Name)
		b.WriteString(")")
		if ai.Description != "" {
			b.WriteString(": ")
			b.WriteString(ai.Description)
		}
	}
	return b.String()
}

// systemPrompt builds a node's system message: its static part (see
// staticPrompt) and the broadcasts it has received so far.
func (x *execution) systemPrompt(node *workflow.Node) string {
	static := x.staticPrompt(node)
	if !x.aiOf(node).CanCommunicate {
		return strings.TrimSpace(static)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return withBroadcasts(static, node, x.broadcasts)
}

// withBroadcasts is the system message of a node that may communicate: its
// static part and the broadcasts of bcs that reached it (those of the
// others, to its type).
func withBroadcasts(static string, node *workflow.Node, bcs []broadcast) string {
	var got []string
	for _, bc := range bcs {
		if bc.From != node.ID && matchesType(node.Type, bc.Types) {
			got = append(got, fmt.Sprintf("- from %s: %s", bc.From, bc.Message))
		}
	}
	if len(got) == 0 {
		return strings.TrimSpace(static)
	}
	return strings.TrimSpace(static + "\n\nMessages broadcast to the team so far:\n" + strings.Join(got, "\n"))
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
