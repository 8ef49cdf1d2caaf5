package executor

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/workflow"
)

// routeStop is the route of a filter that stopped: none of its edges is
// taken.
const routeStop = "\x00stop"

// setRoute records the branch a condition took, or routeStop for a filter
// that stopped; the scheduler reads it when the node has finished.
func (x *execution) setRoute(node, route string) {
	x.mu.Lock()
	if x.routes == nil {
		x.routes = map[string]string{}
	}
	x.routes[node] = route
	x.mu.Unlock()
}

func (x *execution) route(node string) (string, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r, ok := x.routes[node]
	return r, ok
}

// exprEnv is what an expression of node can read, copied under the lock.
func (x *execution) exprEnv(node string) workflow.ExprEnv {
	input := x.endOutput(node)
	x.mu.Lock()
	defer x.mu.Unlock()
	env := workflow.ExprEnv{
		Inputs:  make(map[string]any, len(x.vars)),
		Outputs: make(map[string]any, len(x.outputs)),
		Shared:  make(map[string]any, len(x.shared)),
		Input:   input, ExecutionID: x.rec.ID, WorkflowID: x.wf.ID,
	}
	for k, v := range x.vars {
		env.Inputs[k] = v
	}
	for k, v := range x.outputs {
		env.Outputs[k] = v
	}
	for k, v := range x.shared {
		env.Shared[k] = v
	}
	return env
}

// evaluate runs the expression of a condition, filter or transformer node.
// It was compiled at import; it is compiled again here (microseconds), as
// the parsed workflow keeps no programs.
func (x *execution) evaluate(node *workflow.Node, asBool bool) (any, error) {
	p, err := workflow.CompileExpression(node.Expression(), asBool)
	if err != nil {
		return nil, workflow.Errorf(workflow.CodeInvalid, "node %q: %v", node.ID, err)
	}
	v, err := workflow.RunExpression(p, x.exprEnv(node.ID))
	if err != nil {
		return nil, workflow.Errorf(workflow.CodeInvalid, "node %q: %v", node.ID, err)
	}
	return v, nil
}

// runCondition evaluates a condition and records the branch it takes; its
// output is the expression's value.
func (x *execution) runCondition(node *workflow.Node) (any, error) {
	v, err := x.evaluate(node, false)
	if err != nil {
		return nil, err
	}
	label, err := workflow.BranchLabel(v)
	if err != nil {
		return nil, workflow.Errorf(workflow.CodeInvalid, "node %q: %v", node.ID, err)
	}
	x.setRoute(node.ID, label)
	x.log(slog.LevelInfo, node.ID, "Condition %s took branch %q", node.ID, label)
	return v, nil
}

// runFilter passes its input on when its condition holds; otherwise it
// stops, and the nodes reached only through it are skipped (not an error).
func (x *execution) runFilter(node *workflow.Node) (any, error) {
	v, err := x.evaluate(node, true)
	if err != nil {
		return nil, err
	}
	if pass, _ := v.(bool); !pass {
		x.setRoute(node.ID, routeStop)
		x.log(slog.LevelInfo, node.ID, "Filter %s stopped: its condition is false, so the nodes after it are skipped", node.ID)
		return nil, nil
	}
	return x.endOutput(node.ID), nil
}

// reevaluated reports whether a resumed execution runs a node of type typ
// again instead of taking its output over: conditions and filters decide
// which branches run, which an output alone does not record, and they are
// cheap and have no side effects.
func reevaluated(typ string) bool {
	return typ == workflow.NodeCondition || typ == workflow.NodeFilter
}

// branching is the part of a schedule that conditions and filters need:
// which edges carry a branch label, which nodes have a parent whose edge
// was taken, and why the others are skipped. A workflow with neither
// conditions nor filters has none, and schedules as before.
type branching struct {
	// when holds, by position, the labels of the node's edges to its
	// children, in the order of the scheduler's children ("" : always).
	when [][]string
	// labels holds, by position, the set of labels of a condition's edges
	// (to tell whether "default" is taken).
	labels []map[string]bool
	live   []bool   // by position: a parent completed and its edge was taken
	reason []string // by position: why the node is skipped if no parent's edge is taken
	ready  []int    // nodes found ready while skipping branches, to run next
}

// branches returns the branching of x's workflow, or nil when it has no
// condition or filter node.
func (x *execution) branches() *branching {
	g, w := x.graph, x.wf
	branches := false
	for i := range w.Nodes {
		if t := w.Nodes[i].Type; t == workflow.NodeCondition || t == workflow.NodeFilter {
			branches = true
			break
		}
	}
	if !branches {
		return nil
	}
	n := len(w.Nodes)
	b := &branching{when: make([][]string, n), labels: make([]map[string]bool, n), live: make([]bool, n), reason: make([]string, n)}
	for _, e := range w.Edges {
		if e.When == "" {
			continue
		}
		from, ok1 := g.Index[e.From]
		to, ok2 := g.Index[e.To]
		if !ok1 || !ok2 {
			continue
		}
		if b.when[from] == nil {
			b.when[from] = make([]string, len(g.Children[from]))
			b.labels[from] = map[string]bool{}
		}
		for k, c := range g.Children[from] {
			if c == to {
				b.when[from][k] = e.When
			}
		}
		b.labels[from][e.When] = true
	}
	return b
}

// settleEdge notes that parent i, which ended with status, settles its
// k-th child c: the child is live when i completed and this edge was
// taken; otherwise the first reason it may be skipped for is kept. s.mu is
// held.
func (s *scheduler) settleEdge(i, k, c int, status string) {
	b := s.br
	if status != workflow.NodeCompleted {
		return // a failure blocks c (finished does that)
	}
	id := s.x.wf.Nodes[i].ID
	route, routed := s.x.route(id)
	label := ""
	if b.when[i] != nil {
		label = b.when[i][k]
	}
	switch {
	case route == routeStop:
		if b.reason[c] == "" {
			b.reason[c] = fmt.Sprintf("skipped: filter %q stopped", id)
		}
	case !routed || label == "" || label == route || (label == workflow.WhenDefault && !b.labels[i][route]):
		b.live[c] = true
	default:
		if b.reason[c] == "" {
			b.reason[c] = fmt.Sprintf("skipped: condition %q took branch %q, not %q", id, route, label)
		}
	}
}

// skipBranch settles node i, which no taken edge reaches: it is skipped
// (cancelled when the execution is), and so are the children it alone
// reached. Children that another taken edge reaches are queued in
// s.br.ready. s.mu is held.
func (s *scheduler) skipBranch(i int) {
	b := s.br
	var ctx context.Context = s.ctx
	id := s.x.wf.Nodes[i].ID
	s.x.nodeState(id, func(st *workflow.NodeState) {
		if ctx.Err() != nil {
			st.Status = workflow.NodeCancelled
			st.Error = "cancelled: " + context.Cause(ctx).Error()
			return
		}
		st.Status = workflow.NodeSkipped
		st.Error = b.reason[i]
	})
	for _, c := range s.children[i] {
		if b.reason[c] == "" {
			b.reason[c] = fmt.Sprintf("skipped: only reached through skipped branches (node %q was skipped)", id)
		}
		if s.waiting[c]--; s.waiting[c] > 0 {
			continue
		}
		switch {
		case s.blocked[c] != "":
			s.skip(c, s.blocked[c])
		case !b.live[c]:
			s.skipBranch(c)
		case ctx.Err() != nil:
			s.x.nodeState(s.x.wf.Nodes[c].ID, func(st *workflow.NodeState) { st.Status = workflow.NodeCancelled })
		default:
			b.ready = append(b.ready, c)
		}
	}
}
