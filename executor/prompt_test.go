package executor

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

// A node's system prompt lists every other ai-processor, with its name and
// description, and not itself or other kinds of node; the guide is built
// once per node and is the same for every call; a node that may not
// communicate gets no guide.
func TestCommunicationGuideListsThePeers(t *testing.T) {
	t.Parallel()
	w, err := workflow.Parse([]byte(`{"name": "g", "nodes": [
		{"id": "s", "type": "start"},
		{"id": "a", "type": "ai-processor", "config": {"prompt": "p", "can_communicate": true, "system_prompt": "You are A."}},
		{"id": "b", "type": "ai-processor", "config": {"prompt": "p", "name": "Bee", "description": "knows bees"}},
		{"id": "c", "type": "ai-processor", "config": {"prompt": "p", "can_communicate": true}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	e := New(nil, nil, nil, testLogger(t), Config{})
	x := newExecution(e, w, &workflow.Execution{ID: "x"}, w.Graph(), t.Context())
	got := x.systemPrompt(x.node("a"))
	want := "You are A.\n\nYou are one agent in a team."
	if !strings.HasPrefix(got, want) {
		t.Fatalf("system prompt starts %q, want %q", got[:min(len(got), 60)], want)
	}
	if !strings.HasSuffix(got, "The other agents:\n- b (Bee): knows bees\n- c (c)") {
		t.Fatalf("system prompt ends %q", got[max(0, len(got)-80):])
	}
	if again := x.systemPrompt(x.node("a")); again != got {
		t.Fatalf("second prompt differs:\n%s\n%s", again, got)
	}
	if g := x.systemPrompt(x.node("c")); !strings.HasSuffix(g, "The other agents:\n- a (a)\n- b (Bee): knows bees") {
		t.Fatalf("system prompt of c = %q", g)
	}
	// A node that may not communicate gets its own system prompt alone.
	if g := x.systemPrompt(x.node("b")); g != "" {
		t.Fatalf("system prompt of b = %q, want none", g)
	}
}
