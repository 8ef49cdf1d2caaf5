package workflow

// Order returns the node ids in topological order (see Graph.Order). A
// cycle is an *Error naming the nodes on it, returned with the ids placed
// before it.
func Order(w *Workflow) ([]string, error) {
	g := w.Graph()
	return g.IDs(w, g.Order), g.Err()
}

// findCycle names the nodes of one cycle. Every node left unplaced by Order
// still has a parent that is also unplaced, so walking from one to an unplaced
// parent, again and again, must come back to a node already seen.
func findCycle(w *Workflow, g *Graph, indeg []int) []string {
	children := g.Children
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
