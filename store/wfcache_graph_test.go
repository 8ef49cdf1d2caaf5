package store

import (
	"path/filepath"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

// The workflows GetWorkflow answers from its cache share one graph: an
// execution started from one does not work the graph out again.
func TestWorkflowCacheSharesTheGraph(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openAt(t, filepath.Join(t.TempDir(), "wf.db"))
	w := &workflow.Workflow{Name: "g", Nodes: []workflow.Node{{ID: "s", Type: "start", Config: map[string]any{}},
		{ID: "e", Type: "end", Config: map[string]any{}}}, Edges: []workflow.Edge{{From: "s", To: "e"}}}
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	var graphs []*workflow.Graph
	for range 3 {
		got, err := db.GetWorkflow(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		g := got.Graph()
		if err := g.Err(); err != nil || len(g.Order) != 2 || g.Order[0] != g.Index["s"] {
			t.Fatalf("graph of a cached workflow: order %v index %v err %v", g.Order, g.Index, err)
		}
		graphs = append(graphs, g)
	}
	// The first read decoded the document; the next two come from the cache.
	if &graphs[1].Order[0] != &graphs[2].Order[0] || &graphs[1].Parents[0] != &graphs[2].Parents[0] {
		t.Error("two workflows read from the cache built a graph each; want them to share the cached one")
	}
}
