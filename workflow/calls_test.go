package workflow_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

func TestParseCalls(t *testing.T) {
	t.Parallel()
	text := `I'll ask. CALL: ask_node('teacher', 'Can you explain "photosynthesis"?') then
CALL: broadcast_message("It's done", ['ai-processor', 'end'])
CALL:set_shared_context('k', 'it\'s \\ here')
and CALL: get_shared_context("k"). Also CALL: ask_node('x', 'what's this?')`
	calls := workflow.ParseCalls(text)
	want := []struct {
		name string
		args []any
	}{
		{"ask_node", []any{"teacher", `Can you explain "photosynthesis"?`}},
		{"broadcast_message", []any{"It's done", []string{"ai-processor", "end"}}},
		{"set_shared_context", []any{"k", `it's \ here`}},
		{"get_shared_context", []any{"k"}},
		{"ask_node", []any{"x", "what's this?"}},
	}
	if len(calls) != len(want) {
		t.Fatalf("got %d calls: %+v", len(calls), calls)
	}
	for i, w := range want {
		if calls[i].Err != nil || calls[i].Name != w.name || !reflect.DeepEqual(calls[i].Args, w.args) {
			t.Errorf("call %d = %+v, want %s%v", i, calls[i], w.name, w.args)
		}
	}
	if calls[0].Raw != `CALL: ask_node('teacher', 'Can you explain "photosynthesis"?')` {
		t.Errorf("raw: %q", calls[0].Raw)
	}
}

func TestParseCallsMalformedReported(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"CALL: ask_node('a')":                   "ask_node takes (node_id, question) or (node_id, question, {context}), got 1 argument(s)",
		"CALL: ask_node('a', 'b'":               "ask_node(...: missing closing parenthesis",
		"CALL: ask_node('a' x)":                 "ask_node: unterminated string starting with '",
		"CALL: ask_node(42 'q')":                "ask_node: expected , or ) after argument 1",
		"CALL: launch_rockets('now')":           `unknown function "launch_rockets"; the functions are ask_node, broadcast_message, set_shared_context and get_shared_context`,
		"CALL: broadcast_message('m', 'types')": "broadcast_message: the second argument must be a list of node types like ['ai-processor']",
		"CALL: ask_node(teacher, 'q')":          `ask_node: argument "teacher" must be quoted`,
	}
	for in, want := range tests {
		calls := workflow.ParseCalls(in)
		if len(calls) != 1 || calls[0].Err == nil || calls[0].Err.Error() != want {
			t.Errorf("%s: got %+v, want error %q", in, calls, want)
		}
	}
	// Prose that mentions CALL: is not a statement.
	if c := workflow.ParseCalls("Use CALL: statements to talk. CALL: nothing here. RECALL: ask_node('a', 'b')"); len(c) != 0 {
		t.Errorf("prose parsed as calls: %+v", c)
	}
}

func TestFormatCallRoundTrip(t *testing.T) {
	t.Parallel()
	args := []any{"node-1", "it's a \"q\"\nwith \\ lines"}
	s := workflow.FormatCall("ask_node", args...)
	calls := workflow.ParseCalls(s)
	if len(calls) != 1 || !reflect.DeepEqual(calls[0].Args, args) {
		t.Fatalf("round trip of %s: %+v", s, calls)
	}
}

func FuzzParseCalls(f *testing.F) {
	f.Add("CALL: ask_node('a', 'b') CALL: broadcast_message(\"x\", ['y'])")
	f.Add("CALL: set_shared_context('k', 1.5) CALL: get_shared_context(")
	f.Add("CALL: ask_node(‘a’, “b”)")
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range workflow.ParseCalls(s) {
			if c.Offset < 0 || c.Offset > len(s) || len(c.Raw) == 0 {
				t.Fatalf("bad call %+v", c)
			}
		}
	})
}

// TestParseCallsOriginalForms reads the original service's forms: an ask
// with a context dict, and get_shared_context with a default.
func TestParseCallsOriginalForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		args []any
	}{
		{`CALL: ask_node('c', "What's up?", {"k": 1})`, []any{"c", "What's up?", map[string]any{"k": json.Number("1")}}},
		{`CALL: ask_node('c', 'q', {'a': [1, 'x', {'b': None}], 'it\'s': True, "e": {}})`,
			[]any{"c", "q", map[string]any{"a": []any{json.Number("1"), "x", map[string]any{"b": nil}}, "it's": true, "e": map[string]any{}}}},
		{`CALL: ask_node('c', 'q', None)`, []any{"c", "q", nil}},
		{`CALL: get_shared_context('topic', 'none yet')`, []any{"topic", "none yet"}},
		{`CALL: get_shared_context("n", 0)`, []any{"n", json.Number("0")}},
		{`CALL: get_shared_context('cfg', {'depth': 2})`, []any{"cfg", map[string]any{"depth": json.Number("2")}}},
	}
	for _, tt := range tests {
		calls := workflow.ParseCalls(tt.in)
		if len(calls) != 1 || calls[0].Err != nil || !reflect.DeepEqual(calls[0].Args, tt.args) {
			t.Errorf("%s: got %+v, want %#v", tt.in, calls, tt.args)
		}
	}
	// A dict written back by FormatCall reads the same.
	args := []any{"c", "q", map[string]any{"k": "v", "n": []any{"x"}}}
	if calls := workflow.ParseCalls(workflow.FormatCall("ask_node", args...)); len(calls) != 1 || !reflect.DeepEqual(calls[0].Args, args) {
		t.Errorf("round trip: %+v", calls)
	}
}

// TestParseCallsUnreadableLines: a line that begins with CALL: is a call
// the model meant, so one that cannot be read is returned with an error
// (the node is told), never dropped.
func TestParseCallsUnreadableLines(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"Thinking.\nCALL: ask the teacher about it":                        `could not read "CALL: ask the teache…" as a call`,
		"- CALL: 'teacher', 'why?'":                                        `could not read "CALL: 'teacher', 'wh…" as a call`,
		"CALL: ask_node('c', 'q', {\"k\" 1})":                              `ask_node: expected : after the dict key "k"`,
		"CALL: ask_node('c', 'q', 'not a dict')":                           "ask_node: the context must be a dict like {'key': 'value'}",
		"CALL: ask_node('c', 'q', {" + strings.Repeat("'a': {", 40) + "})": "nest more than 32 deep",
	}
	for in, want := range tests {
		calls := workflow.ParseCalls(in)
		if len(calls) != 1 || calls[0].Err == nil || !strings.Contains(calls[0].Err.Error(), want) {
			t.Errorf("%q: got %+v, want an error containing %q", in, calls, want)
		}
	}
}
