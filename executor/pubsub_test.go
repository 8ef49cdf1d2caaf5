package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

func connectBus(t *testing.T, url string) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, url, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.WaitHealthy(ctx); err != nil {
		t.Fatalf("bus not healthy: %v", err)
	}
	return b
}

// watch PSUBSCRIBEs to every agent channel with a client of its own, as a
// person with redis-cli would, and returns the raw messages it sees.
func watch(t *testing.T, url string) <-chan map[string]any {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	ps := c.PSubscribe(t.Context(), "agent:messages:*")
	if _, err := ps.Receive(t.Context()); err != nil { // the confirmation
		t.Fatal(err)
	}
	out := make(chan map[string]any, 1000)
	go func() {
		for m := range ps.Channel() {
			var v map[string]any
			if json.Unmarshal([]byte(m.Payload), &v) == nil {
				v["_channel"] = m.Channel
				out <- v
			}
		}
	}()
	t.Cleanup(func() { ps.Close(); c.Close() })
	return out
}

func noAgentChannels(t *testing.T, b *bus.Bus) {
	t.Helper()
	chans, err := b.ActiveChannels(t.Context(), "agent:messages:node-*")
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 0 {
		t.Fatalf("leaked agent channels: %v", chans)
	}
}

func TestPubSubExampleEndToEnd(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		b := connectBus(t, url)
		wire := watch(t, url)
		e := newEnv(t, llm.NewDemo(), b, executor.Config{})
		x := e.run(t, example(t, "04_pubsub_qa.json"), executor.Options{})
		if x.Status != workflow.ExecSuccess || x.Mode != "pubsub" || x.RequestedMode != "pubsub" || x.FallbackReason != "" {
			t.Fatalf("status %s mode %s→%s reason %q error %q", x.Status, x.RequestedMode, x.Mode, x.FallbackReason, x.Error)
		}
		ask := findComm(x, workflow.CommAsk, "student", "teacher")
		resp := findComm(x, workflow.CommResponse, "teacher", "student")
		if ask == nil || resp == nil || ask.Metadata["transport"] != "redis" || resp.Metadata["success"] != true {
			t.Fatalf("log %+v", x.CommunicationLog)
		}
		qid, _ := ask.Metadata["message_id"].(string)
		if !strings.HasPrefix(qid, "query:student:teacher:") || resp.Metadata["reply_to"] != qid {
			t.Fatalf("ids: ask %v response %v", ask.Metadata, resp.Metadata)
		}
		if out, _ := x.NodeStates["student"].Output.(string); !strings.Contains(out, resp.Content) {
			t.Fatalf("student output lacks the answer")
		}
		for _, want := range []string{"Using communication mode: pubsub", "Initialized Redis Pub/Sub communication",
			"Registered agent: " + bus.AgentID(x.ID, "student"), "Registered agent: " + bus.AgentID(x.ID, "teacher")} {
			found := false
			for _, l := range x.Logs {
				found = found || l.Message == want
			}
			if !found {
				t.Errorf("log line %q missing", want)
			}
		}
		// An independent subscriber saw the QUERY and its RESPONSE, with the
		// protocol's fields.
		fields := []string{"id", "type", "from_agent", "to_agent", "subject", "content", "priority",
			"requires_response", "reply_to", "timestamp", "expires_at", "metadata"}
		var query, response map[string]any
		deadline := time.After(10 * time.Second)
		for query == nil || response == nil {
			select {
			case m := <-wire:
				if m["id"] == qid && m["type"] == "query" {
					query = m
				}
				if m["reply_to"] == qid && m["type"] == "response" {
					response = m
				}
			case <-deadline:
				t.Fatalf("the watcher did not see query %s and its response", qid)
			}
		}
		for _, m := range []map[string]any{query, response} {
			for _, f := range fields {
				if _, ok := m[f]; !ok {
					t.Errorf("message %v lacks %q", m["type"], f)
				}
			}
			if len(m) != len(fields)+1 {
				t.Errorf("message %v has extra fields: %v", m["type"], m)
			}
		}
		if query["_channel"] != "agent:messages:"+bus.AgentID(x.ID, "teacher") || query["from_agent"] != bus.AgentID(x.ID, "student") {
			t.Errorf("query routing: %v", query)
		}
		if response["_channel"] != "agent:messages:"+bus.AgentID(x.ID, "student") {
			t.Errorf("response routing: %v", response)
		}
		meta, _ := query["metadata"].(map[string]any)
		if meta["execution_id"] != x.ID || query["requires_response"] != true || query["priority"] != "high" {
			t.Errorf("query fields: %v", query)
		}
		noAgentChannels(t, b)
	})
}

