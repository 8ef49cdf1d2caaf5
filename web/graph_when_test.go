package web

import (
	"os"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

// TestGraphDrawsBranches: a condition's edges carry their when as a label
// (escaped), and in an execution the edge to a skipped node is drawn as
// one not taken.
func TestGraphDrawsBranches(t *testing.T) {
	t.Parallel()
	w := wf([]string{"c", "a", "b"})
	w.Nodes[0].Type = workflow.NodeCondition
	w.Edges = []workflow.Edge{{From: "c", To: "a", When: "true"}, {From: "c", To: "b", When: "<b>no</b>"}}
	g := layoutGraph(w, map[string]*workflow.NodeState{"c": {Status: workflow.NodeCompleted}, "a": {Status: workflow.NodeCompleted}, "b": {Status: workflow.NodeSkipped}})
	byTo := map[string]graphEdge{}
	for _, e := range g.Edges {
		byTo[e.To] = e
	}
	if e := byTo["a"]; e.When != "true" || e.Skipped || e.LX <= graphMargin+graphBoxW {
		t.Errorf("edge to a: %+v", e)
	}
	if e := byTo["b"]; e.When != "<b>no</b>" || !e.Skipped {
		t.Errorf("edge to b: %+v", e)
	}
	u, err := newUI(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	html, err := u.render("", "graph", g)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`class="edge-label"`, `>true</text>`, `&lt;b&gt;no&lt;/b&gt;`, `edge-skipped`, `c → b when &lt;b&gt;no&lt;/b&gt;`} {
		if !strings.Contains(html, want) {
			t.Errorf("graph lacks %s:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<b>") {
		t.Error("a when label is not escaped")
	}
}

// TestSkippedNodeReasonIsNotAnError: a skipped node's reason (a branch
// not taken) is shown muted, a failed node's error as an error.
func TestSkippedNodeReasonIsNotAnError(t *testing.T) {
	t.Parallel()
	u, err := newUI(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	for status, want := range map[string]string{
		workflow.NodeSkipped: `<p class="node-error node-skip">`,
		workflow.NodeError:   `<p class="node-error">`,
	} {
		html, err := u.render("", "node-meta", nodeView{ID: "a", Name: "a", Type: workflow.NodeAIProcessor, Status: status,
			State: &workflow.NodeState{Status: status, Error: "why"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(html, want) {
			t.Errorf("%s: want %s in\n%s", status, want, html)
		}
	}
}
