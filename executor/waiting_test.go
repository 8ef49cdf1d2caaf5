package executor_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/pricing"
	"github.com/switchboard-dev/switchboard/workflow"
)

// startWaiting stores w, starts it and returns the run once the execution
// waits for a person, with its stored record then.
func startWaiting(t *testing.T, e *env, w *workflow.Workflow, opts executor.Options) (*executor.Run, *workflow.Execution) {
	t.Helper()
	ctx := t.Context()
	if w.ID == "" {
		if err := e.db.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.exec.Start(w, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, untilWaiting(t, e, r)
}

// untilWaiting waits until run r waits, and returns its stored record.
func untilWaiting(t *testing.T, e *env, r *executor.Run) *workflow.Execution {
	t.Helper()
	select {
	case <-r.Waiting():
	case <-r.Done():
		x, _ := e.db.GetExecution(t.Context(), r.ID)
		t.Fatalf("the run ended (%s: %s) instead of waiting", x.Status, x.Error)
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not wait")
	}
	x, err := e.db.GetExecution(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != workflow.ExecWaiting || len(x.Waiting) == 0 {
		t.Fatalf("stored record: status %s waits %+v, want waiting", x.Status, x.Waiting)
	}
	return x
}

// finish waits for r to end and returns its stored record.
func finish(t *testing.T, e *env, r *executor.Run) *workflow.Execution {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := r.Wait(ctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
	x, err := e.db.GetExecution(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func problemPath(err error) string {
	if we, ok := err.(*workflow.Error); ok && len(we.Problems) > 0 {
		return we.Problems[0].Path
	}
	return ""
}

const humanFlow = `{"name":"h","variables":[{"name":"topic","value":"the launch"}],"nodes":[
	{"id":"s","type":"start"},
	{"id":"review","type":"human","config":{"question":"Go ahead with {{topic}}?"}},
	{"id":"a","type":"ai-processor","config":{"prompt":"The reviewer said: {{outputs.review}}"}},
	{"id":"z","type":"end"}],
	"edges":[{"from":"s","to":"review"},{"from":"review","to":"a"},{"from":"a","to":"z"}]}`

// A human node waits in status waiting with its rendered question; a
// wrong node is refused by name, and the person's answer is the node's
// output, which the next node reads.
func TestHumanNodeAnswered(t *testing.T) {
	t.Parallel()
	var prompts atomic.Value
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		prompts.Store(req.Messages[len(req.Messages)-1].Content)
		return llmtest.Reply{Content: "done"}
	})
	e := newEnv(t, model, nil, executor.Config{})
	r, x := startWaiting(t, e, parse(t, humanFlow), executor.Options{})
	w := x.Waiting[0]
	if w.Reason != workflow.WaitHuman || w.NodeID != "review" || w.Question != "Go ahead with the launch?" || w.Input != workflow.HumanText || w.Since.IsZero() {
		t.Fatalf("wait = %+v", w)
	}
	if x.NodeStates["review"].Status != workflow.NodeWaiting {
		t.Fatalf("review is %s, want waiting", x.NodeStates["review"].Status)
	}
	if err := e.exec.Answer(r.ID, "a", "yes"); workflow.ErrorCode(err) != workflow.CodeInvalid || problemPath(err) != "node_id" {
		t.Fatalf("answer to a node that does not wait = %v, want invalid naming node_id", err)
	}
	if err := e.exec.Approve(r.ID, 100, 0); workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Fatalf("approve of an execution waiting for an answer = %v, want a conflict", err)
	}
	if err := e.exec.Answer(r.ID, "review", "yes, go"); err != nil {
		t.Fatal(err)
	}
	x = finish(t, e, r)
	if x.Status != workflow.ExecSuccess || x.NodeStates["review"].Output != "yes, go" || len(x.Waiting) != 0 {
		t.Fatalf("status %s (%s), review output %v, waits %v", x.Status, x.Error, x.NodeStates["review"].Output, x.Waiting)
	}
	if p, _ := prompts.Load().(string); p != "The reviewer said: yes, go" {
		t.Fatalf("the next node's prompt = %q", p)
	}
	if err := e.exec.Answer(r.ID, "review", "again"); workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Fatalf("answer after the end = %v, want a conflict", err)
	}
}

// A choice takes only one of its choices; another answer is refused by
// name and the node still waits.
func TestHumanChoice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, executor.Config{})
	r, x := startWaiting(t, e, parse(t, `{"name":"c","nodes":[
		{"id":"pick","type":"human","config":{"question":"Which?","input":"choice","choices":["red","blue"]}}]}`), executor.Options{})
	if w := x.Waiting[0]; w.Input != workflow.HumanChoice || strings.Join(w.Choices, ",") != "red,blue" {
		t.Fatalf("wait = %+v", w)
	}
	if err := e.exec.Answer(r.ID, "pick", "green"); workflow.ErrorCode(err) != workflow.CodeInvalid || problemPath(err) != "answer" {
		t.Fatalf("a choice not offered = %v, want invalid naming answer", err)
	}
	if err := e.exec.Answer(r.ID, "pick", "blue"); err != nil {
		t.Fatal(err)
	}
	if x := finish(t, e, r); x.Status != workflow.ExecSuccess || x.NodeStates["pick"].Output != "blue" {
		t.Fatalf("status %s output %v", x.Status, x.NodeStates["pick"].Output)
	}
}

