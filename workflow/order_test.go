package workflow_test

import (
	"reflect"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

func wf(nodes []string, edges ...[2]string) *workflow.Workflow {
	w := &workflow.Workflow{Name: "t"}
	for _, n := range nodes {
		w.Nodes = append(w.Nodes, workflow.Node{ID: n, Type: workflow.NodeStart})
	}
	for _, e := range edges {
		w.Edges = append(w.Edges, workflow.Edge{From: e[0], To: e[1]})
	}
	return w
}

func TestOrderStable(t *testing.T) {
	t.Parallel()
	w := wf([]string{"end", "b", "a", "start"}, [2]string{"start", "a"}, [2]string{"start", "b"}, [2]string{"a", "end"}, [2]string{"b", "end"})
	got, err := workflow.Order(w)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"start", "b", "a", "end"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	// Unconnected nodes keep the order of nodes.
	got, _ = workflow.Order(wf([]string{"z", "y", "x"}))
	if !reflect.DeepEqual(got, []string{"z", "y", "x"}) {
		t.Fatalf("got %v", got)
	}
}

func TestOrderCycleNamesNodes(t *testing.T) {
	t.Parallel()
	w := wf([]string{"s", "a", "b", "c"}, [2]string{"s", "a"}, [2]string{"a", "b"}, [2]string{"b", "c"}, [2]string{"c", "a"})
	_, err := workflow.Order(w)
	ps := workflow.ErrorProblems(err)
	if len(ps) != 1 || ps[0].Message != "the edges form a cycle: a → b → c → a" {
		t.Fatalf("got %v", err)
	}
	_, err = workflow.Order(wf([]string{"a"}, [2]string{"a", "a"}))
	if ps := workflow.ErrorProblems(err); len(ps) != 1 || ps[0].Message != "the edges form a cycle: a → a" {
		t.Fatalf("self loop: %v", err)
	}
}

func TestAncestors(t *testing.T) {
	t.Parallel()
	w := wf([]string{"s", "a", "b", "c"}, [2]string{"s", "a"}, [2]string{"a", "c"}, [2]string{"s", "b"})
	anc := w.Graph().Ancestors()
	if !anc[3][0] || !anc[3][1] || anc[3][2] {
		t.Fatalf("ancestors of c: %v", anc[3])
	}
}
