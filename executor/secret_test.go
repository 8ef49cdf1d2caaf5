package executor_test

import (
	"encoding/json"
	"fmt"
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
	t.Parallel()
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
	t.Parallel()
	r := workflow.NewRedactor([]string{"hunter22", `a"quote`})
	if got := r.String(`pw hunter22 and {"k":"a\"quote"}`); got != `pw •••• and {"k":"••••"}` {
		t.Fatalf("got %q", got)
	}
	if workflow.NewRedactor(nil) != nil {
		t.Fatal("no secrets: nil redactor")
	}
}

// streamSecrets overlap on purpose: one is the start of another, one begins
// with the end of another.
var streamSecrets = []string{"SEKRETVALUE1234", "SEKRET", "UE1234XYZ"}

// streamedReply holds every secret, whole and cut, and ends in one cut
// short.
const streamedReply = " SEKRETVALUE1234 and SEKRET, SEKRETX and xxSEKRETVALUE1234XYZ, VALUE UE1234XYZ; cut short: SEKRETVAL"

// secretStreamDoc's node repeats its secrets: streamSecrets, as variables.
const secretStreamDoc = `{"name":"stream","nodes":[
	{"id":"s","type":"start"},
	{"id":"a","type":"ai-processor","config":{"prompt":"use {{k1}} {{k2}} {{k3}}"}}],
	"edges":[{"from":"s","to":"a"}],
	"variables":[{"name":"k1","value":"SEKRETVALUE1234","secret":true},
		{"name":"k2","value":"SEKRET","secret":true},
		{"name":"k3","value":"UE1234XYZ","secret":true}]}`

// checkDeltas fails when the deltas of a streamed reply, joined, differ from
// the node's masked output, hold a secret, or when one delta ends with the
// start of a secret that the text after it completes.
func checkDeltas(t *testing.T, deltas []string, output string) {
	t.Helper()
	joined := strings.Join(deltas, "")
	for _, s := range streamSecrets {
		if strings.Contains(joined, s) {
			t.Fatalf("the stream %q holds the secret %q", deltas, s)
		}
	}
	if joined != output {
		t.Fatalf("deltas %q join to %q; the masked output is %q", deltas, joined, output)
	}
	at := 0
	for _, d := range deltas {
		at += len(d)
		for _, s := range streamSecrets {
			for j := 1; j < len(s); j++ {
				if strings.HasSuffix(joined[:at], s[:j]) && strings.HasPrefix(joined[at:], s[j:]) {
					t.Fatalf("deltas %q cut the secret %q after %q", deltas, s, s[:j])
				}
			}
		}
	}
}

// TestStreamedSecretsAreMasked runs a model that streams its reply 1, 2, 3
// and 4 characters at a time, cutting the secrets across deltas at every
// place: the live deltas join to the masked output and show no secret, not
// even in pieces.
func TestStreamedSecretsAreMasked(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 4; n++ {
		t.Run(fmt.Sprintf("%d_chars", n), func(t *testing.T) {
			t.Parallel()
			model, _ := openAIModel(t, func(openai.ChatCompletionRequest) llmtest.Reply {
				return llmtest.Reply{Content: streamedReply, Chunk: n}
			})
			e := newEnv(t, model, nil, executor.Config{})
			events, stop := e.exec.SubscribeAll()
			defer stop()
			got := make(chan []string)
			go func() {
				var deltas []string
				for ev := range events {
					if ev.Kind == workflow.EventDelta && ev.Delta.NodeID == "a" {
						deltas = append(deltas, ev.Delta.Text)
					}
				}
				got <- deltas
			}()
			x := e.run(t, parse(t, secretStreamDoc), executor.Options{})
			stop()
			deltas := <-got
			out, _ := x.NodeStates["a"].Output.(string)
			if x.Status != workflow.ExecSuccess || len(deltas) < 2 {
				t.Fatalf("status %s, %d deltas", x.Status, len(deltas))
			}
			checkDeltas(t, deltas, out)
			whole := strings.NewReplacer("SEKRETVALUE1234", "••••", "SEKRET", "••••", "UE1234XYZ", "••••")
			if want := whole.Replace(strings.TrimSuffix(streamedReply, "SEKRETVAL")) + workflow.Mask; out != want {
				t.Fatalf("output %q", out)
			}
		})
	}
}
