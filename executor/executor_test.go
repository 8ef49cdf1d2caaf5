package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// testLogger writes what the engine, the store and the model client log to
// the test's output, so a failing test shows what they said.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type env struct {
	db   *store.DB
	exec *executor.Executor
}

func newEnv(t *testing.T, model executor.LLM, ps executor.PubSub, cfg executor.Config) *env {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PingTimeout == 0 {
		// A pubsub execution whose ping and subscriptions take longer than
		// PingTimeout rightly goes in-process; on a loaded machine, among
		// parallel tests and under -race, they can outlast the default 2 s,
		// and the tests that expect Redis to be used would fail.
		cfg.PingTimeout = 30 * time.Second
	}
	ex := executor.New(db, model, ps, testLogger(t), cfg)
	t.Cleanup(func() {
		// t.Context() is done before cleanups run: the shutdown gets its own.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ex.Shutdown(sctx)
		db.Close()
	})
	return &env{db: db, exec: ex}
}

// openAIModel is the real go-openai client pointed at a test server.
func openAIModel(t *testing.T, h llmtest.Handler) (*llm.OpenAI, *llmtest.Server) {
	srv := llmtest.NewServer(t, h)
	return llm.NewOpenAI(llm.Config{BaseURL: srv.URL(), APIKey: "test", Timeout: 10 * time.Second, MaxRetries: -1}, testLogger(t)), srv
}

func parse(t *testing.T, doc string) *workflow.Workflow {
	t.Helper()
	w, err := workflow.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return w
}

