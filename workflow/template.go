package workflow

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A placeholder is {{name}}, {{outputs.node.field}}, {{shared.key}}: a name
// of segments, the first starting with a letter or _, the others of
// letters, digits, _ and -, joined by dots, with optional white space
// (\t \n \f \r and space) inside the braces. Anything else between
// braces (JSON in a prompt, say) is left as text. It is the language of
// the regular expression
//
//	\{\{\s*([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}
//
// matched leftmost first, without overlaps, as nextPlaceholder scans it by
// hand: templates are rendered for every node of every execution, and the
// regular expression engine cost more than the rest of rendering.

// nextPlaceholder finds the first placeholder in text at or after from. It
// returns the placeholder's span [start, end) and its name, or start -1.
func nextPlaceholder(text string, from int) (start, end int, name string) {
	for {
		i := strings.Index(text[from:], "{{")
		if i < 0 {
			return -1, -1, ""
		}
		start = from + i
		p := start + 2
		for p < len(text) && isTemplateSpace(text[p]) {
			p++
		}
		nameStart := p
		if p < len(text) && (isLetter(text[p]) || text[p] == '_') {
			p++
			for p < len(text) && isSegmentByte(text[p]) {
				p++
			}
			for p+1 < len(text) && text[p] == '.' && isSegmentByte(text[p+1]) {
				p += 2
				for p < len(text) && isSegmentByte(text[p]) {
					p++
				}
			}
			nameEnd := p
			for p < len(text) && isTemplateSpace(text[p]) {
				p++
			}
			if strings.HasPrefix(text[p:], "}}") {
				return start, p + 2, text[nameStart:nameEnd]
			}
		}
		from = start + 1 // no placeholder starts here; one may start at the next brace
	}
}

func isTemplateSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\f' || b == '\r'
}

func isLetter(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

func isSegmentByte(b byte) bool {
	return isLetter(b) || '0' <= b && b <= '9' || b == '_' || b == '-'
}

// Placeholders returns the names used in text's placeholders, in order, each
// once.
func Placeholders(text string) []string {
	var out []string
	seen := map[string]bool{}
	for at := 0; ; {
		start, end, name := nextPlaceholder(text, at)
		if start < 0 {
			return out
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
		at = end
	}
}

// Scope is what a template can refer to.
type Scope struct {
	Vars        map[string]any // workflow variables overridden by run inputs
	Outputs     map[string]any // outputs of finished nodes
	Shared      func(key string) (any, bool)
	ExecutionID string
	WorkflowID  string
	// Output, when set, is asked for node outputs instead of Outputs, so
	// that the executor can read them where it keeps them instead of
	// copying those a template names into a map for every node.
	Output func(node string) (any, bool)
	// Trigger is what started the execution: {{trigger.body.x}} and the
	// like read it. A dotted name under "trigger" never reads a variable.
	Trigger *Trigger
}

// Render replaces the placeholders of text. Strings render as they are; other
// values render as JSON. A placeholder that refers to nothing is an error that
// names every such placeholder, never a silent literal.
func Render(text string, sc Scope) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	var (
		missing []string
		b       strings.Builder
		last    int
	)
	for at := 0; ; {
		start, end, name := nextPlaceholder(text, at)
		if start < 0 {
			break
		}
		if b.Len() == 0 {
			b.Grow(len(text) + 64)
		}
		b.WriteString(text[last:start])
		if v, ok := lookup(name, sc); ok {
			b.WriteString(toText(v))
		} else {
			missing = append(missing, "{{"+name+"}}")
			b.WriteString(text[start:end])
		}
		last, at = end, end
	}
	out := text
	if last > 0 {
		b.WriteString(text[last:])
		out = b.String()
	}
	if len(missing) > 0 {
		return out, &Error{Code: CodeInvalid, Message: "unknown placeholder " + strings.Join(missing, ", ") +
			": no input, variable, node output or shared key has that name"}
	}
	return out, nil
}

// lookup finds a placeholder's value. Names are cut at their dots as they
// are read, not split into a slice: lookup runs for every placeholder of
// every node of every execution.
func lookup(name string, sc Scope) (any, bool) {
	head, rest, dotted := strings.Cut(name, ".")
	switch {
	case name == "execution_id":
		return sc.ExecutionID, sc.ExecutionID != ""
	case name == "workflow_id":
		return sc.WorkflowID, sc.WorkflowID != ""
	case name == "timestamp" && sc.Vars["timestamp"] == nil:
		// The original service's webhook and email nodes offered it; a
		// variable of that name wins.
		return time.Now().UTC().Format(time.RFC3339), true
	case head == "outputs" && dotted:
		key, path, more := strings.Cut(rest, ".")
		var v any
		var ok bool
		if sc.Output != nil {
			v, ok = sc.Output(key)
		} else {
			v, ok = sc.Outputs[key]
		}
		if !ok {
			return nil, false
		}
		return dig(v, path, more)
	case head == "trigger" && dotted:
		return lookupTrigger(sc.Trigger, rest)
	case head == "shared" && dotted && sc.Shared != nil:
		key, path, more := strings.Cut(rest, ".")
		v, ok := sc.Shared(key)
		if !ok {
			return nil, false
		}
		return dig(v, path, more)
	}
	v, ok := sc.Vars[head]
	if !ok {
		return nil, false
	}
	return dig(v, rest, dotted)
}

// dig follows a dotted path into a JSON value; more says whether there is
// a path at all (an empty one is one empty key). A string that holds a JSON
// object or array is decoded first, since model outputs are text.
func dig(v any, path string, more bool) (any, bool) {
	for more {
		var key string
		key, path, more = strings.Cut(path, ".")
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