// Without an answer in time a human node takes its default, or fails
// without one.
func TestHumanTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, executor.Config{})
	x := e.run(t, parse(t, `{"name":"t","nodes":[
		{"id":"q","type":"human","config":{"question":"Ship?","input":"choice","choices":["yes","no"],"timeout_seconds":0.01,"default":"no"}}]}`), executor.Options{})
	if x.Status != workflow.ExecSuccess || x.NodeStates["q"].Output != "no" {
		t.Fatalf("with a default: status %s (%s) output %v", x.Status, x.Error, x.NodeStates["q"].Output)
	}
	x = e.run(t, parse(t, `{"name":"t2","nodes":[{"id":"q","type":"human","config":{"question":"Ship?","timeout_seconds":0.01}}]}`), executor.Options{})
	if x.Status != workflow.ExecError || !strings.Contains(x.NodeStates["q"].Error, `no answer from a person to node "q"`) {
		t.Fatalf("without a default: status %s node error %q", x.Status, x.NodeStates["q"].Error)
	}
}

// askHumanFlow is a writer that asks the human node boss, in text mode, and
// uses the answer; boss's own question comes after the writer.
const askHumanFlow = `{"name":"ask","metadata":{"communication_mode":"%s"},"nodes":[
	{"id":"writer","type":"ai-processor","config":{"prompt":"Write it","can_communicate":true,"tool_mode":"text"}},
	{"id":"boss","type":"human","config":{"question":"Anything else?"}}],
	"edges":[{"from":"writer","to":"boss"}]}`

// An agent's ask_node to a human node waits for the person, whose answer
// is the reply, in simple and in pubsub mode.
func TestAskNodeToHuman(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, mode string, ps executor.PubSub) {
		var final atomic.Value
		model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
			last := req.Messages[len(req.Messages)-1].Content
			if last == "Write it" {
				return llmtest.Reply{Content: "CALL: ask_node('boss', 'May I publish?')"}
			}
			final.Store(last)
			return llmtest.Reply{Content: "published"}
		})
		e := newEnv(t, model, ps, executor.Config{})
		r, x := startWaiting(t, e, parse(t, strings.Replace(askHumanFlow, "%s", mode, 1)), executor.Options{})
		w := x.Waiting[0]
		if w.NodeID != "boss" || w.AskedBy != "writer" || w.Question != "May I publish?" || w.Deadline == nil {
			t.Fatalf("wait = %+v", w)
		}
		if err := e.exec.Answer(r.ID, "boss", "yes, publish"); err != nil {
			t.Fatal(err)
		}
		// Then boss's own question.
		for {
			x = untilWaitingAgain(t, e, r)
			if x.Waiting[0].AskedBy == "" {
				break
			}
		}
		if err := e.exec.Answer(r.ID, "boss", "no"); err != nil {
			t.Fatal(err)
		}
		x = finish(t, e, r)
		if x.Status != workflow.ExecSuccess || x.NodeStates["writer"].Output != "published" {
			t.Fatalf("status %s (%s) writer %v", x.Status, x.Error, x.NodeStates["writer"].Output)
		}
		if f, _ := final.Load().(string); !strings.Contains(f, "answered: yes, publish") {
			t.Fatalf("the writer's follow-up lacks the person's answer: %q", f)
		}
		resp := findComm(x, workflow.CommResponse, "boss", "writer")
		if resp == nil || resp.Content != "yes, publish" || resp.Metadata["success"] != true {
			t.Fatalf("response in the log: %+v", resp)
		}
		if x.Mode != mode {
			t.Fatalf("mode %s, want %s (%s)", x.Mode, mode, x.FallbackReason)
		}
		if mode == workflow.ModePubSub && resp.Metadata["transport"] != "redis" {
			t.Fatalf("the pubsub ask went %v", resp.Metadata["transport"])
		}
	}
	t.Run("simple", func(t *testing.T) { run(t, workflow.ModeSimple, nil) })
	t.Run("pubsub", func(t *testing.T) {
		bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
			run(t, workflow.ModePubSub, connectBus(t, url))
		})
	})
}

