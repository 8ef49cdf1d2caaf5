package web

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

func wf(nodes []string, edges ...[2]string) *workflow.Workflow {
	w := &workflow.Workflow{Name: "t"}
	for _, n := range nodes {
		w.Nodes = append(w.Nodes, workflow.Node{ID: n, Type: workflow.NodeAIProcessor, Config: map[string]any{}})
	}
	for _, e := range edges {
		w.Edges = append(w.Edges, workflow.Edge{From: e[0], To: e[1]})
	}
	return w
}

func column(g graphView, id string) int {
	for _, n := range g.Nodes {
		if n.ID == id {
			return (n.X - graphMargin) / (graphBoxW + graphColGap)
		}
	}
	return -1
}

func row(g graphView, id string) int {
	for _, n := range g.Nodes {
		if n.ID == id {
			return n.Y
		}
	}
	return -1
}

func TestLayoutGraphLayersAreLongestPaths(t *testing.T) {
	t.Parallel()
	// start → a → b → end, and start → end directly: end goes after b.
	g := layoutGraph(wf([]string{"end", "b", "a", "start"},
		[2]string{"start", "a"}, [2]string{"a", "b"}, [2]string{"b", "end"}, [2]string{"start", "end"}), nil)
	for id, want := range map[string]int{"start": 0, "a": 1, "b": 2, "end": 3} {
		if got := column(g, id); got != want {
			t.Errorf("%s in column %d, want %d", id, got, want)
		}
	}
	if len(g.Edges) != 4 {
		t.Fatalf("%d edges, want 4", len(g.Edges))
	}
	for _, e := range g.Edges {
		if !strings.HasPrefix(e.D, "M") || !strings.Contains(e.D, " C") {
			t.Errorf("edge %s→%s path %q", e.From, e.To, e.D)
		}
	}
	if g.Cols != 4 || g.Width <= 0 || g.Height <= 0 {
		t.Errorf("size %dx%d, %d columns", g.Width, g.Height, g.Cols)
	}
}

func TestLayoutGraphOrdersByParents(t *testing.T) {
	t.Parallel()
	// Two chains listed crosswise: p1 → c1, p2 → c2, with c2 listed first.
	// The barycenter pass puts each child level with its parent.
	g := layoutGraph(wf([]string{"p1", "p2", "c2", "c1"}, [2]string{"p1", "c1"}, [2]string{"p2", "c2"}), nil)
	if (row(g, "p1") < row(g, "p2")) != (row(g, "c1") < row(g, "c2")) {
		t.Errorf("edges cross: p1 %d p2 %d c1 %d c2 %d", row(g, "p1"), row(g, "p2"), row(g, "c1"), row(g, "c2"))
	}
}

func TestLayoutGraphToleratesBadInput(t *testing.T) {
	t.Parallel()
	// A cycle, a self edge, an edge to nowhere, a duplicate edge: no panic,
	// every node placed once.
	g := layoutGraph(wf([]string{"a", "b", "c"}, [2]string{"a", "b"}, [2]string{"b", "a"}, [2]string{"c", "c"},
		[2]string{"a", "ghost"}, [2]string{"c", "a"}, [2]string{"c", "a"}), nil)
	if len(g.Nodes) != 3 {
		t.Fatalf("%d nodes", len(g.Nodes))
	}
	seen := map[[2]int]bool{}
	for _, n := range g.Nodes {
		if seen[[2]int{n.X, n.Y}] {
			t.Errorf("two nodes at %d,%d", n.X, n.Y)
		}
		seen[[2]int{n.X, n.Y}] = true
	}
	if len(g.Edges) != 3 {
		t.Errorf("%d edges, want 3 (a→b, b→a, c→a)", len(g.Edges))
	}
	if g := layoutGraph(&workflow.Workflow{}, nil); len(g.Nodes) != 0 || g.Width <= 0 {
		t.Errorf("empty workflow: %+v", g)
	}
}

func TestLayoutGraphStates(t *testing.T) {
	t.Parallel()
	w := wf([]string{"a", "b"}, [2]string{"a", "b"})
	w.Nodes[0].Config["can_communicate"] = true
	w.Nodes[0].Config["name"] = "An agent with a name far too long for its box"
	t0 := time.Now()
	t1 := t0.Add(1500 * time.Millisecond)
	g := layoutGraph(w, map[string]*workflow.NodeState{"a": {Status: workflow.NodeCompleted, StartedAt: &t0, FinishedAt: &t1}})
	a, b := g.Nodes[0], g.Nodes[1]
	if !a.Comm || a.State != workflow.NodeCompleted || a.StateText != "done · 1.50 s" || b.State != workflow.NodePending {
		t.Errorf("a %+v b %+v", a, b)
	}
	if len([]rune(a.Label)) != graphLabelN || !strings.HasSuffix(a.Label, "…") {
		t.Errorf("label %q not shortened", a.Label)
	}
	if !g.Edges[0].Done {
		t.Errorf("the edge from a completed node is not marked done")
	}
}

