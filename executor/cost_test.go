package executor_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/pricing"
	"github.com/switchboard-dev/switchboard/workflow"
)

func prices(t *testing.T) *pricing.Table {
	t.Helper()
	tab, err := pricing.New(pricing.Builtin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// costModel answers like the usage tests' model (a asks b, then ends) and
// reports 1000 prompt and 200 completion tokens for every call, with the
// model the request named (llmtest echoes it), unless noUsage.
func costModel(t *testing.T, noUsage bool) executor.LLM {
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		var r llmtest.Reply
		switch {
		case strings.Contains(req.Messages[0].Content, "asks you the question"):
			r = llmtest.Reply{Content: "b's answer"}
		case strings.HasPrefix(req.Messages[len(req.Messages)-1].Content, "Results of your calls"):
			r = llmtest.Reply{Content: "final"}
		case strings.Contains(req.Messages[0].Content, "can ask"):
			r = llmtest.Reply{Content: "CALL: ask_node('b', 'why?')"}
		default:
			r = llmtest.Reply{Content: "plain"}
		}
		r.Usage = &openai.Usage{PromptTokens: 1000, CompletionTokens: 200, TotalTokens: 1200}
		r.NoUsage = noUsage
		return r
	})
	return model
}

// costDoc: a (gpt-4o) asks b (a dated gpt-4o-mini) once; c runs a model
// given in the test; d is not a model node.
func costDoc(mode, cModel, meta string) string {
	return `{"name":"costs","metadata":{"communication_mode":"` + mode + `"` + meta + `},"nodes":[
		{"id":"a","type":"ai-processor","config":{"can_communicate":true,"tool_mode":"text","model":"gpt-4o","system_prompt":"you can ask","prompt":"ask b"}},
		{"id":"b","type":"ai-processor","config":{"model":"gpt-4o-mini-2024-07-18","system_prompt":"b answers"}},
		{"id":"c","type":"ai-processor","config":{"model":"` + cModel + `","system_prompt":"c"}},
		{"id":"d","type":"end"}],
		"edges":[{"from":"c","to":"d"}]}`
}

// usd is the dollars a priced test expects, written out in picodollars so
// that the comparison with the record is exact.
func usd(pico int64) float64 { return workflow.PicoUSD(pico).USD() }

// Per call, gpt-4o costs 1000 × 2.50 + 200 × 10.00 per million tokens =
// 0.0045 USD, gpt-4o-mini 1000 × 0.15 + 200 × 0.60 = 0.00027 USD. a calls
// twice (its ask, then the follow-up with the answer), b twice (its own
// run and its answer to a), c once.
const (
	gpt4oCall     = 4_500_000_000
	gpt4oMiniCall = 270_000_000
)

// The real go-openai client's reported usage prices every node exactly,
// the execution's total is their sum, in simple and in pubsub mode, in
// the store and in the record kept for a synchronous caller; the hook
// for metrics sees every call with its cost.
func TestCostPerNodeAndTotal(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, e *env, mode string) {
		x := e.run(t, parse(t, costDoc(mode, "gpt-4.1-nano", "")), executor.Options{})
		if x.Status != workflow.ExecSuccess || x.Mode != mode {
			t.Fatalf("status %s mode %s error %q", x.Status, x.Mode, x.Error)
		}
		// gpt-4.1-nano: 1000 × 0.10 + 200 × 0.40 = 0.00018 USD.
		want := map[string]float64{"a": usd(2 * gpt4oCall), "b": usd(2 * gpt4oMiniCall), "c": usd(180_000_000), "d": 0}
		for id, w := range want {
			s := x.NodeStates[id]
			if s.CostUSD == nil || *s.CostUSD != w || s.CostNote != "" || s.CostEstimated {
				t.Errorf("node %s: cost %v note %q estimated %v (%d calls); want %v", id, s.CostUSD, s.CostNote, s.CostEstimated, s.Calls, w)
			}
		}
		total := usd(2*gpt4oCall + 2*gpt4oMiniCall + 180_000_000)
		if x.CostUSD == nil || *x.CostUSD != total || x.CostNote != "" || total != 0.00972 {
			t.Fatalf("total %v note %q; want %v", x.CostUSD, x.CostNote, total)
		}
	}
	t.Run("simple", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		byModel := map[string]float64{}
		calls := 0
		e := newEnv(t, costModel(t, false), nil, executor.Config{Prices: prices(t), OnModelCall: func(c executor.ModelCall) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if v := c.Cost.USD(); v != nil && c.ExecutionID != "" && c.NodeID != "" {
				byModel[c.Model] += *v
			}
		}})
		check(t, e, workflow.ModeSimple)
		mu.Lock()
		defer mu.Unlock()
		if calls != 5 || byModel["gpt-4o"] != usd(2*gpt4oCall) || byModel["gpt-4o-mini-2024-07-18"] != usd(2*gpt4oMiniCall) {
			t.Fatalf("the hook saw %d calls, %v", calls, byModel)
		}
	})
	t.Run("pubsub", func(t *testing.T) {
		t.Parallel()
		bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
			e := newEnv(t, costModel(t, false), connectBus(t, url), executor.Config{Prices: prices(t)})
			check(t, e, workflow.ModePubSub)
		})
	})
}

