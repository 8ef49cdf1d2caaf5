package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Parse decodes a workflow document and validates it. Every problem found is
// returned at once in a *Error with code CodeInvalid, each located by its JSON
// path; a body that is not JSON at all gives code CodeMalformed. Parse never
// panics on any input.
func Parse(data []byte) (*Workflow, error) {
	raw, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	d := decoder{}
	w := d.workflow(raw)
	w.graph = NewGraph(w)
	d.problems = append(d.problems, Validate(w)...)
	if len(d.problems) > 0 {
		return w, &Error{Code: CodeInvalid, Message: "workflow is invalid", Problems: dedupe(d.problems)}
	}
	return w, nil
}

// decodeJSON decodes one JSON value, keeping numbers exact, and reports a
// syntax error with its line and column.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, malformed(data, err)
	}
	if dec.More() {
		return nil, &Error{Code: CodeMalformed, Message: "malformed JSON: unexpected data after the document"}
	}
	return v, nil
}

func malformed(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, se.Offset)
		return &Error{Code: CodeMalformed, Message: fmt.Sprintf("malformed JSON at line %d, column %d: %s", line, col, se.Error()), Err: err}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || len(bytes.TrimSpace(data)) == 0 {
		return &Error{Code: CodeMalformed, Message: "malformed JSON: the body is empty or ends early", Err: err}
	}
	return &Error{Code: CodeMalformed, Message: "malformed JSON: " + err.Error(), Err: err}
}