// untilWaitingAgain waits until the stored record of r waits for a
// question not answered yet (the one answered may still show).
func untilWaitingAgain(t *testing.T, e *env, r *executor.Run) *workflow.Execution {
	t.Helper()
	events, stop := e.exec.Subscribe(r.ID)
	defer stop()
	// An event is queued for the store before it is shown to subscribers:
	// once the queue is flushed, the record holds every event this
	// subscription missed.
	if err := e.db.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	x, err := e.db.GetExecution(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status == workflow.ExecWaiting && len(x.Waiting) > 0 && x.Waiting[0].AskedBy == "" {
		return x
	}
	waitFor(t, events, func(ev workflow.Event) bool {
		return ev.Kind == workflow.EventExecution && ev.Execution.Status == workflow.ExecWaiting &&
			len(ev.Execution.Waiting) > 0 && ev.Execution.Waiting[0].AskedBy == ""
	})
	if err := e.db.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	x, err = e.db.GetExecution(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

const budgetFlow = `{"name":"b","metadata":{"token_budget":10,"on_budget":"pause"},"nodes":[
	{"id":"a","type":"ai-processor","config":{"prompt":"one"}},
	{"id":"b","type":"ai-processor","config":{"prompt":"two"}}],
	"edges":[{"from":"a","to":"b"}]}`

// budgetModel answers every call with 20 tokens.
func budgetModel(t *testing.T, calls *atomic.Int64) executor.LLM {
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		calls.Add(1)
		return llmtest.Reply{Content: "reply " + req.Messages[len(req.Messages)-1].Content,
			Usage: &openai.Usage{PromptTokens: 15, CompletionTokens: 5, TotalTokens: 20}}
	})
	return model
}

// Over its budget with on_budget pause, an execution waits (reason
// budget), keeping the reply it paid for; an approval too small is refused
// naming extra_tokens, and one large enough lets it finish.
func TestBudgetPauseApprove(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	e := newEnv(t, budgetModel(t, &calls), nil, executor.Config{})
	r, x := startWaiting(t, e, parse(t, budgetFlow), executor.Options{})
	w := x.Waiting[0]
	if w.Reason != workflow.WaitBudget || w.TokensUsed != 20 || w.TokenBudget != 10 {
		t.Fatalf("wait = %+v", w)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d model calls before the pause, want 1", n)
	}
	if err := e.exec.Answer(r.ID, "a", "x"); workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Fatalf("an answer to a budget wait = %v, want a conflict", err)
	}
	if err := e.exec.Approve(r.ID, 5, 0); workflow.ErrorCode(err) != workflow.CodeInvalid || problemPath(err) != "extra_tokens" {
		t.Fatalf("a too small approval = %v, want invalid naming extra_tokens", err)
	}
	if err := e.exec.Approve(r.ID, 50, 0); err != nil {
		t.Fatal(err)
	}
	x = finish(t, e, r)
	if x.Status != workflow.ExecSuccess || x.NodeStates["a"].Output != "reply one" || x.Usage.TotalTokens != 40 {
		t.Fatalf("status %s (%s), a %v, tokens %d", x.Status, x.Error, x.NodeStates["a"].Output, x.Usage.TotalTokens)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d model calls, want 2", n)
	}
	if err := e.exec.Approve(r.ID, 50, 0); workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Fatalf("approve after the end = %v, want a conflict", err)
	}
}

// Stop ends a paused execution, cancelled, with why; no model is called
// after the pause. The default (fail) still fails over the budget.
func TestBudgetPauseStop(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	e := newEnv(t, budgetModel(t, &calls), nil, executor.Config{})
	r, _ := startWaiting(t, e, parse(t, budgetFlow), executor.Options{})
	if err := e.exec.Stop(r.ID); err != nil {
		t.Fatal(err)
	}
	x := finish(t, e, r)
	if x.Status != workflow.ExecCancelled || x.Error != "stopped by request while it waited for a budget approval" {
		t.Fatalf("status %s error %q", x.Status, x.Error)
	}
	if x.NodeStates["a"].Status != workflow.NodeCancelled || x.NodeStates["b"].Status != workflow.NodeCancelled || calls.Load() != 1 {
		t.Fatalf("a %s b %s, %d calls", x.NodeStates["a"].Status, x.NodeStates["b"].Status, calls.Load())
	}
	if err := e.exec.Stop(r.ID); workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Fatalf("stop after the end = %v, want a conflict", err)
	}

	fail := parse(t, strings.Replace(budgetFlow, `"on_budget":"pause"`, `"on_budget":"fail"`, 1))
	if x := e.run(t, fail, executor.Options{}); x.Status != workflow.ExecError || !strings.Contains(x.Error, "budget_exceeded") {
		t.Fatalf("on_budget fail: status %s error %q", x.Status, x.Error)
	}
}

