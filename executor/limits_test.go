package executor_test

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// TestHugeTimeoutsDoNotWrap runs a document whose timeouts Validate now
// refuses (as one stored before it did): asks and nodes get a week, never
// a duration that wrapped to a negative one and failed them at once.
func TestHugeTimeoutsDoNotWrap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	w := example(t, "01_qa.json")
	w.Metadata["ask_timeout_seconds"] = 1e10
	w.Metadata["timeout_seconds"] = 1e12
	for i := range w.Nodes {
		if w.Nodes[i].Type == workflow.NodeAIProcessor {
			w.Nodes[i].Config["timeout_seconds"] = 1e12
		}
	}
	x := e.run(t, w, executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	resp := findComm(x, workflow.CommResponse, "teacher", "student")
	if resp == nil || resp.Metadata["success"] != true {
		t.Fatalf("the ask failed: %+v", resp)
	}
	for _, l := range x.Logs {
		if strings.Contains(l.Message, "-2562047h") {
			t.Fatalf("a negative duration: %s", l.Message)
		}
	}
}
