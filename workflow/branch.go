package workflow

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// WhenDefault on an edge leaving a condition is taken when no other edge of
// that condition carries the label the condition returned.
const WhenDefault = "default"

// BranchLabel is the label of the branch a condition's result chooses: a
// boolean gives "true" or "false", a string itself, a whole number its
// decimal text. Anything else is an error naming what it was.
func BranchLabel(v any) (string, error) {
	switch x := v.(type) {
	case bool:
		return strconv.FormatBool(x), nil
	case string:
		if x == "" {
			return "", fmt.Errorf("the condition returned an empty string; want true, false or a case label")
		}
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case json.Number:
		return x.String(), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10), nil
		}
	}
	return "", fmt.Errorf("the condition returned %s; want true, false, a case label (a string) or a whole number", describe(v))
}

// validateWhen checks the when of every edge: an edge leaving a condition
// needs one (its branch), and no other edge may carry one.
func validateWhen(w *Workflow, index map[string]int, add func(string, string, ...any)) {
	for i, e := range w.Edges {
		j, ok := index[e.From]
		if !ok {
			continue
		}
		path := fmt.Sprintf("edges[%d].when", i)
		typ := w.Nodes[j].Type
		switch {
		case typ == NodeCondition && strings.TrimSpace(e.When) == "":
			add(path, "an edge leaving condition node %q needs \"when\": \"true\" or \"false\" (or a case label, or %q)", e.From, WhenDefault)
		case typ != NodeCondition && e.When != "":
			add(path, "only an edge leaving a condition node carries when; %q is a %s node", e.From, typ)
		case hasControl(e.When) || e.When != strings.TrimSpace(e.When):
			add(path, "must not hold control characters or surrounding spaces, not %q", e.When)
		}
	}
}
