package workflow_test

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

func TestRender(t *testing.T) {
	t.Parallel()
	shared := map[string]any{"topic": "bees", "cfg": map[string]any{"n": 3.0}}
	sc := workflow.Scope{
		Vars:        map[string]any{"input": "data", "n": 42.0, "list": []any{"x", "y"}},
		Outputs:     map[string]any{"a": `{"field": "deep", "arr": [1, {"k": "v"}]}`, "b": "plain text", "start": map[string]any{"input": "data"}},
		Shared:      func(k string) (any, bool) { v, ok := shared[k]; return v, ok },
		ExecutionID: "ex1",
		WorkflowID:  "wf1",
	}
	tests := []struct{ in, want string }{
		{"no placeholders", "no placeholders"},
		{"{{input}} and {{ input }}", "data and data"},
		{"{{n}} {{list}}", `42 ["x","y"]`},
		{"{{outputs.a.field}} {{outputs.a.arr.1.k}}", "deep v"},
		{"{{outputs.b}}", "plain text"},
		{"{{outputs.start.input}}", "data"},
		{"{{shared.topic}} {{shared.cfg}}", `bees {"n":3}`},
		{"{{execution_id}}/{{workflow_id}}", "ex1/wf1"},
		{"{{list.1}} {{shared.cfg.n}} {{outputs.a.arr.0}}", "y 3 1"},
		{`json {{"a": 1}} stays`, `json {{"a": 1}} stays`},
	}
	for _, tt := range tests {
		got, err := workflow.Render(tt.in, sc)
		if err != nil || got != tt.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	_, err := workflow.Render("{{nope}} {{outputs.b.x}} {{shared.none}} {{list.2}} {{n.x}} {{outputs.a.arr.1.k.z}}", sc)
	if err == nil || !strings.Contains(err.Error(), "{{nope}}, {{outputs.b.x}}, {{shared.none}}, {{list.2}}, {{n.x}}, {{outputs.a.arr.1.k.z}}") {
		t.Fatalf("want error naming the six, got %v", err)
	}
}

// TestRenderOutputFunc: when Scope.Output is set, outputs are asked of it
// and the Outputs map is not read.
func TestRenderOutputFunc(t *testing.T) {
	t.Parallel()
	sc := workflow.Scope{
		Outputs: map[string]any{"a": "from the map"},
		Output: func(node string) (any, bool) {
			v, ok := map[string]any{"a": `{"k": "from the func"}`}[node]
			return v, ok
		},
	}
	got, err := workflow.Render("{{outputs.a.k}}", sc)
	if err != nil || got != "from the func" {
		t.Fatalf("Render = %q, %v; want %q", got, err, "from the func")
	}
	if _, err := workflow.Render("{{outputs.b}}", sc); err == nil || !strings.Contains(err.Error(), "{{outputs.b}}") {
		t.Fatalf("want an error naming {{outputs.b}}, got %v", err)
	}
}

func FuzzRender(f *testing.F) {
	f.Add("{{a}} {{outputs.x.y.0}} {{shared.k}} {{")
	f.Fuzz(func(t *testing.T, s string) {
		sc := workflow.Scope{Vars: map[string]any{"a": "1"}, Outputs: map[string]any{"x": `{"y":[1]}`}}
		_, _ = workflow.Render(s, sc)
		_ = workflow.Placeholders(s)
	})
}