func (e *env) run(t *testing.T, w *workflow.Workflow, opts executor.Options) *workflow.Execution {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if w.ID == "" {
		if err := e.db.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	// Every execution of these tests also checks that the record kept in
	// memory for a synchronous caller is, as JSON, the one in the store.
	opts.KeepRecord = true
	r, err := e.exec.Start(w, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := r.Wait(ctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
	x, err := e.db.GetExecution(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	kept, ok := r.Record()
	if !ok {
		t.Fatal("Record after the run ended: not kept")
	}
	if a, b := mustJSON(t, kept), mustJSON(t, x); a != b {
		t.Fatalf("the kept record differs from the stored one:\nkept   %s\nstored %s", a, b)
	}
	return x
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func example(t *testing.T, name string) *workflow.Workflow {
	data, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, string(data))
}

func findComm(x *workflow.Execution, typ, from, to string) *workflow.CommEntry {
	for i := range x.CommunicationLog {
		c := &x.CommunicationLog[i]
		if c.Type == typ && c.From == from && (to == "" || c.To == to) {
			return c
		}
	}
	return nil
}

func TestQAWithDemoModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	x := e.run(t, example(t, "01_qa.json"), executor.Options{Inputs: map[string]any{"question_topic": "tides"}})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	ask := findComm(x, workflow.CommAsk, "student", "teacher")
	resp := findComm(x, workflow.CommResponse, "teacher", "student")
	if ask == nil || resp == nil {
		t.Fatalf("want an ask and a response, got %+v", x.CommunicationLog)
	}
	if ask.Content != "Can you explain tides in two sentences?" {
		t.Errorf("ask content %q: the input should override the variable", ask.Content)
	}
	out, _ := x.NodeStates["student"].Output.(string)
	if !strings.Contains(out, resp.Content) {
		t.Errorf("student output should contain the teacher's answer %q, got %q", resp.Content, out)
	}
	if resp.Metadata["mode"] != "inprocess" || resp.Metadata["success"] != true {
		t.Errorf("response metadata %v", resp.Metadata)
	}
	for _, id := range []string{"start", "student", "teacher", "end"} {
		if s := x.NodeStates[id]; s == nil || s.Status != workflow.NodeCompleted || s.StartedAt == nil || s.FinishedAt == nil {
			t.Errorf("node %s state %+v", id, s)
		}
	}
	if x.NodeStates["student"].Usage.TotalTokens == 0 || x.Usage.TotalTokens == 0 {
		t.Errorf("usage not recorded: node %+v total %+v", x.NodeStates["student"].Usage, x.Usage)
	}
	if x.Mode != workflow.ModeSimple || x.RequestedMode != workflow.ModeSimple {
		t.Errorf("modes %q %q", x.RequestedMode, x.Mode)
	}
}

func TestTeamBroadcastAndSharedContext(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	systems := map[string]string{}
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		user := req.Messages[len(req.Messages)-1].Content
		if req.Messages[0].Role == openai.ChatMessageRoleSystem {
			mu.Lock()
			systems[req.Messages[0].Content[:20]] = req.Messages[0].Content
			mu.Unlock()
		}
		switch {
		case strings.HasPrefix(user, "Results of your calls"):
			return llmtest.Reply{Content: "done: " + user}
		case strings.Contains(user, "Find three key facts"):
			return llmtest.Reply{Content: "CALL: set_shared_context('facts', 'bees dance')\nCALL: broadcast_message('facts ready', ['ai-processor'])"}
		case strings.Contains(req.Messages[0].Content, "asks you the question"):
			return llmtest.Reply{Content: "answer to " + user}
		}
		return llmtest.Reply{Content: "CALL: get_shared_context('facts')"}
	})
	e := newEnv(t, model, nil, executor.Config{})
	x := e.run(t, example(t, "02_research_team.json"), executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	if x.SharedContext["facts"] != "bees dance" {
		t.Errorf("shared context %v", x.SharedContext)
	}
	if findComm(x, workflow.CommBroadcast, "researcher", "") == nil || findComm(x, workflow.CommContext, "researcher", "") == nil {
		t.Errorf("want broadcast and context_update entries: %+v", x.CommunicationLog)
	}
	// The writer ran after the broadcast and saw it in its system prompt.
	mu.Lock()
	defer mu.Unlock()
	seen := false
	for _, s := range systems {
		if strings.Contains(s, "Messages broadcast to the team so far:\n- from researcher: facts ready") {
			seen = true
		}
	}
	if !seen {
		t.Errorf("no later node saw the broadcast; system prompts: %v", systems)
	}
	if out, _ := x.NodeStates["writer"].Output.(string); !strings.Contains(out, `"facts" = bees dance`) {
		t.Errorf("writer's follow-up should carry the context value, got %q", out)
	}
}

func TestDiamondRunsBranchesAtTheSameTime(t *testing.T) {
	t.Parallel()
	// The model answers a branch only once both branches are waiting on it,
	// so the run succeeds only if optimist and pessimist overlap in time.
	arrived := make(chan string, 2)
	release := make(chan struct{})
	var once sync.Once
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		sys := req.Messages[0].Content
		if strings.Contains(sys, "best case") || strings.Contains(sys, "worst case") {
			arrived <- sys
			if len(arrived) == 2 {
				once.Do(func() { close(release) })
			}
			select {
			case <-release:
				return llmtest.Reply{Content: "argued"}
			case <-time.After(20 * time.Second):
				return llmtest.Reply{Status: 500, Content: "branches did not overlap"}
			}
		}
		return llmtest.Reply{Content: "decided"}
	})
	e := newEnv(t, model, nil, executor.Config{})
	x := e.run(t, example(t, "03_parallel_diamond.json"), executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	o, p, j := x.NodeStates["optimist"], x.NodeStates["pessimist"], x.NodeStates["judge"]
	if o.StartedAt.After(*p.FinishedAt) || p.StartedAt.After(*o.FinishedAt) {
		t.Errorf("branches did not overlap: %v-%v and %v-%v", o.StartedAt, o.FinishedAt, p.StartedAt, p.FinishedAt)
	}
	if j.StartedAt.Before(*o.FinishedAt) || j.StartedAt.Before(*p.FinishedAt) {
		t.Errorf("judge started before both parents finished")
	}
}

func TestFailedNodeSkipsDependentsAndOthersFinish(t *testing.T) {
	t.Parallel()
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if strings.Contains(req.Messages[len(req.Messages)-1].Content, "FAIL") {
			return llmtest.Reply{Status: 400, Content: "bad request for this node"}
		}
		return llmtest.Reply{Content: "fine"}
	})
	e := newEnv(t, model, nil, executor.Config{})
	w := parse(t, `{"name":"f","nodes":[
		{"id":"s","type":"start"},
		{"id":"a","type":"ai-processor","config":{"prompt":"FAIL"}},
		{"id":"b","type":"ai-processor","config":{"prompt":"ok"}},
		{"id":"c","type":"ai-processor","config":{"prompt":"after a"}},
		{"id":"d","type":"end"}],
		"edges":[{"from":"s","to":"a"},{"from":"s","to":"b"},{"from":"a","to":"c"},{"from":"c","to":"d"},{"from":"b","to":"d"}]}`)
	x := e.run(t, w, executor.Options{})
	if x.Status != workflow.ExecError || !strings.Contains(x.Error, `node "a" failed`) {
		t.Fatalf("status %s error %q", x.Status, x.Error)
	}
	want := map[string]string{"s": "completed", "a": "error", "b": "completed", "c": "skipped", "d": "skipped"}
	for id, st := range want {
		if x.NodeStates[id].Status != st {
			t.Errorf("node %s: %s, want %s (%s)", id, x.NodeStates[id].Status, st, x.NodeStates[id].Error)
		}
	}
	if len(x.Errors) == 0 || x.Errors[0].NodeID != "a" {
		t.Errorf("errors %+v", x.Errors)
	}
}

