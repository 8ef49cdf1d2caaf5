package workflow_test

import (
	"reflect"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

func TestParseCalls(t *testing.T) {
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
	tests := map[string]string{
		"CALL: ask_node('a')":                   "ask_node takes (node_id, question), got 1 argument(s)",
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
