package main

import (
	"io"
	"strings"
	"testing"
)

// TestToolModeFromEnv: SWITCHBOARD_TOOL_MODE sets the nodes' default tool mode; the demo model
// then calls its tools natively (auto, the default) or writes CALL: lines (text), and a value
// that is no mode is refused by name.
func TestToolModeFromEnv(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode, want, absent string
	}{
		{"", "student calls the tool ask_node", ""},
		{"text", "student → teacher  ask: Can you explain tides", "calls the tool"},
	} {
		env := func(k string) string {
			if k == "SWITCHBOARD_TOOL_MODE" {
				return tt.mode
			}
			return testEnv(k)
		}
		var out strings.Builder
		err := run(t.Context(), []string{"run", "examples/01_qa.json", "--input", "question_topic=tides"}, env, &out, t.Output())
		if err != nil || !strings.Contains(out.String(), tt.want) || !strings.Contains(out.String(), "student → teacher  ask: Can you explain tides") ||
			(tt.absent != "" && strings.Contains(out.String(), tt.absent)) {
			t.Errorf("mode %q: %v\n%s", tt.mode, err, out.String())
		}
	}
	env := func(k string) string {
		if k == "SWITCHBOARD_TOOL_MODE" {
			return "json"
		}
		return testEnv(k)
	}
	err := run(t.Context(), []string{"run", "examples/01_qa.json"}, env, io.Discard, t.Output())
	if err == nil || !strings.Contains(err.Error(), `SWITCHBOARD_TOOL_MODE="json": want native, text or auto`) {
		t.Fatalf("err = %v", err)
	}
}
