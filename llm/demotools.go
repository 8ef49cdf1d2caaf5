package llm

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// CallsTools reports that the demo model answers with native tool calls when it is offered
// tools (see Demo), so a new user sees both protocols. Safe for concurrent use.
func (d *Demo) CallsTools(string) bool { return true }

// demoToolCalls turns the CALL statements of text into tool calls of the tools offered, in
// order: the statement's arguments, positional, fill the tool's required parameters in the
// order the schema lists them, then its other parameters in name order. It returns nil when a
// statement names no tool offered or cannot be read, so the reply falls back to the
// statements as text.
func demoToolCalls(text string, tools []Tool) []ToolCall {
	stmts := scanCalls(text)
	if len(stmts) == 0 {
		return nil
	}
	calls := make([]ToolCall, 0, len(stmts))
	for i, stmt := range stmts {
		body := strings.TrimSpace(strings.TrimPrefix(stmt, callMarker))
		open := strings.IndexByte(body, '(')
		name := strings.TrimSpace(body[:open])
		var tool *Tool
		for k := range tools {
			if tools[k].Name == name {
				tool = &tools[k]
			}
		}
		if tool == nil {
			return nil
		}
		p := &demoArgParser{s: body[open+1 : len(body)-1]}
		args, ok := p.list(0)
		if !ok {
			return nil
		}
		params := paramOrder(tool.Parameters)
		if len(args) > len(params) {
			return nil
		}
		obj := make(map[string]any, len(args))
		for k, v := range args {
			obj[params[k]] = v
		}
		data, err := json.Marshal(obj)
		if err != nil {
			return nil
		}
		calls = append(calls, ToolCall{ID: fmt.Sprintf("call_demo_%d", i+1), Name: name, Arguments: string(data)})
	}
	return calls
}

// paramOrder lists the parameters of an object schema: the required ones in their order, then
// the others by name.
func paramOrder(schema json.RawMessage) []string {
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if json.Unmarshal(schema, &s) != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range s.Required {
		if _, ok := s.Properties[r]; ok && !seen[r] {
			out = append(out, r)
			seen[r] = true
		}
	}
	var rest []string
	for k := range s.Properties {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// demoArgParser reads the argument list of a well-formed CALL statement: quoted strings,
// [lists] and {dicts} of them, and bare words (numbers, True, False, None), as scanCalls
// accepts them. It is the demo's own small reader, like scanCalls.
type demoArgParser struct {
	s string
	i int
}

func (p *demoArgParser) space() {
	for p.i < len(p.s) && isSpaceByte(p.s[p.i]) {
		p.i++
	}
}

// list reads values separated by commas up to the end of the text or the closer.
func (p *demoArgParser) list(closer byte) ([]any, bool) {
	var out []any
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] == closer {
			return out, closer == 0 || p.i < len(p.s)
		}
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
		}
	}
}

func (p *demoArgParser) value() (any, bool) {
	p.space()
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; c {
	case '\'', '"':
		p.i++
		var b strings.Builder
		for p.i < len(p.s) && p.s[p.i] != c {
			if p.s[p.i] == '\\' && p.i+1 < len(p.s) {
				p.i++
			}
			b.WriteByte(p.s[p.i])
			p.i++
		}
		if p.i >= len(p.s) {
			return nil, false
		}
		p.i++
		return b.String(), true
	case '[':
		p.i++
		l, ok := p.list(']')
		p.i++
		if l == nil {
			l = []any{}
		}
		return l, ok
	case '{':
		p.i++
		m := map[string]any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return m, true
			}
			k, ok := p.value()
			key, isStr := k.(string)
			p.space()
			if !ok || !isStr || p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, false
			}
			p.i++
			v, ok := p.value()
			if !ok {
				return nil, false
			}
			m[key] = v
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
			}
		}
	}
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(",)]}: \t\n", rune(p.s[p.i])) {
		p.i++
	}
	word := p.s[start:p.i]
	switch word {
	case "":
		return nil, false
	case "True", "true":
		return true, true
	case "False", "false":
		return false, true
	case "None", "null":
		return nil, true
	}
	var n json.Number
	if json.Unmarshal([]byte(word), &n) == nil {
		return n, true
	}
	return word, true
}

// toolResults returns the results of the tool calls that the conversation ends with, or ""
// when it does not end with any.
func toolResults(msgs []Message) string {
	i := len(msgs)
	for i > 0 && msgs[i-1].Role == RoleTool {
		i--
	}
	if i == len(msgs) {
		return ""
	}
	parts := make([]string, 0, len(msgs)-i)
	for _, m := range msgs[i:] {
		parts = append(parts, "- "+m.Content)
	}
	return strings.Join(parts, "\n")
}