// A waiting execution outlives its executor: the shutdown leaves it
// waiting in the store (not interrupted), and a new executor continues it
// under its id, without running its completed nodes again; the human
// node's wait keeps its start.
func TestWaitingSurvivesShutdown(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		calls.Add(1)
		return llmtest.Reply{Content: "draft"}
	})
	e := newEnv(t, model, nil, executor.Config{})
	w := parse(t, `{"name":"s","nodes":[
		{"id":"a","type":"ai-processor","config":{"prompt":"write"}},
		{"id":"ok","type":"human","config":{"question":"Publish {{outputs.a}}?","timeout_seconds":3600,"default":"no"}}],
		"edges":[{"from":"a","to":"ok"}]}`)
	r, before := startWaiting(t, e, w, executor.Options{})
	ctx := t.Context()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.exec.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if status, _ := r.Wait(ctx); status != workflow.ExecWaiting {
		t.Fatalf("the suspended run ended %s", status)
	}
	list, err := e.db.WaitingExecutions(ctx)
	if err != nil || len(list) != 1 || list[0].Execution.ID != r.ID || list[0].Execution.EndTime != nil {
		t.Fatalf("waiting executions = %+v, %v", list, err)
	}

	ex2 := executor.New(e.db, model, nil, testLogger(t), executor.Config{})
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ex2.Shutdown(sctx)
	})
	e2 := &env{db: e.db, exec: ex2}
	r2, err := ex2.Start(w, executor.Options{Reenter: &executor.Reentry{Execution: list[0].Execution, Seq: list[0].Seq}})
	if err != nil {
		t.Fatal(err)
	}
	if r2.ID != r.ID {
		t.Fatalf("re-entered as %s, want %s", r2.ID, r.ID)
	}
	x := untilWaiting(t, e2, r2)
	if !x.Waiting[0].Since.Equal(before.Waiting[0].Since) || x.Waiting[0].Question != "Publish draft?" {
		t.Fatalf("wait after the restart %+v, before %+v", x.Waiting[0], before.Waiting[0])
	}
	if err := ex2.Answer(r.ID, "ok", "yes"); err != nil {
		t.Fatal(err)
	}
	x = finish(t, e2, r2)
	if x.Status != workflow.ExecSuccess || x.NodeStates["ok"].Output != "yes" || x.NodeStates["a"].Output != "draft" {
		t.Fatalf("status %s (%s) outputs %v %v", x.Status, x.Error, x.NodeStates["a"].Output, x.NodeStates["ok"].Output)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the completed node ran again: %d model calls", n)
	}
	// The logs of both runs are in order: the continuation's follow.
	last := x.Logs[len(x.Logs)-1].Message
	if !strings.HasPrefix(last, "Execution finished with status success") {
		t.Fatalf("last log line %q", last)
	}
}

// A node's timeout does not run while the execution pauses over its
// budget: a person may approve long after the node's timeout_seconds.
// A witness node with the same timeout, started once the pause began,
// times out first, so the paused node's own time was up by then too.
func TestBudgetPauseStopsTheNodeClock(t *testing.T) {
	t.Parallel()
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if req.Messages[len(req.Messages)-1].Content == "witness" {
			return llmtest.Reply{Delay: time.Minute}
		}
		return llmtest.Reply{Content: "ok", Usage: &openai.Usage{PromptTokens: 15, CompletionTokens: 5, TotalTokens: 20}}
	})
	e := newEnv(t, model, nil, executor.Config{})
	r, _ := startWaiting(t, e, parse(t, `{"name":"p","metadata":{"token_budget":10,"on_budget":"pause"},"nodes":[
		{"id":"a","type":"ai-processor","config":{"prompt":"one","timeout_seconds":0.3}}]}`), executor.Options{})
	witness := e.run(t, parse(t, `{"name":"w","nodes":[{"id":"w","type":"ai-processor","config":{"prompt":"witness","timeout_seconds":0.3}}]}`), executor.Options{})
	if witness.Status != workflow.ExecError || !strings.Contains(witness.NodeStates["w"].Error, "timed out") {
		t.Fatalf("witness: %s %q", witness.Status, witness.NodeStates["w"].Error)
	}
	if err := e.exec.Approve(r.ID, 100, 0); err != nil {
		t.Fatalf("approve after the node's timeout would have passed: %v", err)
	}
	if x := finish(t, e, r); x.Status != workflow.ExecSuccess || x.NodeStates["a"].Output != "ok" {
		t.Fatalf("status %s (%s) a %+v", x.Status, x.Error, x.NodeStates["a"])
	}
}

