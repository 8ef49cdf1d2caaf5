package executor_test

import (
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
)

// Token counts the model server did not report are estimates: the node
// that got them says so, and so does the execution's total, while a node
// whose server reported its usage does not. Node a streams its reply (its
// own run), node b also answers a, plainly, so both ways are covered.
func TestUsageEstimatedWhenNotReported(t *testing.T) {
	t.Parallel()
	doc := `{"name":"usage","nodes":[
		{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"ask b"}},
		{"id":"b","type":"ai-processor","config":{"system_prompt":"b answers"}}]}`
	reported := &openai.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}
	for _, tc := range []struct {
		name                 string
		aReports, bReports   bool
		wantA, wantB, wantTo bool
	}{
		{"all reported", true, true, false, false, false},
		{"a stream without usage", false, true, true, false, true},
		{"b reply without usage", true, false, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
				var r llmtest.Reply
				reports := tc.aReports
				if strings.HasPrefix(req.Messages[0].Content, "b answers") {
					reports = tc.bReports // b's own run, and its answer to a
				}
				switch {
				case strings.Contains(req.Messages[0].Content, "asks you the question"):
					r = llmtest.Reply{Content: "b's answer"}
				case strings.HasPrefix(req.Messages[len(req.Messages)-1].Content, "Results of your calls"):
					r = llmtest.Reply{Content: "final"}
				default:
					r = llmtest.Reply{Content: "CALL: ask_node('b', 'why?')"}
				}
				if reports {
					r.Usage = reported
				} else {
					r.NoUsage = true
				}
				return r
			})
			e := newEnv(t, model, nil, executor.Config{})
			x := e.run(t, parse(t, doc), executor.Options{})
			a, b := x.NodeStates["a"].Usage, x.NodeStates["b"].Usage
			if x.Status != "success" || a.TotalTokens == 0 || b.TotalTokens == 0 {
				t.Fatalf("status %s, usage a %+v b %+v", x.Status, a, b)
			}
			if a.Estimated != tc.wantA || b.Estimated != tc.wantB || x.Usage.Estimated != tc.wantTo {
				t.Fatalf("estimated: a %v b %v total %v, want %v %v %v", a.Estimated, b.Estimated, x.Usage.Estimated, tc.wantA, tc.wantB, tc.wantTo)
			}
		})
	}
}
