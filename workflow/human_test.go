package workflow_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

func TestHumanNodeValidation(t *testing.T) {
	t.Parallel()
	node := func(config string) string {
		return `{"name":"x","nodes":[{"id":"h","type":"human","config":` + config + `}]}`
	}
	tests := []struct {
		name, doc string
		want      workflow.Problem // "" Path and Message: the document is valid
	}{
		{"text", node(`{"question":"Why?"}`), workflow.Problem{}},
		{"choice with default", node(`{"question":"Go?","input":"choice","choices":["yes","no"],"timeout_seconds":60,"default":"no"}`), workflow.Problem{}},
		{"text default", node(`{"question":"Name?","timeout_seconds":1,"default":"anonymous"}`), workflow.Problem{}},
		{"no question", node(`{}`), workflow.Problem{Path: "nodes[0].config.question", Message: "a human node needs a question (a non-empty string), not null"}},
		{"question not text", node(`{"question":3}`), workflow.Problem{Path: "nodes[0].config.question", Message: "a human node needs a question (a non-empty string), not 3"}},
		{"unknown input", node(`{"question":"q","input":"slider"}`), workflow.Problem{Path: "nodes[0].config.input", Message: `must be "text" or "choice", not "slider"`}},
		{"choice without choices", node(`{"question":"q","input":"choice"}`), workflow.Problem{Path: "nodes[0].config.choices", Message: "a choice needs at least one choice"}},
		{"choices not a list", node(`{"question":"q","input":"choice","choices":"yes"}`), workflow.Problem{Path: "nodes[0].config.choices", Message: `must be an array of strings, not "yes"`}},
		{"empty choice", node(`{"question":"q","input":"choice","choices":["yes",""]}`), workflow.Problem{Path: "nodes[0].config.choices[1]", Message: `must be a non-empty string, not ""`}},
		{"duplicate choice", node(`{"question":"q","input":"choice","choices":["yes","yes"]}`), workflow.Problem{Path: "nodes[0].config.choices[1]", Message: `duplicate choice "yes"`}},
		{"choices for text", node(`{"question":"q","choices":["a"]}`), workflow.Problem{Path: "nodes[0].config.choices", Message: `is only for input "choice"`}},
		{"default not a choice", node(`{"question":"q","input":"choice","choices":["yes","no"],"timeout_seconds":5,"default":"maybe"}`),
			workflow.Problem{Path: "nodes[0].config.default", Message: `must be one of the choices ["yes" "no"], not "maybe"`}},
		{"default without timeout", node(`{"question":"q","default":"x"}`), workflow.Problem{Path: "nodes[0].config.default", Message: "is taken at the timeout: set timeout_seconds too"}},
		{"default not text", node(`{"question":"q","timeout_seconds":5,"default":1}`), workflow.Problem{Path: "nodes[0].config.default", Message: "must be a string (the answer taken at the timeout), not 1"}},
		{"bad timeout", node(`{"question":"q","timeout_seconds":0}`), workflow.Problem{Path: "nodes[0].config.timeout_seconds", Message: "must be a positive number of seconds, not 0"}},
		{"on_budget pause", `{"name":"x","metadata":{"on_budget":"pause","token_budget":10},"nodes":[{"id":"s","type":"start"}]}`, workflow.Problem{}},
		{"on_budget unknown", `{"name":"x","metadata":{"on_budget":"ask"},"nodes":[{"id":"s","type":"start"}]}`,
			workflow.Problem{Path: "metadata.on_budget", Message: `must be "fail" or "pause", not "ask"`}},
		{"ask a human", `{"name":"x","nodes":[{"id":"h","type":"human","config":{"question":"q"}},
			{"id":"a","type":"ai-processor","config":{"prompt":"CALL: ask_node('h', 'ok?')"}}]}`, workflow.Problem{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := workflow.Parse([]byte(tt.doc))
			if tt.want == (workflow.Problem{}) {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if got := workflow.ErrorProblems(err); !slices.Contains(got, tt.want) {
				t.Fatalf("missing problem %q\n got: %q", tt.want, got)
			}
		})
	}
}

func TestHumanConfig(t *testing.T) {
	t.Parallel()
	w, err := workflow.Parse([]byte(`{"name":"x","metadata":{"on_budget":"pause"},"nodes":[{"id":"h","type":"human",
		"config":{"question":"Go {{x}}?","input":"choice","choices":["yes","no"],"timeout_seconds":1.5,"default":"no"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := w.Nodes[0].Human()
	if c.Question != "Go {{x}}?" || c.Input != workflow.HumanChoice || !slices.Equal(c.Choices, []string{"yes", "no"}) ||
		c.Timeout != 1500*time.Millisecond || c.Default == nil || *c.Default != "no" {
		t.Fatalf("config = %+v", c)
	}
	if msg := c.CheckAnswer("maybe"); msg == "" {
		t.Fatal("a choice not offered was taken")
	}
	if msg := c.CheckAnswer("yes"); msg != "" {
		t.Fatalf("a choice offered was refused: %s", msg)
	}
	if w.OnBudget() != workflow.OnBudgetPause {
		t.Fatalf("on_budget = %s", w.OnBudget())
	}
	if (&workflow.Workflow{}).OnBudget() != workflow.OnBudgetFail {
		t.Fatal("on_budget does not default to fail")
	}
}
