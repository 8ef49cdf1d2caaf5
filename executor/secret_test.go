package executor_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// TestSecretsAreMasked runs a workflow whose secret variable reaches the
// model, which repeats it everywhere it can: in its output, in an ask, in
// the shared context, in a broadcast. The model gets the real value; the
// record, the live events and what the bus monitor is shown carry the mask.
func TestSecretsAreMasked(t *testing.T) {
	const secret = "sk-live-ABCDEF123456"
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		var mu sync.Mutex
		modelSaw := false
		model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
			last := req.Messages[len(req.Messages)-1].Content
			mu.Lock()
			modelSaw = modelSaw || strings.Contains(last, secret)
			mu.Unlock()
			switch {
			case strings.Contains(req.Messages[0].Content, "asks you the question"):
				return llmtest.Reply{Content: "the key you asked about is " + secret}
			case strings.HasPrefix(last, "Results of your calls"):
				return llmtest.Reply{Content: "final, with " + secret}
			}
			return llmtest.Reply{Content: "CALL: set_shared_context('k', '" + secret + "') CALL: broadcast_message('key " + secret + "') CALL: ask_node('b', 'is " + secret + " valid?')"}
		})
		b := connectBus(t, url)
		e := newEnv(t, model, b, executor.Config{})
		w := parse(t, `{"name":"secret","metadata":{"communication_mode":"pubsub"},"nodes":[
			{"id":"s","type":"start"},
			{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"use {{api_key}}"}},
			{"id":"b","type":"ai-processor","config":{"system_prompt":"b"}}],
			"edges":[{"from":"s","to":"a"}],
			"variables":[{"name":"api_key","value":"placeholder","secret":true}]}`)
		events, stop := e.exec.SubscribeAll()
		defer stop()
		// What the bus monitor would show: raw traffic through Redact while
		// the execution runs.
		wire := watch(t, url)
		var monitorSaw []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for m := range wire {
				data, _ := json.Marshal(m)
				meta, _ := m["metadata"].(map[string]any)
				id, _ := meta["execution_id"].(string)
				monitorSaw = append(monitorSaw, e.exec.Redact(id, string(data)))
				if m["type"] == "response" {
					return
				}
			}
		}()
		x := e.run(t, w, executor.Options{Inputs: map[string]any{"api_key": secret}})
		<-done
		if x.Status != "success" || !modelSaw {
			t.Fatalf("status %s; model saw the secret: %v", x.Status, modelSaw)
		}
		record, _ := json.Marshal(x)
		if strings.Contains(string(record), secret) {
			t.Fatalf("the record leaks the secret: %s", record)
		}
		if !strings.Contains(string(record), workflow.Mask) || x.Inputs["api_key"] != workflow.Mask {
			t.Fatalf("the record should show the mask: inputs %v", x.Inputs)
		}
		for _, l := range monitorSaw {
			if strings.Contains(l, secret) {
				t.Fatalf("the bus monitor would show the secret: %s", l)
			}
		}
		if len(monitorSaw) < 2 {
			t.Fatalf("the monitor saw %d messages", len(monitorSaw))
		}
		stop()
		for ev := range events {
			data, _ := json.Marshal(ev)
			if strings.Contains(string(data), secret) {
				t.Fatalf("a live event leaks the secret: %s", data)
			}
		}
	})
}

func TestRedactor(t *testing.T) {
	r := workflow.NewRedactor([]string{"hunter22", `a"quote`})
	if got := r.String(`pw hunter22 and {"k":"a\"quote"}`); got != `pw •••• and {"k":"••••"}` {
		t.Fatalf("got %q", got)
	}
	if workflow.NewRedactor(nil) != nil {
		t.Fatal("no secrets: nil redactor")
	}
}
