package workflow

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The functions a communicating node may call.
const (
	CallAsk        = "ask_node"
	CallBroadcast  = "broadcast_message"
	CallSetContext = "set_shared_context"
	CallGetContext = "get_shared_context"
)

// Call is one `CALL: name(args)` statement found in a model's reply. Args
// holds strings, []string lists, map[string]any dicts (the context of an
// ask, as the original service wrote it) and, rarely, numbers (json.Number),
// booleans or nil. A statement that could not be parsed, or has the wrong
// arguments, has Err set and is still returned, so the node can be told
// what was wrong; so is a line that starts with CALL: but holds no
// statement at all.
type Call struct {
	Name   string
	Args   []any
	Raw    string // the statement as written
	Offset int    // byte offset of "CALL:" in the text
	Err    error
}

// Arg returns argument i as a string, or "".
func (c Call) Arg(i int) string {
	if i < len(c.Args) {
		if s, ok := c.Args[i].(string); ok {
			return s
		}
	}
	return ""
}

// Dict returns argument i as a dict, or nil.
func (c Call) Dict(i int) map[string]any {
	if i < len(c.Args) {
		if m, ok := c.Args[i].(map[string]any); ok {
			return m
		}
	}
	return nil
}

// Strings returns argument i as a list of strings, or nil.
func (c Call) Strings(i int) []string {
	if i < len(c.Args) {
		if l, ok := c.Args[i].([]string); ok {
			return l
		}
	}
	return nil
}

// ParseCalls finds every CALL statement in text, in text order, wherever it
// stands (the original examples put them mid-sentence). Arguments are quoted
// with ' or " (or typographic quotes), may contain the other kind of quote and
// backslash escapes, and lists are written ['a', 'b']. It never panics.
func ParseCalls(text string) []Call {
	var calls []Call
	for pos := 0; pos < len(text); {
		i := strings.Index(text[pos:], "CALL:")
		if i < 0 {
			break
		}
		start := pos + i
		if start > 0 && isIdent(text[start-1], false) { // RECALL: is a word, not a call
			pos = start + len("CALL:")
			continue
		}
		p := &callParser{s: text, i: start + len("CALL:")}
		c, ok := p.call()
		if !ok {
			pos = start + len("CALL:")
			if !startsLine(text, start) { // prose that mentions CALL: without a statement
				continue
			}
			// A line that begins with CALL: was meant as a statement: the
			// model hears why it was not one.
			end := strings.IndexByte(text[start:], '\n')
			if end < 0 {
				end = len(text) - start
			}
			raw := strings.TrimRight(text[start:start+end], " \t\r")
			calls = append(calls, Call{Raw: raw, Offset: start,
				Err: fmt.Errorf("could not read %q as a call: write name(arguments) right after CALL:, like CALL: ask_node('node_id', 'question')", excerpt(raw))})
			pos = start + end
			continue
		}
		c.Offset = start
		c.Raw = text[start:p.i]
		if c.Err == nil {
			c.Err = checkArity(c)
		}
		calls = append(calls, c)
		pos = p.i
		if pos <= start {
			pos = start + len("CALL:")
		}
	}
	return calls
}

// startsLine reports whether the CALL: at i begins its line, after blanks or
// a Markdown list, quote or code mark.
func startsLine(text string, i int) bool {
	for i > 0 {
		i--
		switch text[i] {
		case '\n':
			return true
		case ' ', '\t', '\r', '-', '*', '>', '`', '#':
		default:
			return false
		}
	}
	return true
}

