package workflow

import (
	"container/heap"
	"strings"
)

// Order returns the node ids in topological order, stable on the order of
// w.Nodes: among the nodes whose parents are all placed, the one listed first
// comes first. Edges that name missing nodes are ignored here (Validate
// reports them). A cycle is an *Error naming the nodes on it.
func Order(w *Workflow) ([]string, error) {
	index := make(map[string]int, len(w.Nodes))
	for i, n := range w.Nodes {
		if _, dup := index[n.ID]; !dup {
			index[n.ID] = i
		}
	}
	indeg := make([]int, len(w.Nodes))
	children := make([][]int, len(w.Nodes))
	for _, e := range w.Edges {
		from, ok1 := index[e.From]
		to, ok2 := index[e.To]
		if !ok1 || !ok2 {
			continue
		}
		children[from] = append(children[from], to)
		indeg[to]++
	}
	ready := &intHeap{}
	for i := range w.Nodes {
		if indeg[i] == 0 && index[w.Nodes[i].ID] == i {
			heap.Push(ready, i)
		}
	}
	order := make([]string, 0, len(w.Nodes))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, w.Nodes[i].ID)
		for _, c := range children[i] {
			indeg[c]--
			if indeg[c] == 0 {
				heap.Push(ready, c)
			}
		}
	}
	if len(order) < len(index) {
		cycle := findCycle(w, children, indeg)
		return order, &Error{Code: CodeInvalid, Message: "workflow has a cycle", Problems: []Problem{{
			Path:    "edges",
			Message: "the edges form a cycle: " + strings.Join(cycle, " → "),
		}}}
	}
	return order, nil
}

// findCycle names the nodes of one cycle. Every node left unplaced by Order
// still has a parent that is also unplaced, so walking from one to an unplaced
// parent, again and again, must come back to a node already seen.
func findCycle(w *Workflow, children [][]int, indeg []int) []string {
	parent := make([]int, len(w.Nodes))
	for i := range parent {
		parent[i] = -1
	}
	for from, cs := range children {
		for _, to := range cs {
			if indeg[from] > 0 && indeg[to] > 0 && parent[to] < 0 {
				parent[to] = from
			}
		}
	}
	start := -1
	for i := range w.Nodes {
		if indeg[i] > 0 {
			start = i
			break
		}
	}
	seen := map[int]int{}
	var walk []int
	for cur := start; cur >= 0; cur = parent[cur] {
		if at, ok := seen[cur]; ok {
			loop := walk[at:]
			// The walk went against the edges: reverse it, and start at the
			// node listed first so the message is stable.
			first := 0
			for k := range loop {
				if loop[k] < loop[first] {
					first = k
				}
			}
			names := make([]string, 0, len(loop)+1)
			for k := 0; k <= len(loop); k++ {
				names = append(names, w.Nodes[loop[(first-k+len(loop))%len(loop)]].ID)
			}
			return names
		}
		seen[cur] = len(walk)
		walk = append(walk, cur)
	}
	return []string{w.Nodes[start].ID}
}

// Parents returns, for each node id, the ids of the nodes with an edge into it,
// in edge order without repeats.
func Parents(w *Workflow) map[string][]string {
	p := make(map[string][]string, len(w.Nodes))
	seen := map[Edge]bool{}
	for _, e := range w.Edges {
		if seen[e] {
			continue
		}
		seen[e] = true
		p[e.To] = append(p[e.To], e.From)
	}
	return p
}

// Ancestors returns, for each node id, the set of nodes that must finish
// before it runs.
func Ancestors(w *Workflow) map[string]map[string]bool {
	parents := Parents(w)
	memo := make(map[string]map[string]bool, len(w.Nodes))
	var visit func(id string, stack map[string]bool) map[string]bool
	visit = func(id string, stack map[string]bool) map[string]bool {
		if a, ok := memo[id]; ok {
			return a
		}
		if stack[id] { // a cycle; Order reports it
			return map[string]bool{}
		}
		stack[id] = true
		a := map[string]bool{}
		for _, p := range parents[id] {
			a[p] = true
			for q := range visit(p, stack) {
				a[q] = true
			}
		}
		delete(stack, id)
		memo[id] = a
		return a
	}
	for _, n := range w.Nodes {
		visit(n.ID, map[string]bool{})
	}
	return memo
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