func TestPubSubConcurrentExecutions(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		b := connectBus(t, url)
		e := newEnv(t, llm.NewDemo(), b, executor.Config{})
		w := parse(t, `{"name":"iso","metadata":{"communication_mode":"pubsub"},"nodes":[
			{"id":"s","type":"start"},
			{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"CALL: broadcast_message('hello from {{n}}') CALL: ask_node('b', 'are you {{n}}?')"}},
			{"id":"b","type":"ai-processor","config":{"can_communicate":true}}],
			"edges":[{"from":"s","to":"a"}]}`)
		ctx := t.Context()
		if err := e.db.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
		runs := make([]*executor.Run, 50)
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
			x, _ := e.db.GetExecution(ctx, r.ID)
			me := fmt.Sprintf("run-%d", i)
			resp := findComm(x, workflow.CommResponse, "b", "a")
			if x.Status != "success" || x.Mode != "pubsub" || resp == nil || !strings.Contains(resp.Content, me+"?") {
				t.Fatalf("run %d: status %s mode %s response %+v", i, x.Status, x.Mode, resp)
			}
			for _, c := range x.CommunicationLog {
				if strings.Contains(c.Content, "run-") && !strings.Contains(c.Content, me) {
					t.Fatalf("run %d saw %q", i, c.Content)
				}
			}
		}
		noAgentChannels(t, b)
	})
}

func TestPubSubFallsBackWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: bus.Connect succeeds, Ping fails.
	b, err := bus.Connect(t.Context(), "redis://127.0.0.1:1", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := newEnv(t, llm.NewDemo(), b, executor.Config{PingTimeout: 500 * time.Millisecond})
	x := e.run(t, example(t, "04_pubsub_qa.json"), executor.Options{})
	if x.Status != "success" || x.RequestedMode != "pubsub" || x.Mode != "simple" || !strings.Contains(x.FallbackReason, "redis is unreachable") {
		t.Fatalf("status %s mode %s→%s reason %q", x.Status, x.RequestedMode, x.Mode, x.FallbackReason)
	}
	if a := findComm(x, workflow.CommAsk, "student", "teacher"); a == nil || a.Metadata["transport"] != "inprocess" {
		t.Fatalf("ask should go in-process: %+v", a)
	}
}

