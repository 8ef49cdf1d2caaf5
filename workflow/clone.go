package workflow

// Clone returns a deep copy of w: its open maps (metadata, node config and
// position, variable values) are copied all the way down, so the copy can
// be changed without touching w. Values are those JSON decoding makes
// (maps, slices, strings, numbers, booleans, nil); any other value is
// shared, being immutable in practice.
func (w *Workflow) Clone() *Workflow {
	c := *w
	c.Metadata = cloneMap(w.Metadata)
	if w.Nodes != nil {
		c.Nodes = make([]Node, len(w.Nodes))
		for i, n := range w.Nodes {
			n.Position = cloneMap(n.Position)
			n.Config = cloneMap(n.Config)
			c.Nodes[i] = n
		}
	}
	if w.Edges != nil {
		c.Edges = append([]Edge(nil), w.Edges...)
	}
	if w.Variables != nil {
		c.Variables = make([]Variable, len(w.Variables))
		for i, v := range w.Variables {
			v.Value = cloneValue(v.Value)
			c.Variables[i] = v
		}
	}
	// The copy has the same ids, types, configs and edges: it shares the
	// graph, bound to its own slices.
	c.graph = nil
	if g := w.graph; g != nil && g.builtFrom(w) {
		cg := *g
		cg.bind(&c)
		c.graph = &cg
	}
	return &c
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneValue(v)
	}
	return c
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneMap(v)
	case []any:
		if v == nil {
			return v
		}
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneValue(e)
		}
		return c
	}
	return v
}
