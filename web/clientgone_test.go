package web_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// TestClientGoneIsNotAServerError: a client that hangs up while it waits
// for a synchronous execute or resume is logged as having gone away, not
// as a 500, and the run goes on to succeed.
func TestClientGoneIsNotAServerError(t *testing.T) {
	t.Parallel()
	// The model answers only when the test lets it, so the request is
	// still waiting when its client goes.
	asked, release, quit := make(chan struct{}, 4), make(chan struct{}), make(chan struct{})
	model := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply {
		asked <- struct{}{}
		select {
		case <-release:
		case <-quit:
		}
		return llmtest.Reply{Content: "done"}
	})
	t.Cleanup(func() { close(quit) }) // before the model server's Close

	logs := web.NewLogCapture()
	logger := slog.New(logs)
	s := newServer(t, web.Config{}, withLogger(logger),
		withModel(llm.NewOpenAI(llm.Config{BaseURL: model.URL(), MaxRetries: -1}, logger)))
	// Without "later" the node fails before it asks the model: a failed
	// execution to resume.
	id := createWorkflow(t, s, `{"name":"slow","nodes":[{"id":"first","type":"ai-processor","config":{"prompt":"one {{later}}"}}]}`)
	failed := runAndWait(t, s, id)

	events, stop := s.exec.SubscribeAll()
	defer stop()
	for _, path := range []string{"/workflows/" + id + "/execute", "/workflows/executions/" + failed + "/resume"} {
		ctx, hangUp := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+path, strings.NewReader(`{"inputs":{"later":"now"}}`))
		req.Header.Set("Content-Type", "application/json")
		done := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		select {
		case <-asked:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the model was never asked", path)
		}
		hangUp()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: the client's request ended with %v, want it cancelled", path, err)
		}
		line := logs.Wait(t, 10*time.Second, "path="+path)
		if !strings.HasPrefix(line, "INFO client went away") {
			t.Errorf("%s: logged as %q, want INFO client went away", path, line)
		}
		release <- struct{}{}
		// The run finishes, and succeeds, without its client.
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case ev := <-events:
				if ev.Kind == workflow.EventExecution && ev.Execution != nil && workflow.Terminal(ev.Execution.Status) && ev.ExecutionID != failed {
					if ev.Execution.Status != workflow.ExecSuccess {
						t.Fatalf("%s: the run ended %s: %s", path, ev.Execution.Status, ev.Execution.Error)
					}
					break wait
				}
			case <-deadline:
				t.Fatalf("%s: the run did not end", path)
			}
		}
	}
	// (The first run's failure is an error of its node, logged as one.)
	for _, line := range logs.Lines() {
		if strings.HasPrefix(line, "ERROR") && (strings.Contains(line, "status=") || strings.Contains(line, "context canceled")) {
			t.Errorf("logged as a server error: %s", line)
		}
	}
}
