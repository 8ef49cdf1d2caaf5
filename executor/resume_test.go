package executor_test

import (
	"strings"
	"sync/atomic"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// The store refuses a second resume of the same execution; the refused
// run ends with that conflict and calls no model.
func TestSecondResumeCallsNoModel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var calls atomic.Int64
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		calls.Add(1)
		return llmtest.Reply{Content: "ok"}
	})
	e := newEnv(t, model, nil, executor.Config{})
	w := parse(t, `{"name":"r","nodes":[
		{"id":"first","type":"ai-processor","config":{"prompt":"one"}},
		{"id":"second","type":"ai-processor","config":{"prompt":"two {{later}}"}}],
		"edges":[{"from":"first","to":"second"}]}`)
	failed := e.run(t, w, executor.Options{})
	if failed.Status != workflow.ExecError {
		t.Fatalf("first run: %s", failed.Status)
	}
	resumed := e.run(t, w, executor.Options{Resume: failed, Inputs: map[string]any{"later": "now"}})
	if resumed.Status != workflow.ExecSuccess {
		t.Fatalf("resume: %s %s", resumed.Status, resumed.Error)
	}
	before := calls.Load()

	r, err := e.exec.Start(w, executor.Options{Resume: failed, Inputs: map[string]any{"later": "now"}})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Stored(ctx)
	if workflow.ErrorCode(err) != workflow.CodeConflict || !strings.Contains(workflow.ErrorMessage(err), "already resumed by execution "+resumed.ID) {
		t.Fatalf("Stored of a second resume = %v, want a conflict naming %s", err, resumed.ID)
	}
	status, err := r.Wait(ctx)
	if status != workflow.ExecError || workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Fatalf("the refused run ended %s, %v", status, err)
	}
	if n := calls.Load() - before; n != 0 {
		t.Fatalf("the refused resume called the model %d time(s)", n)
	}
}
