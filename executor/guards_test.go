package executor_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// loopingModel scripts a model that misbehaves: the asker's first reply is
// calls, every answer is "answer", and a follow-up is "final".
func loopingModel(t *testing.T, calls string, answers *atomic.Int32, usage *openai.Usage) executor.LLM {
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		last := req.Messages[len(req.Messages)-1].Content
		switch {
		case strings.Contains(req.Messages[0].Content, "asks you the question"):
			answers.Add(1)
			return llmtest.Reply{Content: "answer to " + last, Usage: usage}
		case strings.HasPrefix(last, "Results of your calls"):
			return llmtest.Reply{Content: "final", Usage: usage}
		}
		return llmtest.Reply{Content: calls, Usage: usage}
	})
	return model
}

func guardWorkflow(t *testing.T, meta string) *workflow.Workflow {
	return parse(t, `{"name":"guards","metadata":{`+meta+`},"nodes":[
		{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"go"}},
		{"id":"b","type":"ai-processor","config":{"system_prompt":"b"}},
		{"id":"c","type":"ai-processor","config":{"system_prompt":"c"}}],
		"edges":[{"from":"b","to":"a"},{"from":"c","to":"a"}]}`)
}

func refusals(x *workflow.Execution, reason string) int {
	n := 0
	for _, c := range x.CommunicationLog {
		if c.Metadata["refused"] == reason {
			n++
		}
	}
	return n
}

func TestGuardAsksPerPair(t *testing.T) {
	t.Parallel()
	var calls []string
	for i := range 7 {
		calls = append(calls, fmt.Sprintf("CALL: ask_node('b', 'question %d?')", i))
	}
	var answers atomic.Int32
	e := newEnv(t, loopingModel(t, strings.Join(calls, "\n"), &answers, nil), nil, executor.Config{})
	x := e.run(t, guardWorkflow(t, ``), executor.Options{})
	if x.Status != "success" || answers.Load() != 5 || refusals(x, "max_asks_per_pair") != 2 {
		t.Fatalf("status %s answers %d refusals %d", x.Status, answers.Load(), refusals(x, "max_asks_per_pair"))
	}
}

func TestGuardAsksPerExecution(t *testing.T) {
	t.Parallel()
	calls := "CALL: ask_node('b', 'one?') CALL: ask_node('c', 'two?') CALL: ask_node('b', 'three?') CALL: ask_node('c', 'four?')"
	var answers atomic.Int32
	e := newEnv(t, loopingModel(t, calls, &answers, nil), nil, executor.Config{})
	x := e.run(t, guardWorkflow(t, `"max_asks": 3`), executor.Options{})
	if answers.Load() != 3 || refusals(x, "max_asks") != 1 {
		t.Fatalf("answers %d refusals %d", answers.Load(), refusals(x, "max_asks"))
	}
	if out, _ := x.NodeStates["a"].Output.(string); out != "final" {
		t.Fatalf("a should finish after the refusal, got %q", out)
	}
}

func TestGuardSameQuestionAnsweredFromTheFirst(t *testing.T) {
	t.Parallel()
	calls := "CALL: ask_node('b', 'same?')\nCALL: ask_node('b', 'same?')"
	var answers atomic.Int32
	e := newEnv(t, loopingModel(t, calls, &answers, nil), nil, executor.Config{})
	x := e.run(t, guardWorkflow(t, ``), executor.Options{})
	dups := 0
	for _, c := range x.CommunicationLog {
		if c.Metadata["duplicate"] == true && c.Type == workflow.CommResponse && c.Content == "answer to same?" {
			dups++
		}
	}
	if answers.Load() != 1 || dups != 1 {
		t.Fatalf("answers %d flagged duplicates %d: %+v", answers.Load(), dups, x.CommunicationLog)
	}
}

func TestGuardLLMCalls(t *testing.T) {
	t.Parallel()
	var answers atomic.Int32
	e := newEnv(t, loopingModel(t, "CALL: ask_node('b', 'q?')", &answers, nil), nil, executor.Config{})
	// b and c run first (2 calls); a's own call is the 3rd; b's answer would be the 4th.
	x := e.run(t, guardWorkflow(t, `"max_llm_calls": 3`), executor.Options{})
	if refusals(x, "") != 0 || answers.Load() != 0 {
		t.Fatalf("b answered over the limit")
	}
	resp := findComm(x, workflow.CommResponse, "b", "a")
	if resp == nil || !strings.Contains(fmt.Sprint(resp.Metadata["error"]), "limit of 3 model calls") {
		t.Fatalf("the refusal should reach a: %+v", x.CommunicationLog)
	}
	// a's follow-up is a 5th call, refused too: a fails with the reason.
	if x.Status != "error" || !strings.Contains(x.NodeStates["a"].Error, "limit of 3 model calls") {
		t.Fatalf("status %s a: %+v", x.Status, x.NodeStates["a"])
	}
}

func TestGuardTokenBudget(t *testing.T) {
	t.Parallel()
	var answers atomic.Int32
	usage := &openai.Usage{PromptTokens: 30, CompletionTokens: 10, TotalTokens: 40}
	e := newEnv(t, loopingModel(t, "CALL: ask_node('b', 'q?')", &answers, usage), nil, executor.Config{})
	x := e.run(t, guardWorkflow(t, `"token_budget": 100`), executor.Options{})
	if x.Status != "error" || !strings.HasPrefix(x.Error, "budget_exceeded") {
		t.Fatalf("status %s error %q", x.Status, x.Error)
	}
	coded := false
	for _, e := range x.Errors {
		coded = coded || e.Code == "budget_exceeded"
	}
	if !coded || x.NodeStates["b"].Status != "completed" || x.Usage.TotalTokens != 120 {
		t.Fatalf("errors %+v b %s usage %+v", x.Errors, x.NodeStates["b"].Status, x.Usage)
	}
}