func TestPubSubRedisLostDuringAsk(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		b := connectBus(t, url)
		release := make(chan struct{})
		asked := make(chan struct{}, 1)
		var releaseOnce sync.Once
		t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
		model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
			last := req.Messages[len(req.Messages)-1].Content
			switch {
			case strings.HasPrefix(last, "Results of your calls") && !strings.Contains(last, "second question"):
				return llmtest.Reply{Content: "CALL: ask_node('teacher', 'second question?')"}
			case strings.HasPrefix(last, "Results of your calls"):
				return llmtest.Reply{Content: "final answer"}
			case strings.Contains(last, "first question"): // teacher answering over Redis: slow
				asked <- struct{}{}
				<-release
				return llmtest.Reply{Content: "late answer"}
			case strings.Contains(last, "second question"):
				return llmtest.Reply{Content: "in-process answer"}
			}
			return llmtest.Reply{Content: "CALL: ask_node('teacher', 'first question?')"}
		})
		e := newEnv(t, model, b, executor.Config{})
		w := parse(t, `{"name":"lost","metadata":{"communication_mode":"pubsub"},"nodes":[
			{"id":"student","type":"ai-processor","config":{"can_communicate":true,"prompt":"go"}},
			{"id":"teacher","type":"ai-processor","config":{"can_communicate":false,"prompt":"wait","system_prompt":"teach"}}],
			"edges":[{"from":"student","to":"teacher"}]}`)
		ctx := t.Context()
		if err := e.db.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
		r, err := e.exec.Start(w, executor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Wait until the teacher is answering the query that came over
		// Redis, then kill Redis.
		select {
		case <-asked:
		case <-time.After(30 * time.Second):
			t.Fatal("the teacher was never asked")
		}
		killed := time.Now()
		ctl.Kill()
		status, err := r.Wait(ctx)
		releaseOnce.Do(func() { close(release) })
		if err != nil {
			t.Fatal(err)
		}
		x, _ := e.db.GetExecution(ctx, r.ID)
		if status != "success" {
			t.Fatalf("status %s: %s", status, x.Error)
		}
		var first, second *workflow.CommEntry
		for i, c := range x.CommunicationLog {
			if c.Type == workflow.CommResponse && c.From == "teacher" {
				if first == nil {
					first = &x.CommunicationLog[i]
				} else {
					second = &x.CommunicationLog[i]
				}
			}
		}
		if first == nil || first.Metadata["success"] != false || !strings.Contains(fmt.Sprint(first.Metadata["error"]), "Redis connection was lost") {
			t.Fatalf("first response should report the lost connection: %+v", x.CommunicationLog)
		}
		if second == nil || second.Content != "in-process answer" || second.Metadata["transport"] != "inprocess" {
			t.Fatalf("the later ask should go in-process: %+v", second)
		}
		// The record's top level says so too, with the time, not only each entry's transport.
		if x.RequestedMode != "pubsub" || x.Mode != "pubsub" {
			t.Errorf("modes %s→%s, want pubsub→pubsub (the run did use Redis)", x.RequestedMode, x.Mode)
		}
		m := lostReason.FindStringSubmatch(x.FallbackReason)
		if m == nil {
			t.Fatalf("fallback_reason = %q, want %s", x.FallbackReason, lostReason)
		}
		if at, err := time.Parse(time.RFC3339, m[1]); err != nil || at.Before(killed.Add(-time.Second)) || at.After(time.Now()) {
			t.Errorf("fallback_reason time %s (%v), want about the kill at %s", m[1], err, killed.Format(time.RFC3339))
		}
		logged := false
		for _, l := range x.Logs {
			logged = logged || l.Level == "warning" && strings.Contains(l.Message, x.FallbackReason)
		}
		if !logged {
			t.Errorf("no warning log with the reason in %+v", x.Logs)
		}
	})
}

var lostReason = regexp.MustCompile(`^Redis connection lost at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ): .*connection lost.*; the rest of the run went in-process$`)

func TestPubSubResentQueryAnsweredOnce(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		b := connectBus(t, url)
		wire := watch(t, url)
		release := make(chan struct{})
		var teacherCalls atomic.Int32
		model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
			last := req.Messages[len(req.Messages)-1].Content
			switch {
			case strings.Contains(req.Messages[0].Content, "asks you the question"):
				teacherCalls.Add(1)
				select {
				case <-release:
				case <-time.After(30 * time.Second):
				}
				return llmtest.Reply{Content: "the one answer"}
			case strings.HasPrefix(last, "Results of your calls"):
				return llmtest.Reply{Content: "final answer"}
			}
			return llmtest.Reply{Content: "CALL: ask_node('teacher', 'once?')"}
		})
		e := newEnv(t, model, b, executor.Config{})
		// A 4 s ask timeout re-sends the query after 2 s.
		w := parse(t, `{"name":"dup","metadata":{"communication_mode":"pubsub","ask_timeout_seconds":4},"nodes":[
			{"id":"student","type":"ai-processor","config":{"can_communicate":true,"prompt":"go"}},
			{"id":"teacher","type":"ai-processor","config":{"system_prompt":"teach"}}]}`)
		ctx := t.Context()
		if err := e.db.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
		r, err := e.exec.Start(w, executor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
	loop:
		for {
			select {
			case m := <-wire:
				if m["type"] == "query" {
					id := m["id"].(string)
					if seen[id]++; seen[id] == 2 {
						break loop
					}
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the query was not re-sent")
			}
		}
		close(release)
		if _, err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		x, _ := e.db.GetExecution(ctx, r.ID)
		resp := findComm(x, workflow.CommResponse, "teacher", "student")
		if resp == nil || resp.Content != "the one answer" {
			t.Fatalf("response %+v", resp)
		}
		// The teacher node itself runs too (no edges), so its own prompt is one
		// more call; the question was answered by one call.
		questions := 0
		for _, c := range x.CommunicationLog {
			if c.Type == workflow.CommAsk {
				questions++
			}
		}
		if n := teacherCalls.Load(); n != 1 || questions != 1 {
			t.Fatalf("the re-sent query was answered %d times (asks %d)", n, questions)
		}
	})
}

