package executor_test

import (
	"strings"
	"sync"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// originalCallsDoc has a node a whose reply (from the test model) uses the
// original service's call forms, and a node c it asks.
const originalCallsDoc = `{"name":"original calls","metadata":{"communication_mode":"MODE"},"nodes":[
 {"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"Go."}},
 {"id":"c","type":"ai-processor","config":{"can_communicate":true,"system_prompt":"You are c."}}]}`

// aReply is node a's first reply: an ask with a context dict, a read of a
// missing key with a default, and a CALL: line no parser can read.
const aReply = "Let me ask.\nCALL: ask_node('c', \"What's up?\", {\"k\": 1})\n" +
	"CALL: get_shared_context('missing', 'fallback')\nCALL: ask c what is up"

// TestOriginalCallForms runs the original service's call forms end to end
// with the go-openai client, in both modes: the context reaches the node
// asked, in its prompt; the default comes back; the unreadable line is
// reported to the model and logged.
func TestOriginalCallForms(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, mode string, ps executor.PubSub) {
		var mu sync.Mutex
		var cSystem, followUp string
		model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
			mu.Lock()
			defer mu.Unlock()
			sys, last := req.Messages[0].Content, req.Messages[len(req.Messages)-1].Content
			switch {
			case strings.HasPrefix(sys, "You are c."):
				if strings.Contains(sys, "asks you the question") { // not c's own task
					cSystem = sys
				}
				return llmtest.Reply{Content: "All fine."}
			case len(req.Messages) > 2: // a's follow-up turn
				followUp = last
				return llmtest.Reply{Content: "Done."}
			}
			return llmtest.Reply{Content: aReply}
		})
		e := newEnv(t, model, ps, executor.Config{})
		x := e.run(t, parse(t, strings.Replace(originalCallsDoc, "MODE", mode, 1)), executor.Options{})
		if x.Status != workflow.ExecSuccess || x.Mode != mode {
			t.Fatalf("status %s mode %s: %s", x.Status, x.Mode, x.Error)
		}
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(cSystem, `context (JSON): {"k":1}`) {
			t.Errorf("c's prompt lacks the context:\n%s", cSystem)
		}
		for _, want := range []string{
			"c (c) answered: All fine.",
			`"missing" = fallback (nothing is stored under it yet: this is the default you gave)`,
			`could not read "CALL: ask c what is …" as a call`,
		} {
			if !strings.Contains(followUp, want) {
				t.Errorf("a's follow-up lacks %q:\n%s", want, followUp)
			}
		}
		ask := findComm(x, workflow.CommAsk, "a", "c")
		if ask == nil || ask.Content != "What's up?" || ask.Metadata["context"] == nil {
			t.Fatalf("ask %+v", ask)
		}
		if k := ask.Metadata["context"].(map[string]any)["k"]; k != 1.0 {
			t.Errorf("ask context %v", ask.Metadata["context"])
		}
		logged := false
		for _, l := range x.Logs {
			logged = logged || (l.Level == "warning" && strings.Contains(l.Message, "CALL: ask c what is up"))
		}
		if !logged {
			t.Errorf("the unreadable line is not in the execution's log: %+v", x.Logs)
		}
	}
	t.Run("simple", func(t *testing.T) { check(t, workflow.ModeSimple, nil) })
	t.Run("pubsub", func(t *testing.T) {
		bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
			check(t, workflow.ModePubSub, connectBus(t, url))
		})
	})
}

// TestDemoModelCarriesAContext: the demo model echoes an ask with a
// context dict from its prompt, and the executor carries it out.
func TestDemoModelCarriesAContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	w := parse(t, `{"name":"demo","nodes":[
	 {"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"CALL: ask_node('c', \"What's up?\", {\"k\": 1})"}},
	 {"id":"c","type":"ai-processor","config":{"can_communicate":true}}]}`)
	x := e.run(t, w, executor.Options{})
	ask, resp := findComm(x, workflow.CommAsk, "a", "c"), findComm(x, workflow.CommResponse, "c", "a")
	if x.Status != workflow.ExecSuccess || ask == nil || resp == nil || resp.Metadata["success"] != true {
		t.Fatalf("status %s log %+v", x.Status, x.CommunicationLog)
	}
	if ctx, _ := ask.Metadata["context"].(map[string]any); ctx["k"] != 1.0 {
		t.Errorf("ask metadata %v", ask.Metadata)
	}
}