func checkArity(c Call) error {
	want := func(min, max int, sig string) error {
		if len(c.Args) < min || len(c.Args) > max {
			return fmt.Errorf("%s takes %s, got %d argument(s)", c.Name, sig, len(c.Args))
		}
		return nil
	}
	isStr := func(i int, what string) error {
		if _, ok := c.Args[i].(string); !ok {
			return fmt.Errorf("%s: %s must be a quoted string", c.Name, what)
		}
		return nil
	}
	switch c.Name {
	case CallAsk:
		if err := want(2, 3, "(node_id, question) or (node_id, question, {context})"); err != nil {
			return err
		}
		if err := isStr(0, "node_id"); err != nil {
			return err
		}
		if len(c.Args) == 3 && c.Args[2] != nil {
			if _, ok := c.Args[2].(map[string]any); !ok {
				return fmt.Errorf("%s: the context must be a dict like {'key': 'value'}", c.Name)
			}
		}
		return isStr(1, "question")
	case CallBroadcast:
		if err := want(1, 2, "(message) or (message, ['node-type', ...])"); err != nil {
			return err
		}
		if err := isStr(0, "message"); err != nil {
			return err
		}
		if len(c.Args) == 2 && c.Args[1] != nil {
			if _, ok := c.Args[1].([]string); !ok {
				return fmt.Errorf("%s: the second argument must be a list of node types like ['ai-processor']", c.Name)
			}
		}
		return nil
	case CallSetContext:
		if err := want(2, 2, "(key, value)"); err != nil {
			return err
		}
		return isStr(0, "key")
	case CallGetContext:
		if err := want(1, 2, "(key) or (key, default)"); err != nil {
			return err
		}
		return isStr(0, "key")
	}
	return fmt.Errorf("unknown function %q; the functions are ask_node, broadcast_message, set_shared_context and get_shared_context", c.Name)
}

type callParser struct {
	s     string
	i     int
	depth int  // dicts and lists open around the value being read
	key   bool // reading a dict key: its first closing quote ends it
}

// maxCallDepth bounds how deep dicts and lists nest in an argument, so a
// hostile reply cannot exhaust the stack.
const maxCallDepth = 32

func (p *callParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func isIdent(b byte, first bool) bool {
	return b == '_' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (!first && b >= '0' && b <= '9')
}

// call parses `name(args)` after "CALL:". It returns ok=false when there is no
// `name(` at all, which is prose rather than a statement.
func (p *callParser) call() (Call, bool) {
	p.skipSpace()
	start := p.i
	for p.i < len(p.s) && isIdent(p.s[p.i], p.i == start) {
		p.i++
	}
	c := Call{Name: p.s[start:p.i]}
	if c.Name == "" {
		return c, false
	}
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
	if p.i >= len(p.s) || p.s[p.i] != '(' {
		return c, false
	}
	p.i++
	for {
		p.skipSpace()
		if p.i >= len(p.s) {
			c.Err = fmt.Errorf("%s(...: missing closing parenthesis", c.Name)
			return c, true
		}
		if p.s[p.i] == ')' {
			p.i++
			return c, true
		}
		v, err := p.value()
		if err != nil {
			c.Err = fmt.Errorf("%s: %w", c.Name, err)
			p.recover()
			return c, true
		}
		c.Args = append(c.Args, v)
		p.skipSpace()
		if p.i >= len(p.s) {
			c.Err = fmt.Errorf("%s(...: missing closing parenthesis", c.Name)
			return c, true
		}
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == ')' {
			p.i++
			return c, true
		}
		c.Err = fmt.Errorf("%s: expected , or ) after argument %d", c.Name, len(c.Args))
		p.recover()
		return c, true
	}
}

// recover moves past the rest of a broken statement: to the end of its line.
func (p *callParser) recover() {
	if j := strings.IndexByte(p.s[p.i:], '\n'); j >= 0 {
		p.i += j
	} else {
		p.i = len(p.s)
	}
}

var closing = map[rune]rune{'\'': '\'', '"': '"', '‘': '’', '“': '”'}

// quotedHere reads the quoted string that opens at p.i; ok is false, and
// nothing is read, when no quote opens there.
func (p *callParser) quotedHere() (s string, ok bool, err error) {
	r, size := utf8.DecodeRuneInString(p.s[p.i:])
	end, ok := closing[r]
	if !ok {
		return "", false, nil
	}
	p.i += size
	s, err = p.quoted(r, end)
	return s, true, err
}

func (p *callParser) value() (any, error) {
	if s, ok, err := p.quotedHere(); ok {
		return s, err
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	if r == '{' {
		return p.dict()
	}
	if r == '[' {
		p.i++
		var list []string
		for {
			p.skipSpace()
			if p.i >= len(p.s) {
				return nil, fmt.Errorf("unterminated list")
			}
			if p.s[p.i] == ']' {
				p.i++
				return list, nil
			}
			s, ok, err := p.quotedHere()
			if !ok {
				return nil, fmt.Errorf("list items must be quoted strings")
			}
			if err != nil {
				return nil, err
			}
			list = append(list, s)
			p.skipSpace()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
			}
		}
	}
	// A bare literal: number, true/false/null (or Python's True/False/None).
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(",)]} \t\n\r", rune(p.s[p.i])) {
		p.i++
	}
	word := p.s[start:p.i]
	switch word {
	case "true", "True":
		return true, nil
	case "false", "False":
		return false, nil
	case "null", "None":
		return nil, nil
	case "":
		return nil, fmt.Errorf("expected an argument at %q", excerpt(p.s[start:]))
	}
	var n json.Number
	if err := json.Unmarshal([]byte(word), &n); err == nil {
		return n, nil
	}
	return nil, fmt.Errorf("argument %q must be quoted", word)
}

// dict reads a dict literal, {'key': value, ...} (JSON or Python), whose
// values are strings, numbers, booleans, null/None, lists and dicts.
func (p *callParser) dict() (map[string]any, error) {
	if p.depth >= maxCallDepth {
		return nil, fmt.Errorf("dicts and lists nest more than %d deep", maxCallDepth)
	}
	p.depth++
	defer func() { p.depth-- }()
	p.i++ // {
	m := map[string]any{}
	for {
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, fmt.Errorf("unterminated dict")
		}
		if p.s[p.i] == '}' {
			p.i++
			return m, nil
		}
		p.key = true
		key, ok, err := p.quotedHere()
		p.key = false
		if !ok {
			return nil, fmt.Errorf("dict keys must be quoted strings, at %q", excerpt(p.s[p.i:]))
		}
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, fmt.Errorf("expected : after the dict key %q", key)
		}
		p.i++
		p.skipSpace()
		v, err := p.element()
		if err != nil {
			return nil, err
		}
		m[key] = v
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
		} else if p.i < len(p.s) && p.s[p.i] != '}' {
			return nil, fmt.Errorf("expected , or } after the value of %q", key)
		}
	}
}