// A model without a price has a null cost, and the record says why; the
// execution's total is null too, with the same reason, since a partial
// sum would pass for the whole bill. The other nodes keep their costs.
func TestCostOfUnknownModelIsNullWithAReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, costModel(t, false), nil, executor.Config{Prices: prices(t)})
	x := e.run(t, parse(t, costDoc(workflow.ModeSimple, "my-llama", "")), executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s error %q", x.Status, x.Error)
	}
	const why = `no price for model "my-llama"; add it with --prices`
	c := x.NodeStates["c"]
	if c.CostUSD != nil || c.CostNote != why || c.Calls != 1 {
		t.Fatalf("c: cost %v note %q", c.CostUSD, c.CostNote)
	}
	if a := x.NodeStates["a"]; a.CostUSD == nil || *a.CostUSD != usd(2*gpt4oCall) {
		t.Fatalf("a: cost %v", a.CostUSD)
	}
	if x.CostUSD != nil || x.CostNote != why {
		t.Fatalf("total %v note %q", x.CostUSD, x.CostNote)
	}
	// As JSON, the unknown costs are null, not 0.
	j, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"cost_usd":null,"cost_note":"no price for model \"my-llama\"; add it with --prices"`) {
		t.Fatalf("JSON: %s", j)
	}
}

// Without reported usage the tokens are estimated, and so is the cost.
func TestCostOfEstimatedUsageIsMarked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, costModel(t, true), nil, executor.Config{Prices: prices(t)})
	x := e.run(t, parse(t, costDoc(workflow.ModeSimple, "gpt-4o", "")), executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s error %q", x.Status, x.Error)
	}
	a := x.NodeStates["a"]
	if a.CostUSD == nil || *a.CostUSD <= 0 || !a.CostEstimated || !a.Usage.Estimated {
		t.Fatalf("a: cost %v estimated %v usage %+v", a.CostUSD, a.CostEstimated, a.Usage)
	}
	if x.CostUSD == nil || !x.CostEstimated || x.NodeStates["d"].CostEstimated {
		t.Fatalf("total %v estimated %v", x.CostUSD, x.CostEstimated)
	}
}

// Spending past metadata.budget_usd ends the execution with an error, by
// the same path as the token budget, and the message gives the figures.
// b and c (gpt-4o-mini, 10000 in and 5000 out: 0.0045 USD a call) run
// before a; a's first call takes the total to 0.0135 USD, over 0.01.
func TestBudgetUSDExceeded(t *testing.T) {
	t.Parallel()
	var answers atomic.Int32
	usage := &openai.Usage{PromptTokens: 10_000, CompletionTokens: 5_000, TotalTokens: 15_000}
	e := newEnv(t, loopingModel(t, "CALL: ask_node('b', 'q?')", &answers, usage), nil, executor.Config{Prices: prices(t)})
	x := e.run(t, guardWorkflow(t, `"budget_usd": 0.01, "token_budget": 1000000`), executor.Options{})
	const want = "budget_exceeded: the execution spent 0.0135 USD, over its budget_usd of 0.01 USD"
	if x.Status != workflow.ExecError || x.Error != want {
		t.Fatalf("status %s error %q; want %q", x.Status, x.Error, want)
	}
	coded, logged := false, false
	for _, e := range x.Errors {
		coded = coded || (e.Code == workflow.CodeBudget && e.Message == want)
	}
	for _, l := range x.Logs {
		logged = logged || (l.NodeID == "a" && l.Message == "USD budget exceeded: 0.0135 USD spent, budget 0.01 USD; ending the execution")
	}
	if !coded || !logged || answers.Load() != 0 || x.NodeStates["b"].Status != workflow.NodeCompleted {
		t.Fatalf("errors %+v logs %+v", x.Errors, x.Logs)
	}
	if x.CostUSD == nil || *x.CostUSD != 0.0135 {
		t.Fatalf("total %v", x.CostUSD)
	}

	// Under the budget, the same workflow succeeds; the token budget's
	// message is as it was when tokens run out first.
	x = e.run(t, guardWorkflow(t, `"budget_usd": 1`), executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("under budget: status %s error %q", x.Status, x.Error)
	}
	x = e.run(t, guardWorkflow(t, `"budget_usd": 0.01, "token_budget": 20000`), executor.Options{})
	if x.Error != "budget_exceeded: the execution used 30000 tokens, over its token_budget of 20000" {
		t.Fatalf("token budget first: %q", x.Error)
	}
}

// A model without a price cannot count against budget_usd: the log says
// so once, and the execution runs on.
func TestBudgetUSDSaysItCannotCountUnpricedModels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, costModel(t, false), nil, executor.Config{Prices: prices(t)})
	x := e.run(t, parse(t, costDoc(workflow.ModeSimple, "my-llama", `, "budget_usd": 5`)), executor.Options{})
	n := 0
	for _, l := range x.Logs {
		if strings.Contains(l.Message, `budget_usd does not count the calls of model "my-llama"`) {
			n++
		}
	}
	if x.Status != workflow.ExecSuccess || n != 1 {
		t.Fatalf("status %s, %d warnings: %+v", x.Status, n, x.Logs)
	}
}

// In worker mode the server prices the calls of the agents its workers
// host, as it counts their tokens, and ends an execution over its
// budget_usd.
func TestCostInWorkerMode(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		b := connectBus(t, url)
		e := newEnv(t, costModel(t, false), b, executor.Config{Prices: prices(t)})
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := e.exec.UseWorkers(ctx, b.Client(), executor.WorkerOptions{Lease: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opts)
		t.Cleanup(func() { rdb.Close() })
		we := &workerEnv{env: e, url: url, rdb: rdb, bus: b, workers: map[string]context.CancelFunc{}}
		we.startWorker(t, "w1", costModel(t, false), 5*time.Second)
		we.waitWorkers(t, "w1")

		x := we.run(t, parse(t, costDoc(workflow.ModePubSub, "gpt-4.1-nano", "")), executor.Options{})
		if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
			t.Fatalf("status %s placement %s (%q) error %q", x.Status, x.Placement, x.PlacementFallbackReason, x.Error)
		}
		if a := x.NodeStates["a"]; a.Worker != "w1" || a.CostUSD == nil || *a.CostUSD != usd(2*gpt4oCall) {
			t.Fatalf("a on %q: cost %v", a.Worker, a.CostUSD)
		}
		if x.CostUSD == nil || *x.CostUSD != 0.00972 {
			t.Fatalf("total %v", x.CostUSD)
		}
		// The nodes run at the same time, so which call passes the budget
		// varies; the message gives the figures.
		x = we.run(t, parse(t, costDoc(workflow.ModePubSub, "gpt-4.1-nano", `, "budget_usd": 0.0047`)), executor.Options{})
		if x.Status != workflow.ExecError || !strings.HasPrefix(x.Error, "budget_exceeded: the execution spent ") ||
			!strings.HasSuffix(x.Error, "over its budget_usd of 0.0047 USD") {
			t.Fatalf("status %s error %q", x.Status, x.Error)
		}
	})
}