func TestTimelineLayout(t *testing.T) {
	t.Parallel()
	w := wf([]string{"s", "t", "c"})
	for i := range w.Nodes {
		w.Nodes[i].Config["can_communicate"] = true
	}
	t0 := time.Now()
	log := []workflow.CommEntry{
		{Time: t0.Add(100 * time.Millisecond), From: "s", To: "t", Type: workflow.CommAsk, Content: "Why is the sky blue?", Metadata: map[string]any{"message_id": "query:node-x-s:node-x-t:1700000000.123456-abcdef12"}},
		{Time: t0.Add(600 * time.Millisecond), From: "t", To: "s", Type: workflow.CommResponse, Content: "Rayleigh scattering.", Metadata: map[string]any{"latency_ms": 512.3, "success": true}},
		{Time: t0.Add(700 * time.Millisecond), From: "c", To: "*", Type: workflow.CommBroadcast, Content: "done", Metadata: map[string]any{"recipients": []any{"s", "t"}}},
		{Time: t0.Add(800 * time.Millisecond), From: "s", Type: workflow.CommContext, Content: `topic = "sky"`},
		{Time: t0.Add(900 * time.Millisecond), From: "t", To: "s", Type: workflow.CommResponse, Metadata: map[string]any{"success": false, "error": "no answer from \"s\" within 30s"}},
	}
	tl := layoutTimeline(w, log, t0)
	if len(tl.Lanes) != 3 || len(tl.Rows) != 5 {
		t.Fatalf("%d lanes, %d rows", len(tl.Lanes), len(tl.Rows))
	}
	ask, resp, bc, ctx, failed := tl.Rows[0], tl.Rows[1], tl.Rows[2], tl.Rows[3], tl.Rows[4]
	if ask.X1 != tl.Lanes[0].X || ask.X2 != tl.Lanes[1].X || !strings.HasPrefix(ask.Label, "ask: Why is") || !strings.Contains(ask.Meta, "id …") {
		t.Errorf("ask row %+v", ask)
	}
	if resp.X1 != tl.Lanes[1].X || resp.X2 != tl.Lanes[0].X || resp.Meta != "512 ms" || resp.Time != "+0.60 s" {
		t.Errorf("response row %+v", resp)
	}
	if len(bc.Targets) != 2 || bc.Anchor != "end" {
		t.Errorf("broadcast row %+v", bc)
	}
	if ctx.X1 != ctx.X2 || !strings.HasPrefix(ctx.Label, "shared: topic") {
		t.Errorf("context row %+v", ctx)
	}
	if !failed.Failed || !strings.HasPrefix(failed.Label, "no answer") {
		t.Errorf("failed row %+v", failed)
	}
	for i := 1; i < len(tl.Rows); i++ {
		if tl.Rows[i].Y <= tl.Rows[i-1].Y {
			t.Errorf("rows out of order at %d", i)
		}
	}
	v := messageView(w, 0, log[0], t0)
	if v.KindLabel != "ask" || v.MessageID == "" || v.Offset != "+0.10 s" {
		t.Errorf("message view %+v", v)
	}
}

// The SVG templates escape user text like the rest of the page.
func TestGraphAndTimelineEscape(t *testing.T) {
	t.Parallel()
	u, err := newUI(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	w := wf([]string{"a", "b"}, [2]string{"a", "b"})
	w.Nodes[0].Config["name"] = `<script>alert(1)</script>`
	w.Nodes[0].Config["can_communicate"] = true
	w.Nodes[1].Config["can_communicate"] = true
	html, err := u.render("", "graph", layoutGraph(w, nil))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("graph does not escape a node name:\n%s", html)
	}
	log := []workflow.CommEntry{{Time: time.Now(), From: "a", To: "b", Type: workflow.CommAsk, Content: `<img src=x onerror=alert(1)>`}}
	html, err = u.render("", "timeline", layoutTimeline(w, log, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<img") || strings.Contains(html, "<script>") {
		t.Errorf("timeline does not escape:\n%s", html)
	}
}