// The asking node's timeout does not run while a person answers its
// ask_node (the ask's own deadline, the human node's timeout, does).
func TestAskHumanStopsTheAskersClock(t *testing.T) {
	t.Parallel()
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		switch req.Messages[len(req.Messages)-1].Content {
		case "witness":
			return llmtest.Reply{Delay: time.Minute}
		case "Write it":
			return llmtest.Reply{Content: "CALL: ask_node('boss', 'May I publish?')"}
		}
		return llmtest.Reply{Content: "published"}
	})
	e := newEnv(t, model, nil, executor.Config{})
	r, x := startWaiting(t, e, parse(t, `{"name":"ask","nodes":[
		{"id":"writer","type":"ai-processor","config":{"prompt":"Write it","can_communicate":true,"tool_mode":"text","timeout_seconds":0.3}},
		{"id":"boss","type":"human","config":{"question":"Anything else?","timeout_seconds":3600,"default":"no"}}],
		"edges":[{"from":"writer","to":"boss"}]}`), executor.Options{})
	if x.Waiting[0].AskedBy != "writer" {
		t.Fatalf("wait = %+v", x.Waiting[0])
	}
	witness := e.run(t, parse(t, `{"name":"w","nodes":[{"id":"w","type":"ai-processor","config":{"prompt":"witness","timeout_seconds":0.3}}]}`), executor.Options{})
	if witness.Status != workflow.ExecError {
		t.Fatalf("witness: %s", witness.Status)
	}
	// The writer's ask, then boss's own question.
	if err := e.exec.Answer(r.ID, "boss", "yes"); err != nil {
		t.Fatal(err)
	}
	x = untilWaitingAgain(t, e, r)
	if err := e.exec.Answer(r.ID, "boss", "no"); err != nil {
		t.Fatal(err)
	}
	x = finish(t, e, r)
	if x.Status != workflow.ExecSuccess || x.NodeStates["writer"].Output != "published" {
		t.Fatalf("status %s (%s) writer %+v", x.Status, x.Error, x.NodeStates["writer"])
	}
}

// budget_usd pauses like token_budget: over its dollars, with on_budget
// pause, the execution waits with what it spent; an approval too small is
// refused naming extra_usd, and one large enough lets it finish.
func TestBudgetUSDPauseApprove(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	// Each call costs 15 input and 5 output tokens of "priced": 0.00015 +
	// 0.0005 = 0.00065 USD; the budget holds one call, not two.
	tab, err := pricing.New(nil, map[string]pricing.Price{"priced": {InputPerMTok: 10, OutputPerMTok: 100}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, budgetModel(t, &calls), nil, executor.Config{Prices: tab})
	doc := strings.NewReplacer(`"token_budget":10`, `"budget_usd":0.001`, `"prompt":"one"`, `"prompt":"one","model":"priced"`,
		`"prompt":"two"`, `"prompt":"two","model":"priced"`).Replace(budgetFlow)
	r, x := startWaiting(t, e, parse(t, doc), executor.Options{})
	w := x.Waiting[0]
	if w.Reason != workflow.WaitBudget || w.SpentUSD != 0.0013 || w.BudgetUSD != 0.001 || w.TokenBudget != 0 {
		t.Fatalf("wait = %+v", w)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d model calls before the pause, want 2", n)
	}
	if err := e.exec.Approve(r.ID, 0, 0.0002); workflow.ErrorCode(err) != workflow.CodeInvalid || problemPath(err) != "extra_usd" {
		t.Fatalf("a too small approval = %v, want invalid naming extra_usd", err)
	}
	if err := e.exec.Approve(r.ID, 0, 1); err != nil {
		t.Fatal(err)
	}
	x = finish(t, e, r)
	if x.Status != workflow.ExecSuccess || x.NodeStates["b"].Output != "reply two" || x.CostUSD == nil || *x.CostUSD != 0.0013 {
		t.Fatalf("status %s (%s), b %v, cost %v", x.Status, x.Error, x.NodeStates["b"].Output, x.CostUSD)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d model calls, want 2", n)
	}
}
