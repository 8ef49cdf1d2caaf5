package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// TestKillWhileWaitingThenContinue kills the real program (SIGKILL) while
// one execution waits for a person's answer and another for a budget
// approval, starts it again on the same data, and finds both still
// waiting under their ids (not interrupted), their completed nodes kept;
// an answer and an approval then finish them. The model server's counts
// show what ran again: nothing that had completed, and the node that was
// held over the budget (its reply was in memory only), from its start.
func TestKillWhileWaitingThenContinue(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := map[string]int{}
	srv := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		prompt := req.Messages[len(req.Messages)-1].Content
		mu.Lock()
		calls[prompt]++
		mu.Unlock()
		return llmtest.Reply{Content: "done: " + prompt, Usage: &openai.Usage{PromptTokens: 15, CompletionTokens: 5, TotalTokens: 20}}
	})
	count := func(prompt string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[prompt]
	}
	env := []string{"OPENAI_BASE_URL=" + srv.URL(), "OPENAI_API_KEY=test", "SWITCHBOARD_LOG_LEVEL=info"}
	data := t.TempDir()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--embedded-redis-addr", "127.0.0.1:0"}

	p := startProcess(t, env, args...)
	var human, budget map[string]any
	postJSON(t, p.url+"/workflows/", `{"name":"review","nodes":[
		{"id":"draft","type":"ai-processor","config":{"prompt":"write a draft"}},
		{"id":"review","type":"human","config":{"question":"Publish {{outputs.draft}}?","input":"choice","choices":["yes","no"],"timeout_seconds":86400,"default":"no"}},
		{"id":"final","type":"ai-processor","config":{"prompt":"publish? {{outputs.review}}"}}],
		"edges":[{"from":"draft","to":"review"},{"from":"review","to":"final"}]}`, &human)
	postJSON(t, p.url+"/workflows/", `{"name":"pricey","metadata":{"token_budget":10,"on_budget":"pause"},"nodes":[
		{"id":"x","type":"ai-processor","config":{"prompt":"first"}},
		{"id":"y","type":"ai-processor","config":{"prompt":"second"}}],
		"edges":[{"from":"x","to":"y"}]}`, &budget)
	var hx, bx workflow.Execution
	// A synchronous execute answers once the execution waits, and what it
	// waits for is stored by then.
	if code := postJSON(t, fmt.Sprintf("%s/workflows/%s/execute", p.url, human["id"]), `{}`, &hx); code != 200 || hx.Status != workflow.ExecWaiting {
		t.Fatalf("human execution: %d %s %s", code, hx.Status, hx.Error)
	}
	if code := postJSON(t, fmt.Sprintf("%s/workflows/%s/execute", p.url, budget["id"]), `{}`, &bx); code != 200 || bx.Status != workflow.ExecWaiting {
		t.Fatalf("budget execution: %d %s %s", code, bx.Status, bx.Error)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("program did not die after SIGKILL")
	}

	p2 := startProcess(t, env, args...)
	// Each continues and waits again before anyone may answer it.
	p2.log.waitFor(t, "Node review waits for a person's answer")
	p2.log.waitFor(t, "the execution waits for an approval")
	var x workflow.Execution
	if code := getJSON(t, p2.url+"/workflows/executions/"+hx.ID, &x); code != 200 || x.Status != workflow.ExecWaiting || len(x.Waiting) != 1 {
		t.Fatalf("after the restart: %d %s %+v", code, x.Status, x.Waiting)
	}
	if w := x.Waiting[0]; w.NodeID != "review" || w.Question != "Publish done: write a draft?" || !w.Since.Equal(hx.Waiting[0].Since) {
		t.Fatalf("wait after the restart %+v, before %+v", w, hx.Waiting[0])
	}
	if d := x.NodeStates["draft"]; d == nil || d.Status != workflow.NodeCompleted || d.Output != "done: write a draft" {
		t.Fatalf("draft after the restart: %+v", d)
	}
	var ok map[string]any
	if code := postJSON(t, p2.url+"/workflows/executions/"+hx.ID+"/input", `{"node_id":"review","answer":"yes"}`, &ok); code != 202 {
		t.Fatalf("input: %d %v", code, ok)
	}
	if code := postJSON(t, p2.url+"/workflows/executions/"+bx.ID+"/approve", `{"extra_tokens":1000}`, &ok); code != 202 {
		t.Fatalf("approve: %d %v", code, ok)
	}
	for _, id := range []string{hx.ID, bx.ID} {
		untilEnd(t, p2.url, id)
	}
	if code := getJSON(t, p2.url+"/workflows/executions/"+hx.ID, &x); code != 200 || x.Status != workflow.ExecSuccess ||
		x.NodeStates["final"].Output != "done: publish? yes" || x.ID != hx.ID {
		t.Fatalf("human execution at the end: %s (%s) final %v", x.Status, x.Error, x.NodeStates["final"])
	}
	if code := getJSON(t, p2.url+"/workflows/executions/"+bx.ID, &x); code != 200 || x.Status != workflow.ExecSuccess || x.Usage.TotalTokens != 60 {
		t.Fatalf("budget execution at the end: %s (%s) tokens %d", x.Status, x.Error, x.Usage.TotalTokens)
	}
	if a, b, c, d := count("write a draft"), count("first"), count("second"), count("publish? yes"); a != 1 || b != 2 || c != 1 || d != 1 {
		t.Fatalf("model calls: draft %d, first %d (want 2: held over the budget, run again), second %d, final %d", a, b, c, d)
	}
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
}

// untilEnd reads execution id's event stream until its "end", which comes
// once the execution has ended and all of it is stored.
func untilEnd(t *testing.T, base, id string) {
	t.Helper()
	client := &http.Client{Timeout: 60 * time.Second} // a stream that never ends fails the test
	resp, err := client.Get(base + "/workflows/executions/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "event: end" {
			return
		}
	}
	t.Fatalf("the event stream of %s closed without an end: %v", id, sc.Err())
}
