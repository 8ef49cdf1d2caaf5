package web

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/workflow"
)

// Graph geometry, in SVG user units. The SVG scales to its container; these
// sizes keep the text readable at the scale a typical workflow is shown.
const (
	graphBoxW    = 200
	graphBoxH    = 60
	graphBoxHRun = 74 // with the state line of an execution
	graphColGap  = 76
	graphRowGap  = 26
	graphMargin  = 16
	graphLabelN  = 20 // runes of a node name that fit a box
	graphWorkerN = 10 // runes of a worker name that fit beside the state line
)

// graphView is a laid-out workflow graph, ready for the "graph" template.
type graphView struct {
	Width, Height int
	Nodes         []graphNode
	Edges         []graphEdge
	Live          bool // drawn for an execution: boxes show node states
	Cols          int  // layers, capped at 8: the CSS keeps that many columns readable on a narrow screen
}

// graphNode is one box.
type graphNode struct {
	ID, Type, Name string
	Label          string // Name shortened to fit the box
	Index          int    // position in the workflow's nodes; anchors #node-N
	X, Y, W, H     int
	Comm           bool   // can_communicate: talks to other nodes
	State          string // node status in an execution; "" outside one
	StateText      string
	Worker         string // the worker it ran on, shortened to fit beside StateText
}

// graphEdge is one arrow, as an SVG path.
type graphEdge struct {
	From, To string
	D        string
	Done     bool // the source node completed (executions only)
	// When is the branch a condition's edge belongs to, drawn at LX, LY;
	// Skipped says the edge's target was skipped (executions only).
	When    string
	LX, LY  int
	Skipped bool
}

