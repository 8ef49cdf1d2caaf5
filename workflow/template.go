package workflow

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// placeholder matches {{name}}, {{outputs.node.field}}, {{shared.key}} with
// optional spaces inside the braces. Anything else between braces (JSON in a
// prompt, say) is left as text.
var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}`)

// Placeholders returns the names used in text's placeholders, in order, each
// once.
func Placeholders(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// Scope is what a template can refer to.
type Scope struct {
	Vars        map[string]any // workflow variables overridden by run inputs
	Outputs     map[string]any // outputs of finished nodes
	Shared      func(key string) (any, bool)
	ExecutionID string
	WorkflowID  string
}

// Render replaces the placeholders of text. Strings render as they are; other
// values render as JSON. A placeholder that refers to nothing is an error that
// names every such placeholder, never a silent literal.
func Render(text string, sc Scope) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	var missing []string
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		v, ok := lookup(name, sc)
		if !ok {
			missing = append(missing, "{{"+name+"}}")
			return m
		}
		return toText(v)
	})
	if len(missing) > 0 {
		return out, &Error{Code: ErrInvalid, Message: "unknown placeholder " + strings.Join(missing, ", ") +
			": no input, variable, node output or shared key has that name"}
	}
	return out, nil
}

func lookup(name string, sc Scope) (any, bool) {
	parts := strings.Split(name, ".")
	switch {
	case name == "execution_id":
		return sc.ExecutionID, sc.ExecutionID != ""
	case name == "workflow_id":
		return sc.WorkflowID, sc.WorkflowID != ""
	case parts[0] == "outputs" && len(parts) >= 2:
		v, ok := sc.Outputs[parts[1]]
		if !ok {
			return nil, false
		}
		return dig(v, parts[2:])
	case parts[0] == "shared" && len(parts) >= 2 && sc.Shared != nil:
		v, ok := sc.Shared(parts[1])
		if !ok {
			return nil, false
		}
		return dig(v, parts[2:])
	}
	v, ok := sc.Vars[parts[0]]
	if !ok {
		return nil, false
	}
	return dig(v, parts[1:])
}

// dig follows a dotted path into a JSON value. A string that holds a JSON
// object or array is decoded first, since model outputs are text.
func dig(v any, path []string) (any, bool) {
	for _, key := range path {
		if s, ok := v.(string); ok {
			var decoded any
			if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &decoded); err != nil {
				return nil, false
			}
			v = decoded
		}
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[key]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func toText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	case json.Number:
		return x.String()
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