func TestAskCycleIsRefused(t *testing.T) {
	t.Parallel()
	// The demo model repeats the CALL statements it is given, so b, asked a
	// question that contains an ask back to a, asks a: a cycle.
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	w := parse(t, `{"name":"cycle","nodes":[
		{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"CALL: ask_node('b', 'CALL: ask_node(\"a\", \"are we looping?\")')"}},
		{"id":"b","type":"ai-processor","config":{"can_communicate":true,"prompt":"hello"}}]}`)
	x := e.run(t, w, executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	refused := false
	for _, c := range x.CommunicationLog {
		if c.From == "b" && c.To == "a" && c.Metadata["refused"] == "cycle" {
			refused = true
		}
	}
	if !refused {
		t.Fatalf("want a refused b→a ask, got %+v", x.CommunicationLog)
	}
	if out, _ := x.NodeStates["a"].Output.(string); !strings.Contains(out, "refused: a is already waiting for your answer (a → b → a)") {
		t.Errorf("a's output should carry b's refusal, got %q", out)
	}
}

func TestNestedAskDepthLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{Limits: executor.Limits{MaxDepth: 1}})
	w := parse(t, `{"name":"deep","nodes":[
		{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"CALL: ask_node('b', 'CALL: ask_node(\"c\", \"deeper?\")')"}},
		{"id":"b","type":"ai-processor","config":{"can_communicate":true}},
		{"id":"c","type":"ai-processor","config":{"can_communicate":true}}]}`)
	x := e.run(t, w, executor.Options{})
	var refusal *workflow.CommEntry
	for i, c := range x.CommunicationLog {
		if c.From == "b" && c.To == "c" {
			refusal = &x.CommunicationLog[i]
		}
	}
	if refusal == nil || refusal.Metadata["refused"] != "max_ask_depth" {
		t.Fatalf("want b→c refused for depth, got %+v", x.CommunicationLog)
	}
}

func TestTemplateErrorFailsTheNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	w := parse(t, `{"name":"t","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"Hello {{who}}"}}]}`)
	x := e.run(t, w, executor.Options{})
	if x.Status != workflow.ExecError || !strings.Contains(x.NodeStates["a"].Error, "unknown placeholder {{who}}") {
		t.Fatalf("status %s node %+v", x.Status, x.NodeStates["a"])
	}
}

func TestNodeTimeout(t *testing.T) {
	t.Parallel()
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		return llmtest.Reply{Delay: time.Minute}
	})
	e := newEnv(t, model, nil, executor.Config{})
	w := parse(t, `{"name":"slow","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"hi","timeout_seconds":0.2}}]}`)
	x := e.run(t, w, executor.Options{})
	if x.Status != workflow.ExecError || x.NodeStates["a"].Error != `node "a" timed out after 200ms` {
		t.Fatalf("status %s node %+v", x.Status, x.NodeStates["a"])
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	model, srv := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		return llmtest.Reply{Delay: time.Minute}
	})
	e := newEnv(t, model, nil, executor.Config{})
	w := parse(t, `{"name":"c","nodes":[{"id":"s","type":"start"},{"id":"a","type":"ai-processor","config":{"prompt":"hi"}},{"id":"z","type":"end"}],
		"edges":[{"from":"s","to":"a"},{"from":"a","to":"z"}]}`)
	ctx := t.Context()
	if err := e.db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	events, stop := e.exec.SubscribeAll()
	defer stop()
	r, err := e.exec.Start(w, executor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, events, func(ev workflow.Event) bool {
		return ev.Kind == workflow.EventNode && ev.Node.NodeID == "a" && ev.Node.Status == workflow.NodeRunning
	})
	if !e.exec.Cancel(r.ID) {
		t.Fatal("cancel found no run")
	}
	status, err := r.Wait(ctx)
	if err != nil || status != workflow.ExecCancelled {
		t.Fatalf("status %s err %v", status, err)
	}
	x, _ := e.db.GetExecution(ctx, r.ID)
	if x.NodeStates["a"].Status != workflow.NodeCancelled || x.NodeStates["z"].Status != workflow.NodeCancelled {
		t.Errorf("node states a=%s z=%s", x.NodeStates["a"].Status, x.NodeStates["z"].Status)
	}
	_ = srv
}

