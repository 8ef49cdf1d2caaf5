package web_test

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

var streamSecrets = []string{"SEKRETVALUE1234", "SEKRET", "UE1234XYZ"}

// streamedReply holds every secret, whole and cut, and ends in one cut
// short.
const streamedReply = " SEKRETVALUE1234 and SEKRET, SEKRETX and xxSEKRETVALUE1234XYZ, VALUE UE1234XYZ; cut short: SEKRETVAL"

// The node's prompt tells the model how many characters to stream at a
// time; its secrets overlap, one is the start of another.
const secretStreamDoc = `{"name":"stream","nodes":[
	{"id":"s","type":"start"},
	{"id":"a","type":"ai-processor","config":{"prompt":"chunk {{n}}: use {{k1}} {{k2}} {{k3}}"}}],
	"edges":[{"from":"s","to":"a"}],
	"variables":[{"name":"n","value":"4"},
		{"name":"k1","value":"SEKRETVALUE1234","secret":true},
		{"name":"k2","value":"SEKRET","secret":true},
		{"name":"k3","value":"UE1234XYZ","secret":true}]}`

// checkStreamed fails when the streamed pieces of a reply, joined, differ
// from the node's masked output (or from its start, when the stream may
// end with the output in place of its last pieces), hold a secret, or when
// a piece ends with the start of a secret that the text after it
// completes.
func checkStreamed(t *testing.T, where string, pieces []string, output string, whole bool) {
	t.Helper()
	joined := strings.Join(pieces, "")
	for _, s := range streamSecrets {
		if strings.Contains(joined, s) {
			t.Fatalf("%s: the stream %q holds the secret %q", where, pieces, s)
		}
	}
	if whole && joined != output || !strings.HasPrefix(output, joined) {
		t.Fatalf("%s: the stream %q joins to %q; the masked output is %q", where, pieces, joined, output)
	}
	at := 0
	for _, p := range pieces {
		at += len(p)
		for _, s := range streamSecrets {
			for j := 1; j < len(s); j++ {
				if strings.HasSuffix(joined[:at], s[:j]) && strings.HasPrefix(joined[at:], s[j:]) {
					t.Fatalf("%s: the stream %q cuts the secret %q after %q", where, pieces, s, s[:j])
				}
			}
		}
	}
}

// TestStreamedSecretsMaskedInLiveStreams watches a run whose model streams
// secrets 1, 2, 3 and 4 characters at a time on the API's event stream and
// on the dashboard's live view at once: neither shows a secret, whole or in
// pieces, and each joins its streamed text to the node's masked output.
func TestStreamedSecretsMaskedInLiveStreams(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		n := 4
		if _, rest, ok := strings.Cut(req.Messages[len(req.Messages)-1].Content, "chunk "); ok {
			n, _ = strconv.Atoi(rest[:1])
		}
		// Stream only once both streams are watching.
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
		return llmtest.Reply{Content: streamedReply, Chunk: n}
	})
	model := llm.NewOpenAI(llm.Config{BaseURL: srv.URL(), Timeout: 40 * time.Second, MaxRetries: -1}, testLogger(t))
	s, _ := newUI(t, web.Config{}, withModel(model))
	code, body, _ := s.do(t, "POST", "/workflows/", secretStreamDoc)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	wid := decode[map[string]any](t, body)["id"].(string)
	for n := 1; n <= 4; n++ {
		t.Run(fmt.Sprintf("%d_chars", n), func(t *testing.T) {
			code, body, _ := s.do(t, "POST", "/workflows/"+wid+"/execute", fmt.Sprintf(`{"inputs":{"n":"%d"},"async_execution":true}`, n))
			if code != 202 {
				t.Fatalf("execute: %d %s", code, body)
			}
			id := decode[map[string]any](t, body)["execution_id"].(string)
			type result struct {
				pieces []string
				err    error
			}
			watching := make(chan struct{}, 2)
			watch := func(path string, piece func(event, data string) (string, bool)) chan result {
				done := make(chan result, 1)
				go func() {
					req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL+path, nil)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						done <- result{err: err}
						watching <- struct{}{}
						return
					}
					defer resp.Body.Close()
					first := true
					events := sseEvents(t, resp.Body, func(event string) bool {
						if first {
							first = false
							watching <- struct{}{}
						}
						return event == "end"
					})
					var pieces []string
					for _, e := range events {
						if p, ok := piece(e[0], e[1]); ok {
							pieces = append(pieces, p)
						}
						for _, s := range streamSecrets {
							if strings.Contains(html.UnescapeString(e[1]), s) {
								t.Errorf("%s: event %s holds the secret %q: %s", path, e[0], s, e[1])
							}
						}
					}
					done <- result{pieces: pieces}
				}()
				return done
			}
			api := watch("/workflows/executions/"+id+"/events", func(event, data string) (string, bool) {
				if event != "delta" {
					return "", false
				}
				var ev workflow.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Delta == nil {
					t.Errorf("delta event %s: %v", data, err)
					return "", false
				}
				return ev.Delta.Text, true
			})
			ui := watch("/ui/executions/"+id+"/live", func(event, data string) (string, bool) {
				// Node "a" is the second node: its streamed text is delta-1.
				return html.UnescapeString(data), event == "delta-1"
			})
			<-watching
			<-watching
			select {
			case release <- struct{}{}:
			case <-time.After(30 * time.Second):
				t.Fatal("the model was not called")
			}
			apiGot, uiGot := <-api, <-ui
			if apiGot.err != nil || uiGot.err != nil {
				t.Fatalf("watch: %v, %v", apiGot.err, uiGot.err)
			}
			code, body, _ = s.do(t, "GET", "/workflows/executions/"+id, "")
			x := decode[workflow.Execution](t, body)
			out, _ := x.NodeStates["a"].Output.(string)
			if code != 200 || x.Status != workflow.ExecSuccess {
				t.Fatalf("record: %d %s", code, body)
			}
			if len(apiGot.pieces) < 2 {
				t.Fatalf("streamed pieces: API %q, dashboard %q", apiGot.pieces, uiGot.pieces)
			}
			checkStreamed(t, "API events", apiGot.pieces, out, true)
			// The live view shows a node's output in place of the streamed
			// text once the node ends, and drops the deltas it has not sent
			// by then.
			checkStreamed(t, "dashboard live view", uiGot.pieces, out, false)
			if !strings.HasSuffix(out, workflow.Mask) {
				t.Fatalf("output %q: the secret it ends in is cut short, and masked all the same", out)
			}
		})
	}
}