// layoutGraph places the nodes of w in layers from left to right: a node's
// layer is the longest path to it from a source, so every edge points
// right. Within a layer nodes are ordered by the mean position of their
// neighbours (a few barycenter sweeps), which removes most crossings of the
// small graphs workflows are. states, when not nil, colours boxes by the
// execution's node states. Edges naming missing nodes are left out; nodes on
// a cycle (which validation refuses) go after the others.
func layoutGraph(w *workflow.Workflow, states map[string]*workflow.NodeState) graphView {
	n := len(w.Nodes)
	wg := w.Graph()
	// The boxes' neighbours: the graph's parents and children, less
	// self-loops (only on an invalid, cyclic graph), which have no arrow.
	parents, children := wg.Parents, wg.Children
	type pair struct{ a, b int }
	var edges []pair
	loops := false
	for b, ps := range parents {
		for _, a := range ps {
			if a != b {
				edges = append(edges, pair{a, b})
			} else {
				loops = true
			}
		}
	}
	if loops {
		parents, children = withoutSelf(parents), withoutSelf(children)
	}

	// Longest path from a source, over the graph's topological order.
	layer := make([]int, n)
	placed := make([]bool, n)
	maxLayer := 0
	for _, v := range wg.Order {
		placed[v] = true
		maxLayer = max(maxLayer, layer[v])
		for _, c := range children[v] {
			layer[c] = max(layer[c], layer[v]+1)
		}
	}
	for i := range n {
		if placed[i] {
			continue
		}
		if len(parents[i]) == 0 && len(children[i]) == 0 {
			continue // a repeated id: a box of its own in the first layer
		}
		maxLayer++
		layer[i] = maxLayer
	}
	if n == 0 {
		maxLayer = -1
	}

	layers := make([][]int, maxLayer+1)
	for i := range n {
		layers[layer[i]] = append(layers[layer[i]], i)
	}
	pos := make([]float64, n)
	setPos := func() {
		for _, l := range layers {
			for k, v := range l {
				pos[v] = float64(k)
			}
		}
	}
	setPos()
	sweep := func(l []int, neighbours [][]int) {
		bary := make(map[int]float64, len(l))
		for _, v := range l {
			if len(neighbours[v]) == 0 {
				bary[v] = pos[v]
				continue
			}
			sum := 0.0
			for _, u := range neighbours[v] {
				sum += pos[u]
			}
			bary[v] = sum / float64(len(neighbours[v]))
		}
		sort.SliceStable(l, func(i, j int) bool { return bary[l[i]] < bary[l[j]] })
		for k, v := range l {
			pos[v] = float64(k)
		}
	}
	for range 4 {
		for i := 1; i < len(layers); i++ {
			sweep(layers[i], parents)
		}
		for i := len(layers) - 2; i >= 0; i-- {
			sweep(layers[i], children)
		}
	}

	boxH := graphBoxH
	if states != nil {
		boxH = graphBoxHRun
	}
	rows := 0
	for _, l := range layers {
		rows = max(rows, len(l))
	}
	height := 2*graphMargin + rows*boxH + max(rows-1, 0)*graphRowGap
	width := 2*graphMargin + len(layers)*graphBoxW + max(len(layers)-1, 0)*graphColGap
	g := graphView{Width: max(width, 2*graphMargin+graphBoxW), Height: max(height, 2*graphMargin+boxH),
		Live: states != nil, Cols: min(len(layers), 8)}
	g.Nodes = make([]graphNode, n)
	for li, l := range layers {
		colH := len(l)*boxH + max(len(l)-1, 0)*graphRowGap
		top := (g.Height - colH) / 2
		for k, v := range l {
			nd := &w.Nodes[v]
			gn := graphNode{
				ID: nd.ID, Type: nd.Type, Name: nd.Label(), Index: v,
				X: graphMargin + li*(graphBoxW+graphColGap), Y: top + k*(boxH+graphRowGap),
				W: graphBoxW, H: boxH,
			}
			gn.Label = shorten(gn.Name, graphLabelN)
			gn.Comm = wg.AI[v].CanCommunicate
			if states != nil {
				gn.State = workflow.NodePending
				if st := states[nd.ID]; st != nil && st.Status != "" {
					gn.State = st.Status
					gn.StateText = nodeStateText(st)
					gn.Worker = shorten(st.Worker, graphWorkerN)
				}
				if gn.StateText == "" {
					gn.StateText = gn.State
				}
			}
			g.Nodes[v] = gn
		}
	}
	when := edgeLabels(w)
	for _, e := range edges {
		a, b := g.Nodes[e.a], g.Nodes[e.b]
		x1, y1 := a.X+a.W, a.Y+a.H/2
		x2, y2 := b.X-2, b.Y+b.H/2 // the arrowhead's tip touches the box
		var d string
		if x2 > x1 {
			mx := (x1 + x2) / 2
			d = fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, mx, y1, mx, y2, x2, y2)
		} else {
			// A backward edge (only on an invalid, cyclic graph): loop under.
			low := max(a.Y+a.H, b.Y+b.H) + graphRowGap/2
			d = fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, x1+40, low, x2-40, low, x2, y2)
		}
		ge := graphEdge{From: a.ID, To: b.ID, D: d}
		if states != nil {
			if st := states[a.ID]; st != nil && st.Status == workflow.NodeCompleted {
				ge.Done = true
			}
			if st := states[b.ID]; st != nil && st.Status == workflow.NodeSkipped {
				ge.Skipped = true
			}
		}
		if l := when[[2]string{a.ID, b.ID}]; l != "" && x2 > x1 {
			ge.When = shorten(l, graphLabelN/2)
			ge.LX, ge.LY = labelPoint(x1, y1, x2, y2)
		}
		g.Edges = append(g.Edges, ge)
	}
	return g
}

// withoutSelf returns adjacency lists without each node's own position.
func withoutSelf(adj [][]int) [][]int {
	out := make([][]int, len(adj))
	for i, l := range adj {
		for _, j := range l {
			if j != i {
				out[i] = append(out[i], j)
			}
		}
	}
	return out
}

// nodeStateText is the short line under a node's name in an execution.
func nodeStateText(st *workflow.NodeState) string {
	switch st.Status {
	case workflow.NodeCompleted:
		if d := span(st.StartedAt, st.FinishedAt); d != "" {
			return "done · " + d
		}
		return "done"
	case workflow.NodeRunning:
		return "running…"
	}
	return st.Status
}

// shorten cuts s to n runes, ending with an ellipsis when it was longer.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