func waitFor(t *testing.T, events <-chan workflow.Event, match func(workflow.Event) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			if match(ev) {
				return
			}
		case <-deadline:
			t.Fatal("timed out waiting for event")
		}
	}
}

func TestPubSubWithoutBusFallsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	x := e.run(t, example(t, "04_pubsub_qa.json"), executor.Options{})
	if x.Status != workflow.ExecSuccess || x.RequestedMode != "pubsub" || x.Mode != "simple" || x.FallbackReason == "" {
		t.Fatalf("status %s requested %s used %s reason %q", x.Status, x.RequestedMode, x.Mode, x.FallbackReason)
	}
	found := false
	for _, l := range x.Logs {
		if strings.HasPrefix(l.Message, "Failed to initialize Pub/Sub mode, falling back to simple: ") {
			found = true
		}
	}
	if !found {
		t.Errorf("no fallback log line in %+v", x.Logs)
	}
}

func TestConcurrentExecutionsDoNotSeeEachOther(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	w := parse(t, `{"name":"iso","nodes":[
		{"id":"s","type":"start"},
		{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"CALL: set_shared_context('who', '{{n}}') CALL: ask_node('b', 'who is {{n}}?')"}},
		{"id":"b","type":"ai-processor","config":{"can_communicate":true}}],
		"edges":[{"from":"s","to":"a"}]}`)
	ctx := t.Context()
	if err := e.db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	const n = 50
	runs := make([]*executor.Run, n)
	for i := range runs {
		r, err := e.exec.Start(w, executor.Options{Inputs: map[string]any{"n": fmt.Sprintf("run-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = r
	}
	for i, r := range runs {
		if _, err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		x, err := e.db.GetExecution(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		me := fmt.Sprintf("run-%d", i)
		if x.Status != workflow.ExecSuccess || x.SharedContext["who"] != me {
			t.Fatalf("run %d: status %s shared %v", i, x.Status, x.SharedContext)
		}
		for _, c := range x.CommunicationLog {
			if strings.Contains(c.Content, "run-") && !strings.Contains(c.Content, me+"?") && !strings.Contains(c.Content, "= "+me) {
				t.Fatalf("run %d saw another run's message: %+v", i, c)
			}
		}
	}
}

// Start returns before the new execution's record is committed; Stored
// waits for it, and reports it when the record cannot be written, as does
// the end of the run.
func TestStoredReportsTheRecord(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	w := parse(t, `{"name": "one", "nodes": [{"id": "a", "type": "ai-processor", "config": {"prompt": "hi"}}]}`)
	if err := e.db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r, err := e.exec.Start(w, executor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Stored(ctx); err != nil {
		t.Fatalf("Stored = %v", err)
	}
	if x, err := e.db.GetExecution(ctx, r.ID); err != nil || x.WorkflowID != w.ID {
		t.Fatalf("after Stored: %+v, %v", x, err)
	}
	if _, err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	e.db.Close()
	r, err = e.exec.Start(w, executor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Stored(ctx); workflow.ErrorCode(err) != workflow.CodeUnavailable || !strings.Contains(err.Error(), "record new execution") {
		t.Fatalf("Stored with the database closed = %v, want unavailable", err)
	}
	if _, err := r.Wait(ctx); err == nil {
		t.Fatal("the run of an execution that could not be recorded ended without an error")
	}
}