func TestPubSubRedisRestartBetweenExecutions(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		b := connectBus(t, url)
		// The runs that must use Redis wait for it as newEnv's executors do;
		// the run while Redis is down uses an executor on the same store and
		// bus that gives up after 500 ms, so the test does not wait that out.
		e := newEnv(t, llm.NewDemo(), b, executor.Config{})
		down := &env{db: e.db, exec: executor.New(e.db, llm.NewDemo(), b, testLogger(t), executor.Config{PingTimeout: 500 * time.Millisecond})}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = down.exec.Shutdown(sctx)
		})
		w := example(t, "04_pubsub_qa.json")
		if x := e.run(t, w, executor.Options{}); x.Mode != "pubsub" || x.Status != "success" {
			t.Fatalf("before: %s %s", x.Mode, x.Status)
		}
		ctl.Kill()
		if x := down.run(t, w, executor.Options{}); x.Mode != "simple" || x.FallbackReason == "" || x.Status != "success" {
			t.Fatalf("while down: mode %s reason %q status %s", x.Mode, x.FallbackReason, x.Status)
		}
		ctl.Restart()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if err := b.WaitHealthy(ctx); err != nil {
			t.Fatalf("bus did not come back: %v", err)
		}
		x := e.run(t, w, executor.Options{})
		if x.Mode != "pubsub" || x.Status != "success" || findComm(x, workflow.CommResponse, "teacher", "student") == nil {
			t.Fatalf("after restart: mode %s status %s", x.Mode, x.Status)
		}
		noAgentChannels(t, b)
	})
}

// TestTwoHundredConcurrentExecutions starts 200 executions at once, in both
// modes, cancels some, and checks that every one is stored in a terminal
// state with every node settled. CI runs it under -race.
func TestTwoHundredConcurrentExecutions(t *testing.T) {
	t.Parallel()
	emb, err := bus.StartEmbedded("127.0.0.1:0", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	b := connectBus(t, emb.URL())
	e := newEnv(t, &llm.Demo{Latency: 5 * time.Millisecond}, b, executor.Config{})
	ctx := t.Context()
	w := example(t, "02_research_team.json")
	if err := e.db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	runs := make([]*executor.Run, 200)
	for i := range runs {
		mode := "simple"
		if i%2 == 0 {
			mode = "pubsub"
		}
		r, err := e.exec.Start(w, executor.Options{Mode: mode, Inputs: map[string]any{"topic": fmt.Sprintf("t%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = r
		if i%10 == 3 {
			e.exec.Cancel(r.ID)
		}
	}
	for _, r := range runs {
		if _, err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range runs {
		x, err := e.db.GetExecution(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !workflow.Terminal(x.Status) || x.EndTime == nil {
			t.Fatalf("run %d stored as %s", i, x.Status)
		}
		if i%10 != 3 && x.Status != "success" {
			t.Fatalf("run %d: %s %s", i, x.Status, x.Error)
		}
		for id, n := range x.NodeStates {
			if n.Status == workflow.NodePending || n.Status == workflow.NodeRunning {
				t.Fatalf("run %d node %s left %s", i, id, n.Status)
			}
		}
	}
	noAgentChannels(t, b)
}
