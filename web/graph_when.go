package web

import "github.com/switchboard-dev/switchboard/workflow"

// edgeLabels returns the when of each edge that has one (a condition's
// branches), by its from and to ids; nil when no edge has one.
func edgeLabels(w *workflow.Workflow) map[[2]string]string {
	var m map[[2]string]string
	for _, e := range w.Edges {
		if e.When == "" {
			continue
		}
		if m == nil {
			m = map[[2]string]string{}
		}
		m[[2]string{e.From, e.To}] = e.When
	}
	return m
}

// labelPoint is where an edge's label goes: halfway along the curve
// layoutGraph draws from (x1, y1) to (x2, y2), where the branches of one
// condition are furthest apart before their targets; the halo of the text
// (app.css) keeps it readable over the line.
func labelPoint(x1, y1, x2, y2 int) (int, int) {
	const t = 0.5
	mx := float64(x1+x2) / 2
	u := 1 - t
	x := u*u*u*float64(x1) + 3*u*u*t*mx + 3*u*t*t*mx + t*t*t*float64(x2)
	y := u*u*u*float64(y1) + 3*u*u*t*float64(y1) + 3*u*t*t*float64(y2) + t*t*t*float64(y2)
	return int(x), int(y) + 4 // the text's middle on the line
}
