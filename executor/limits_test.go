package executor_test

import (
	"encoding/json"
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
	parsed := example(t, "01_qa.json")
	parsed.Metadata["ask_timeout_seconds"] = 1e10
	parsed.Metadata["timeout_seconds"] = 1e12
	for i := range parsed.Nodes {
		if parsed.Nodes[i].Type == workflow.NodeAIProcessor {
			parsed.Nodes[i].Config["timeout_seconds"] = 1e12
		}
	}
	// Decoded as the store decodes a stored document, without Parse.
	data, err := json.Marshal(parsed)
	if err != nil {
		t.Fatal(err)
	}
	w := new(workflow.Workflow)
	if err := json.Unmarshal(data, w); err != nil {
		t.Fatal(err)
	}
	w.ID = ""
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
