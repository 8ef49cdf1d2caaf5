package workflow

import (
	"container/heap"
	"strings"
)

// Graph is what a workflow's nodes and edges imply, worked out once and
// shared by the validator, the executor and the dashboard: the order nodes
// run in, each node's parents and children, and each ai-processor's typed
// settings. Nodes are known by their position in Workflow.Nodes. A Graph is
// never changed once built, so it is safe for concurrent use.
//
// Edges naming a missing node, and nodes whose id repeats an earlier one's,
// take no part in Order, Parents or Children (Validate reports them).
type Graph struct {
	// Order holds the node positions in topological order, stable on the
	// order of the nodes: among the nodes whose parents are all placed, the
	// one listed first comes first. Nodes on a cycle are left out.
	Order []int
	// Index is each id's position: that of the first node with the id.
	Index map[string]int
	// Parents holds, by position, the positions of the node's parents, in
	// edge order without repeats.
	Parents [][]int
	// Children holds, by position, the positions of the node's children,
	// in Order (then those on a cycle, in node order), without repeats.
	Children [][]int
	// AI holds, by position, the ai-processor settings of each node (the
	// zero AIConfig, named after the node, for other types).
	AI []AIConfig
	// Dangling lists the positions in Workflow.Edges of edges that name a
	// node that is not in the workflow.
	Dangling []int

	err *Error // the cycle, when there is one

	// What the graph was built from, so that a workflow whose nodes or
	// edges were replaced since gets a new one.
	nodes *Node
	edges *Edge
	n, m  int
}

// Err returns the *Error naming the nodes of a cycle, or nil when the
// workflow has none.
func (g *Graph) Err() error {
	if g.err == nil {
		return nil
	}
	return g.err
}

// IDs returns the ids of positions, in their order.
func (g *Graph) IDs(w *Workflow, positions []int) []string {
	ids := make([]string, len(positions))
	for k, i := range positions {
		ids[k] = w.Nodes[i].ID
	}
	return ids
}

// Graph returns w's graph: the one Parse built (Clone keeps it) when w's
// Nodes and Edges are still the slices it was built from, or else one
// built now. A parsed workflow whose node configs, ids or edges are
// changed in place keeps its old graph; change a parsed workflow by
// parsing it again. Graph does not change w, so concurrent calls are safe.
func (w *Workflow) Graph() *Graph {
	if g := w.graph; g != nil && g.builtFrom(w) {
		return g
	}
	return NewGraph(w)
}

// KeepGraph builds w's graph and keeps it with w, as Parse does, so that
// Graph and the clones of w share it instead of building one each. It
// changes w: call it before w is shared.
func (w *Workflow) KeepGraph() { w.graph = NewGraph(w) }

func (g *Graph) builtFrom(w *Workflow) bool {
	return g.n == len(w.Nodes) && g.m == len(w.Edges) &&
		(g.n == 0 || g.nodes == &w.Nodes[0]) && (g.m == 0 || g.edges == &w.Edges[0])
}

// bind records that g describes w's nodes and edges.
func (g *Graph) bind(w *Workflow) {
	g.n, g.m, g.nodes, g.edges = len(w.Nodes), len(w.Edges), nil, nil
	if g.n > 0 {
		g.nodes = &w.Nodes[0]
	}
	if g.m > 0 {
		g.edges = &w.Edges[0]
	}
}

// NewGraph works out the graph of w. It never fails: a cycle is reported
// by Err.
func NewGraph(w *Workflow) *Graph {
	n := len(w.Nodes)
	g := &Graph{
		Index:    make(map[string]int, n),
		Parents:  make([][]int, n),
		Children: make([][]int, n),
		AI:       make([]AIConfig, n),
	}
	g.bind(w)
	for i := range w.Nodes {
		nd := &w.Nodes[i]
		if _, dup := g.Index[nd.ID]; !dup {
			g.Index[nd.ID] = i
		}
		if nd.Type == NodeAIProcessor {
			g.AI[i] = nd.AI()
		} else {
			g.AI[i] = AIConfig{Name: nd.ID}
		}
	}
	// A repeated edge is found in its node's parents, not in a map of all
	// edges: nodes have few parents (k parents cost k²/2 comparisons).
	indeg := make([]int, n)
	for k, e := range w.Edges {
		from, ok1 := g.Index[e.From]
		to, ok2 := g.Index[e.To]
		if !ok1 || !ok2 {
			g.Dangling = append(g.Dangling, k)
			continue
		}
		if !containsInt(g.Parents[to], from) {
			g.Parents[to] = append(g.Parents[to], from)
			indeg[to]++
		}
	}
	// Kahn's algorithm, taking the ready node listed first each time.
	left := append([]int(nil), indeg...)
	ready := &intHeap{}
	byParent := make([][]int, n) // children in edge order, to release them
	for to, ps := range g.Parents {
		for _, from := range ps {
			byParent[from] = append(byParent[from], to)
		}
	}
	for i := range w.Nodes {
		if indeg[i] == 0 && g.Index[w.Nodes[i].ID] == i {
			heap.Push(ready, i)
		}
	}
	g.Order = make([]int, 0, n)
	placed := make([]bool, n)
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		g.Order = append(g.Order, i)
		placed[i] = true
		for _, c := range byParent[i] {
			if left[c]--; left[c] == 0 {
				heap.Push(ready, c)
			}
		}
	}
	addChildren := func(i int) {
		for _, p := range g.Parents[i] {
			g.Children[p] = append(g.Children[p], i)
		}
	}
	for _, i := range g.Order {
		addChildren(i)
	}
	unique := 0
	for i := range w.Nodes {
		if g.Index[w.Nodes[i].ID] == i {
			unique++
			if !placed[i] {
				addChildren(i)
			}
		}
	}
	if len(g.Order) < unique {
		g.err = &Error{Code: CodeInvalid, Message: "workflow has a cycle", Problems: []Problem{{
			Path:    "edges",
			Message: "the edges form a cycle: " + strings.Join(findCycle(w, g, left), " → "),
		}}}
	}
	return g
}

// Ancestors returns, by position, the set of positions that must finish
// before each node runs. Nodes on a cycle get the ancestors found before
// the cycle closes.
func (g *Graph) Ancestors() []map[int]bool {
	anc := make([]map[int]bool, len(g.Parents))
	var visit func(i int) map[int]bool
	visit = func(i int) map[int]bool {
		if anc[i] != nil {
			return anc[i]
		}
		a := map[int]bool{}
		anc[i] = a // a cycle comes back here and finds what is known so far
		for _, p := range g.Parents[i] {
			a[p] = true
			for q := range visit(p) {
				a[q] = true
			}
		}
		return a
	}
	for i := range anc {
		visit(i)
	}
	return anc
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
