package workflow_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// refuseDoc is a valid workflow with one ai-processor node a; tests put a
// fault into it by replacing one of its parts.
const refuseDoc = `{"name":"x","metadata":{META},"nodes":[{"id":"start","type":"start","position":{"x":0,"y":0}},
 {"id":"a","type":"ai-processor","config":{CONFIG}}],
 "edges":[{"from":"start","to":"a"}],"variables":[{"name":"topic","value":"bees"},VAR]}`

func refuse(meta, config, variable string) string {
	r := strings.NewReplacer("META", meta, "CONFIG", config, "VAR", variable)
	return r.Replace(refuseDoc)
}

// wantProblem parses doc and checks that it is refused with a problem at
// path whose message contains msg.
func wantProblem(t *testing.T, doc, path, msg string) {
	t.Helper()
	_, err := workflow.Parse([]byte(doc))
	if workflow.ErrorCode(err) != workflow.CodeInvalid {
		t.Fatalf("want invalid, got %v", err)
	}
	for _, p := range workflow.ErrorProblems(err) {
		if p.Path == path && strings.Contains(p.Message, msg) {
			return
		}
	}
	t.Fatalf("no problem at %s containing %q; got %q", path, msg, workflow.ErrorProblems(err))
}

func wantValid(t *testing.T, doc string) *workflow.Workflow {
	t.Helper()
	w, err := workflow.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("want valid, got %v", err)
	}
	return w
}

func TestShortSecretsAreRefused(t *testing.T) {
	t.Parallel()
	for _, v := range []string{`"ab"`, `"x"`, `42`} {
		wantProblem(t, refuse(``, ``, `{"name":"key","value":`+v+`,"secret":true}`),
			"variables[1].value", "cannot be masked")
	}
	for _, v := range []string{`"abc"`, `""`, `null`, `"••••"`} {
		wantValid(t, refuse(``, ``, `{"name":"key","value":`+v+`,"secret":true}`))
	}
	// Not a secret: any length.
	wantValid(t, refuse(``, ``, `{"name":"key","value":"ab"}`))
}

func TestDurationsAndLimitsHaveAMaximum(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"1e10", "1e12", "604801"} {
		wantProblem(t, refuse(`"ask_timeout_seconds":`+v, ``, `{"name":"n","value":1}`),
			"metadata.ask_timeout_seconds", "must be at most 604800 (a week), not "+v)
		wantProblem(t, refuse(`"timeout_seconds":`+v, ``, `{"name":"n","value":1}`),
			"metadata.timeout_seconds", "must be at most 604800 (a week)")
		wantProblem(t, refuse(``, `"timeout_seconds":`+v, `{"name":"n","value":1}`),
			"nodes[1].config.timeout_seconds", "must be at most 604800 (a week)")
	}
	wantValid(t, refuse(`"ask_timeout_seconds":604800,"timeout_seconds":0.5`, `"timeout_seconds":604800`, `{"name":"n","value":1}`))
	for _, tt := range []struct{ key, over, max string }{
		{"max_asks", "10001", "10000"},
		{"max_asks_per_pair", "1e12", "1000"},
		{"max_ask_depth", "21", "20"},
		{"max_llm_calls", "1e10", "100000"},
		{"token_budget", "1e19", "1000000000"},
		{"max_tool_calls", "100001", "100000"},
	} {
		wantProblem(t, refuse(`"`+tt.key+`":`+tt.over, ``, `{"name":"n","value":1}`),
			"metadata."+tt.key, "must be at most "+tt.max+", not "+tt.over)
		wantValid(t, refuse(`"`+tt.key+`":`+tt.max, ``, `{"name":"n","value":1}`))
		wantProblem(t, refuse(`"`+tt.key+`":-1`, ``, `{"name":"n","value":1}`),
			"metadata."+tt.key, "must be a positive whole number")
	}
	wantProblem(t, refuse(``, `"max_tokens":1e12`, `{"name":"n","value":1}`),
		"nodes[1].config.max_tokens", "must be at most 10000000")
	wantProblem(t, refuse(`"ask_timeout_seconds":-5`, ``, `{"name":"n","value":1}`),
		"metadata.ask_timeout_seconds", "must be a positive number of seconds")
}