func position(data []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

type decoder struct {
	problems []Problem
}

func (d *decoder) add(path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

var topLevelKeys = map[string]bool{
	"name": true, "status": true, "metadata": true, "nodes": true, "edges": true, "variables": true,
	// Written by exports of stored workflows; accepted and ignored on import.
	"id": true, "_id": true, "created_at": true, "updated_at": true,
}

func (d *decoder) workflow(v any) *Workflow {
	w := &Workflow{Metadata: map[string]any{}, Nodes: []Node{}, Edges: []Edge{}, Variables: []Variable{}}
	obj, ok := v.(map[string]any)
	if !ok {
		d.add("", "the document must be a JSON object, not %s", kind(v))
		return w
	}
	for _, k := range sortedKeys(obj) {
		if !topLevelKeys[k] {
			d.add(k, "unknown field; a workflow has name, status, metadata, nodes, edges and variables")
		}
	}
	w.Name = d.str(obj, "name", "name")
	w.Status = d.str(obj, "status", "status")
	if m, ok := d.object(obj, "metadata", "metadata"); ok {
		w.Metadata = m
	}
	if arr, ok := d.array(obj, "nodes", "nodes"); ok {
		for i, item := range arr {
			w.Nodes = append(w.Nodes, d.node(fmt.Sprintf("nodes[%d]", i), item))
		}
	}
	if arr, ok := d.array(obj, "edges", "edges"); ok {
		for i, item := range arr {
			w.Edges = append(w.Edges, d.edge(fmt.Sprintf("edges[%d]", i), item))
		}
	}
	if arr, ok := d.array(obj, "variables", "variables"); ok {
		for i, item := range arr {
			w.Variables = append(w.Variables, d.variable(fmt.Sprintf("variables[%d]", i), item))
		}
	}
	return w
}

func (d *decoder) node(path string, v any) Node {
	n := Node{Config: map[string]any{}}
	obj, ok := v.(map[string]any)
	if !ok {
		d.add(path, "a node must be an object, not %s", kind(v))
		return n
	}
	n.ID = d.str(obj, "id", path+".id")
	n.Type = d.str(obj, "type", path+".type")
	if p, ok := d.object(obj, "position", path+".position"); ok {
		n.Position = p
	}
	if c, ok := d.object(obj, "config", path+".config"); ok {
		n.Config = c
	}
	return n
}

func (d *decoder) edge(path string, v any) Edge {
	obj, ok := v.(map[string]any)
	if !ok {
		d.add(path, "an edge must be an object with from and to, not %s", kind(v))
		return Edge{}
	}
	return Edge{From: d.str(obj, "from", path+".from"), To: d.str(obj, "to", path+".to"), When: d.str(obj, "when", path+".when")}
}

func (d *decoder) variable(path string, v any) Variable {
	obj, ok := v.(map[string]any)
	if !ok {
		d.add(path, "a variable must be an object, not %s", kind(v))
		return Variable{}
	}
	va := Variable{
		ID:          d.str(obj, "id", path+".id"),
		Name:        d.str(obj, "name", path+".name"),
		Value:       obj["value"],
		Type:        d.str(obj, "type", path+".type"),
		Description: d.str(obj, "description", path+".description"),
		Scope:       d.str(obj, "scope", path+".scope"),
	}
	if s, present := obj["secret"]; present && s != nil {
		b, ok := s.(bool)
		if !ok {
			d.add(path+".secret", "must be true or false, not %s", kind(s))
		}
		va.Secret = b
	}
	return va
}

// str reads an optional string field; a present non-string is a problem.
func (d *decoder) str(obj map[string]any, key, path string) string {
	v, ok := obj[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.add(path, "must be a string, not %s", kind(v))
	}
	return s
}

func (d *decoder) object(obj map[string]any, key, path string) (map[string]any, bool) {
	v, ok := obj[key]
	if !ok || v == nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.add(path, "must be an object, not %s", kind(v))
	}
	return m, ok
}

func (d *decoder) array(obj map[string]any, key, path string) ([]any, bool) {
	v, ok := obj[key]
	if !ok || v == nil {
		return nil, false
	}
	a, ok := v.([]any)
	if !ok {
		d.add(path, "must be an array, not %s", kind(v))
	}
	return a, ok
}

func kind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, int:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", x)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func dedupe(ps []Problem) []Problem {
	seen := make(map[Problem]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Validate checks a decoded workflow and returns every problem found, each
// with its JSON path. It does not check field types that decoding already
// fixed (see Parse).
func Validate(w *Workflow) []Problem {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(w.Name) == "" {
		add("name", "a workflow needs a name")
	} else if hasControl(w.Name) {
		add("name", "may not contain control characters, not %q", w.Name)
	}
	switch w.Status {
	case "", StatusDraft, StatusActive:
	default:
		add("status", "must be %q or %q, not %q", StatusDraft, StatusActive, w.Status)
	}
	validateMetadata(w.Metadata, add)
	validateOnBudget(w.Metadata, add)

	if len(w.Nodes) == 0 {
		add("nodes", "a workflow needs at least one node")
	}
	index := make(map[string]int, len(w.Nodes))
	start := -1
	for i := range w.Nodes {
		n := &w.Nodes[i]
		path := fmt.Sprintf("nodes[%d]", i)
		switch {
		case strings.TrimSpace(n.ID) == "":
			add(path+".id", "a node needs an id")
		case hasControl(n.ID):
			add(path+".id", "node id %q may not contain control characters", n.ID)
		case strings.ContainsAny(n.ID, " \t\n:*?[]"):
			add(path+".id", "node id %q may not contain spaces or any of : * ? [ ] (it names a Redis channel)", n.ID)
		default:
			if j, dup := index[n.ID]; dup {
				add(path+".id", "duplicate node id %q (also nodes[%d])", n.ID, j)
			} else {
				index[n.ID] = i
			}
		}
		validatePosition(path+".position", n.Position, add)
		switch n.Type {
		case NodeStart:
			// Inputs enter at one place: a second start would be a second,
			// unconnected copy of them.
			if start >= 0 {
				add(path+".type", "a workflow has one start node; nodes[%d] is already one", start)
			} else {
				start = i
			}
		case NodeEnd:
		case NodeAIProcessor:
			validateAIConfig(path+".config", n.Config, add)
		case NodeHTTP, NodeWebhook, NodeCondition, NodeFilter, NodeTransformer, NodeDelay, NodeEmail:
			validateAction(path+".config", n, add)
		case NodeHuman:
			validateHumanConfig(path+".config", n.Config, add)
		case "":
			add(path+".type", "a node needs a type (%s)", nodeTypeList)
		default:
			add(path+".type", "unknown node type %q; this version runs %s", n.Type, nodeTypeList)
		}
	}
	edges := make(map[Edge]int, len(w.Edges))
	for i, e := range w.Edges {
		path := fmt.Sprintf("edges[%d]", i)
		if j, dup := edges[Edge{From: e.From, To: e.To}]; dup && e.From != "" && e.To != "" {
			add(path, "duplicate edge from %q to %q (also edges[%d])", e.From, e.To, j)
		} else {
			edges[Edge{From: e.From, To: e.To}] = i
		}
		if e.From == "" {
			add(path+".from", "an edge needs from")
		} else if _, ok := index[e.From]; !ok {
			add(path+".from", "edge from %q: no node has that id", e.From)
		}
		if e.To == "" {
			add(path+".to", "an edge needs to")
		} else if _, ok := index[e.To]; !ok {
			add(path+".to", "edge to %q: no node has that id", e.To)
		}
	}
	validateWhen(w, index, add)
	vars := map[string]int{}
	for i, v := range w.Variables {
		path := fmt.Sprintf("variables[%d]", i)
		if strings.TrimSpace(v.Name) == "" {
			add(path+".name", "a variable needs a name")
			continue
		}
		if hasControl(v.Name) {
			add(path+".name", "variable name %q may not contain control characters", v.Name)
		}
		if v.Type != "" && !variableTypes[v.Type] {
			add(path+".type", "unknown type %q; a variable's type is one of %s", v.Type, variableTypeList)
		}
		if j, dup := vars[v.Name]; dup {
			add(path+".name", "duplicate variable %q (also variables[%d])", v.Name, j)
		}
		vars[v.Name] = i
		if v.Secret && v.Value != nil {
			// Masking one or two characters in free text would garble every
			// record they occur in, so such a value would be shown as it is.
			if s := toText(v.Value); s != "" && len(s) < minSecretLen {
				add(path+".value", "a secret value must be at least %d characters long (or empty, to be given at run time): a shorter one cannot be masked in logs and outputs", minSecretLen)
			}
		}
	}
	g := w.Graph()
	if g.err != nil {
		ps = append(ps, g.err.Problems...)
	}
	ps = append(ps, validateReferences(w, g, index)...)
	ps = append(ps, validateActionRefs(w, g, index)...)
	return ps
}

func validateMetadata(m map[string]any, add func(string, string, ...any)) {
	if v, ok := m["communication_mode"]; ok && v != nil {
		s, _ := v.(string)
		if s != ModeSimple && s != ModePubSub {
			add("metadata.communication_mode", "must be %q or %q, not %s", ModeSimple, ModePubSub, describe(v))
		}
	}
	checkBudgetUSD(m, add)
	for _, l := range metaLimits {
		if v, ok := m[l.key]; ok && v != nil {
			if f, ok := number(v); !ok || f != math.Trunc(f) || f < 1 {
				add("metadata."+l.key, "must be a positive whole number, not %s", describe(v))
			} else if f > l.max {
				add("metadata."+l.key, "must be at most %d, not %s", int64(l.max), describe(v))
			}
		}
	}
	for _, k := range []string{"ask_timeout_seconds", "timeout_seconds"} {
		if v, ok := m[k]; ok && v != nil {
			checkSeconds("metadata."+k, v, add)
		}
	}
	if v, ok := m["http_allow"]; ok {
		checkList("metadata.http_allow", v, "host names", CheckHostPattern, add)
	}
	if v, ok := m["mcp_servers"]; ok {
		validateMCPServers(v, add)
	}
	if v, ok := m["schedule"]; ok {
		scheduleOf(v, add)
	}
}

// metaLimits are the loop guards a workflow may set in its metadata, each
// with the most it may ask for: enough for any real workflow, and small
// enough that a typing error cannot switch a guard off.
var metaLimits = []struct {
	key string
	max float64
}{
	{"max_asks", 10_000},
	{"max_asks_per_pair", 1_000},
	{"max_ask_depth", 20},
	{"max_llm_calls", 100_000},
	{"token_budget", 1_000_000_000},
	{"max_tool_calls", 100_000},
}

// maxTokensLimit bounds an ai-processor's max_tokens, far above what any
// model answers in one reply.
const maxTokensLimit = 10_000_000

// checkSeconds reports a timeout that is not a positive number of seconds
// up to MaxTimeoutSeconds.
func checkSeconds(path string, v any, add func(string, string, ...any)) {
	f, ok := number(v)
	switch {
	case !ok || f <= 0:
		add(path, "must be a positive number of seconds, not %s", describe(v))
	case f > MaxTimeoutSeconds:
		add(path, "must be at most %d (a week), not %s", MaxTimeoutSeconds, describe(v))
	}
}

// variableTypes are the types a variable may declare (the original
// service's examples use "string"); variableTypeList names them in messages.
var (
	variableTypes    = map[string]bool{"string": true, "number": true, "integer": true, "boolean": true, "object": true, "array": true, "json": true}
	variableTypeList = "string, number, integer, boolean, object, array or json"
)

// hasControl reports whether s holds a control character (NUL, a newline,
// DEL...): in an id or a name it cannot be shown, typed or told apart.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// validatePosition checks a node's dashboard position: x and y, when
// present, are numbers.
func validatePosition(path string, p map[string]any, add func(string, string, ...any)) {
	for _, k := range []string{"x", "y"} {
		if v, ok := p[k]; ok {
			if _, ok := number(v); !ok {
				add(path+"."+k, "must be a number, not %s", describe(v))
			}
		}
	}
}

func validateAIConfig(path string, c map[string]any, add func(string, string, ...any)) {
	for _, k := range []string{"name", "description", "system_prompt", "prompt", "model"} {
		if v, ok := c[k]; ok {
			if _, ok := v.(string); !ok {
				add(path+"."+k, "must be a string, not %s; leave the key out for none", describe(v))
			}
		}
	}
	// A null setting is a mistake in the document, not a default: the
	// original service's files leave unset keys out.
	for _, k := range []string{"temperature", "max_tokens", "timeout_seconds", "can_communicate", "tool_mode", "tools"} {
		if v, ok := c[k]; ok && v == nil {
			add(path+"."+k, "must not be null; leave the key out for the default")
		}
	}
	if v, ok := c["temperature"]; ok && v != nil {
		if f, ok := number(v); !ok {
			add(path+".temperature", "must be a number, not %s", describe(v))
		} else if f < 0 || f > 2 {
			add(path+".temperature", "must be between 0 and 2, not %v", f)
		}
	}
	if v, ok := c["max_tokens"]; ok && v != nil {
		if f, ok := number(v); !ok || f != math.Trunc(f) || f < 1 {
			add(path+".max_tokens", "must be a positive whole number, not %s", describe(v))
		} else if f > maxTokensLimit {
			add(path+".max_tokens", "must be at most %d, not %s", maxTokensLimit, describe(v))
		}
	}
	if v, ok := c["timeout_seconds"]; ok && v != nil {
		checkSeconds(path+".timeout_seconds", v, add)
	}
	if v, ok := c["can_communicate"]; ok && v != nil {
		if _, ok := v.(bool); !ok {
			add(path+".can_communicate", "must be true or false, not %s", describe(v))
		}
	}
	if v, ok := c["tool_mode"]; ok && v != nil {
		if s, _ := v.(string); !ValidToolMode(s) {
			add(path+".tool_mode", "must be native, text or auto, not %s", describe(v))
		}
	}
	if v, ok := c["tools"]; ok && v != nil {
		checkList(path+".tools", v, "tool names", CheckToolPattern, add)
	}
}

// checkList checks a list of strings, each with check; what names the
// entries goes in the message of a value that is no list.
func checkList(path string, v any, what string, check func(string) error, add func(string, string, ...any)) {
	list, ok := v.([]any)
	if !ok {
		add(path, "must be a list of %s, not %s", what, describe(v))
		return
	}
	for j, e := range list {
		s, ok := e.(string)
		if !ok {
			add(fmt.Sprintf("%s[%d]", path, j), "must be a string, not %s", describe(e))
		} else if err := check(s); err != nil {
			add(fmt.Sprintf("%s[%d]", path, j), "%s", err.Error())
		}
	}
}

// validateReferences checks what prompts refer to: ask_node targets and
// {{outputs.NODE}} placeholders. index holds the valid node ids.
func validateReferences(w *Workflow, g *Graph, index map[string]int) []Problem {
	var ps []Problem
	var ancestors []map[int]bool // worked out when a prompt names an output
	for i := range w.Nodes {
		n := &w.Nodes[i]
		if n.Type != NodeAIProcessor {
			continue
		}
		for _, field := range []string{"prompt", "system_prompt"} {
			text := g.AI[i].Prompt
			if field == "system_prompt" {
				text = g.AI[i].SystemPrompt
			}
			if text == "" {
				continue
			}
			path := fmt.Sprintf("nodes[%d].config.%s", i, field)
			for _, c := range ParseCalls(text) {
				if c.Err != nil || c.Name != CallAsk || len(c.Args) == 0 {
					continue
				}
				target, ok := c.Args[0].(string)
				if !ok || strings.Contains(target, "{{") {
					continue
				}
				j, exists := index[target]
				switch {
				case !exists:
					ps = append(ps, Problem{path, fmt.Sprintf("ask_node target %q is not a node of this workflow", target)})
				case w.Nodes[j].Type != NodeAIProcessor && w.Nodes[j].Type != NodeHuman:
					ps = append(ps, Problem{path, fmt.Sprintf("ask_node target %q is a %s node; only ai-processor and human nodes can answer", target, w.Nodes[j].Type)})
				case target == n.ID:
					ps = append(ps, Problem{path, fmt.Sprintf("node %q cannot ask itself", n.ID)})
				}
			}
			for _, ph := range Placeholders(text) {
				if err := checkTriggerPlaceholder(ph); err != nil {
					ps = append(ps, Problem{path, err.Error()})
				}
				if !strings.HasPrefix(ph, "outputs.") {
					continue
				}
				ref := strings.SplitN(strings.TrimPrefix(ph, "outputs."), ".", 2)[0]
				j, exists := index[ref]
				if exists && ancestors == nil {
					ancestors = g.Ancestors()
				}
				if !exists {
					ps = append(ps, Problem{path, fmt.Sprintf("{{%s}} refers to node %q, which is not in this workflow", ph, ref)})
				} else if !ancestors[g.Index[n.ID]][j] {
					ps = append(ps, Problem{path, fmt.Sprintf("{{%s}} needs node %q to run before %q: add a path of edges from it", ph, ref, n.ID)})
				}
			}
		}
	}
	return ps
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return kind(v)
}