// element reads a value inside a dict: any literal, a list of any values
// or a dict.
func (p *callParser) element() (any, error) {
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("unterminated dict")
	}
	switch p.s[p.i] {
	case '{':
		return p.dict()
	case '[':
		if p.depth >= maxCallDepth {
			return nil, fmt.Errorf("dicts and lists nest more than %d deep", maxCallDepth)
		}
		p.depth++
		defer func() { p.depth-- }()
		p.i++
		list := []any{}
		for {
			p.skipSpace()
			if p.i >= len(p.s) {
				return nil, fmt.Errorf("unterminated list")
			}
			if p.s[p.i] == ']' {
				p.i++
				return list, nil
			}
			v, err := p.element()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
			p.skipSpace()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
			} else if p.i < len(p.s) && p.s[p.i] != ']' {
				return nil, fmt.Errorf("expected , or ] in a list")
			}
		}
	}
	return p.value()
}

func (p *callParser) quoted(open, end rune) (string, error) {
	var b strings.Builder
	for p.i < len(p.s) {
		r, size := utf8.DecodeRuneInString(p.s[p.i:])
		p.i += size
		switch {
		case r == '\\' && p.i < len(p.s):
			e, esize := utf8.DecodeRuneInString(p.s[p.i:])
			p.i += esize
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\\', '\'', '"':
				b.WriteRune(e)
			default:
				b.WriteRune('\\')
				b.WriteRune(e)
			}
		case r == end && p.closes():
			return b.String(), nil
		default:
			b.WriteRune(r)
		}
	}
	return "", fmt.Errorf("unterminated string starting with %c", open)
}

// closes reports whether a quote just read ends its string: only when what
// follows is a separator. Models write apostrophes inside single-quoted
// arguments ('what's this?'); reading those as text keeps the call intact.
func (p *callParser) closes() bool {
	if p.key {
		return true
	}
	for j := p.i; j < len(p.s); j++ {
		switch p.s[j] {
		case ' ', '\t', '\r', '\n':
			continue
		case ',', ')', ']':
			return true
		case ':', '}':
			return p.depth > 0
		}
		return false
	}
	return true
}

func excerpt(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// FormatCall writes a call back as a statement, quoting with ' and escaping,
// so that ParseCalls reads it back as the same call.
func FormatCall(name string, args ...any) string {
	var b strings.Builder
	b.WriteString("CALL: ")
	b.WriteString(name)
	b.WriteByte('(')
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		switch v := a.(type) {
		case string:
			b.WriteString(quote(v))
		case []string:
			b.WriteByte('[')
			for j, s := range v {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(quote(s))
			}
			b.WriteByte(']')
		default:
			data, _ := json.Marshal(v)
			b.Write(data)
		}
	}
	b.WriteByte(')')
	return b.String()
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}