// TestDurationsNeverOverflow reads timeouts from documents that skipped
// validation (stored before it refused them): no conversion wraps to a
// negative duration.
func TestDurationsNeverOverflow(t *testing.T) {
	t.Parallel()
	week := time.Duration(workflow.MaxTimeoutSeconds) * time.Second
	for _, f := range []float64{1e10, 1e12, 1e300, math.MaxFloat64, 9.3e9} {
		w := &workflow.Workflow{Metadata: map[string]any{"ask_timeout_seconds": f},
			Nodes: []workflow.Node{{ID: "a", Type: workflow.NodeAIProcessor, Config: map[string]any{"timeout_seconds": f, "max_tokens": f}}}}
		if d := w.MetaSeconds("ask_timeout_seconds", time.Second); d != week {
			t.Errorf("MetaSeconds(%g) = %s, want a week", f, d)
		}
		if cfg := w.Nodes[0].AI(); cfg.Timeout != week || cfg.MaxTokens <= 0 {
			t.Errorf("AI() with %g: timeout %s, max_tokens %d", f, cfg.Timeout, cfg.MaxTokens)
		}
	}
	for _, f := range []float64{math.NaN(), 1e-12, -1, 0} {
		w := &workflow.Workflow{Metadata: map[string]any{"ask_timeout_seconds": f}}
		if d := w.MetaSeconds("ask_timeout_seconds", time.Second); d != time.Second {
			t.Errorf("%g gave %s, want the default", f, d)
		}
	}
}

func TestAcceptedGarbageIsRefused(t *testing.T) {
	t.Parallel()
	v := `{"name":"n","value":1}`
	tests := []struct{ name, doc, path, msg string }{
		{"position not a number", strings.Replace(refuse(``, ``, v), `"x":0`, `"x":"left"`, 1),
			"nodes[0].position.x", `must be a number, not "left"`},
		{"unknown variable type", refuse(``, ``, `{"name":"n","value":1,"type":"nonsense"}`),
			"variables[1].type", `unknown type "nonsense"; a variable's type is one of string, number`},
		{"duplicate edge", strings.Replace(refuse(``, ``, v), `{"from":"start","to":"a"}`, `{"from":"start","to":"a"},{"from":"start","to":"a"}`, 1),
			"edges[1]", `duplicate edge from "start" to "a" (also edges[0])`},
		{"two start nodes", strings.Replace(refuse(``, ``, v), `"nodes":[`, `"nodes":[{"id":"start2","type":"start"},`, 1),
			"nodes[1].type", "a workflow has one start node; nodes[0] is already one"},
		{"prompt null", refuse(``, `"prompt":null`, v),
			"nodes[1].config.prompt", "must be a string, not null"},
		{"temperature null", refuse(``, `"temperature":null`, v),
			"nodes[1].config.temperature", "must not be null"},
		{"NUL in a node id", strings.ReplaceAll(refuse(``, ``, v), `"a"`, `"a\u0000b"`),
			"nodes[1].id", `node id "a\x00b" may not contain control characters`},
		{"escape in a node id", strings.ReplaceAll(refuse(``, ``, v), `"a"`, `"a\u001b[31m"`),
			"nodes[1].id", "may not contain control characters"},
		{"NUL in a variable name", refuse(``, ``, `{"name":"n\u0000","value":1}`),
			"variables[1].name", "may not contain control characters"},
		{"mode a number", refuse(`"communication_mode":5`, ``, v),
			"metadata.communication_mode", `must be "simple" or "pubsub", not 5`},
		{"unknown tool mode", refuse(``, `"tool_mode":"json"`, v),
			"nodes[1].config.tool_mode", `must be native, text or auto, not "json"`},
		{"tool mode null", refuse(``, `"tool_mode":null`, v),
			"nodes[1].config.tool_mode", "must not be null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantProblem(t, tt.doc, tt.path, tt.msg) })
	}
	// What stays accepted.
	for _, typ := range []string{"string", "number", "boolean", "object", "array"} {
		wantValid(t, refuse(``, ``, `{"name":"n","value":1,"type":"`+typ+`"}`))
	}
	wantValid(t, strings.Replace(refuse(``, ``, v), `"x":0,"y":0`, `"x":-10.5,"y":3,"zoom":"keep"`, 1))
	wantValid(t, strings.ReplaceAll(refuse(``, ``, v), `"a"`, `"état-b"`))
	for _, mode := range []string{"native", "text", "auto"} {
		wantValid(t, refuse(``, `"tool_mode":"`+mode+`"`, v))
	}
}
