package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/switchboard-dev/switchboard/workflow"
)

// Limits bound what the agents of one execution may do, so that a model
// that loops cannot run up calls, tokens or time. Workflow metadata
// overrides each (max_asks, max_asks_per_pair, max_ask_depth,
// max_llm_calls, token_budget, max_tool_calls). Zero fields take the
// defaults.
type Limits struct {
	MaxAsks        int // asks per execution
	MaxAsksPerPair int // asks between the same two nodes, either way
	MaxDepth       int // nested asks (A asks B, B asks C...)
	MaxLLMCalls    int // model calls per execution
	TokenBudget    int // total tokens per execution; 0: no budget
	MaxPromptBytes int // a rendered prompt, or a question (256 KiB)
	MaxReplyBytes  int // one model reply (1 MiB)
	MaxToolCalls   int // native tool calls per execution (100)
	// BudgetUSD is the money an execution's model calls may cost, in US
	// dollars (metadata.budget_usd); 0: no budget. Calls of a model
	// without a price do not count.
	BudgetUSD float64
}

func (l Limits) withDefaults() Limits {
	if l.MaxAsks <= 0 {
		l.MaxAsks = 50
	}
	if l.MaxAsksPerPair <= 0 {
		l.MaxAsksPerPair = 5
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 3
	}
	if l.MaxLLMCalls <= 0 {
		l.MaxLLMCalls = 200
	}
	if l.MaxPromptBytes <= 0 {
		l.MaxPromptBytes = 256 << 10
	}
	if l.MaxReplyBytes <= 0 {
		l.MaxReplyBytes = 1 << 20
	}
	if l.MaxToolCalls <= 0 {
		l.MaxToolCalls = 100
	}
	return l
}

// limitsFor applies a workflow's metadata over the executor's limits.
func limitsFor(w *workflow.Workflow, def Limits) Limits {
	l := def
	set := func(key string, dst *int) {
		if n, ok := workflow.MetaInt(w.Metadata, key); ok && n > 0 {
			*dst = n
		}
	}
	set("max_asks", &l.MaxAsks)
	set("max_asks_per_pair", &l.MaxAsksPerPair)
	set("max_ask_depth", &l.MaxDepth)
	set("max_llm_calls", &l.MaxLLMCalls)
	set("token_budget", &l.TokenBudget)
	set("max_tool_calls", &l.MaxToolCalls)
	if f, ok := workflow.MetaFloat(w.Metadata, "budget_usd"); ok && f > 0 {
		l.BudgetUSD = f
	}
	return l
}

// errBudget is the cancellation cause when an execution spends its token
// budget.
var errBudget = errors.New(string(workflow.CodeBudget))

// guardHandle is an execution's loop guards as one of its agents sees
// them: the ask limits, the depth, the repeats, the model calls and the
// token budget all count over the whole execution, wherever its agents
// run. The guards of an execution have one authority, the server that
// coordinates it (see the package comment); guard is that authority in
// process, and an agent hosted elsewhere would get a handle that asks it.
// Implementations are safe for concurrent use.
type guardHandle interface {
	// limits returns the execution's limits.
	limits() Limits
	// admitAsk decides whether from may ask to the question (with its
	// context text): refused, a repeat of an earlier ask (whose answer the
	// asker waits for with awaitRepeat), or admitted (settle the ticket
	// with the answer).
	admitAsk(ctx context.Context, from, to, question string) askAdmission
	// awaitRepeat waits until the earlier ask a repeat refers to has its
	// answer; it fails when ctx ends first.
	awaitRepeat(ctx context.Context, a *askedOnce) error
	// settle records the answer of an admitted ask, for its repeats.
	settle(a *askedOnce, answer, id string, ok bool)
	// admitLLMCall counts one model call, or refuses it over the limit.
	admitLLMCall(ctx context.Context) error
	// spend adds tokens and reports whether the budget is now overrun.
	spend(ctx context.Context, tokens int) (total int, over bool)
	// spendUSD adds a model call's cost and reports the budget_usd it
	// overran (see cost.go).
	spendUSD(ctx context.Context, model string, c workflow.Cost) (overrun string, unpriced bool)
	// admitToolCall counts one native tool call, or refuses it over the
	// limit (max_tool_calls).
	admitToolCall(ctx context.Context) error
	// holdBudget waits while the execution pauses over its budget
	// (on_budget "pause") until an approval lets it go on; it fails when
	// ctx ends first.
	holdBudget(ctx context.Context) error
}

// askAdmission is a guard's decision on one ask: exactly one of refusal,
// repeat and ticket is set.
type askAdmission struct {
	refusal, reason string     // refused: what the asker reads, and which guard refused
	repeat          *askedOnce // the same question was asked before
	ticket          *askedOnce // admitted: settle it with the answer
}

// guard counts what an execution's agents do and refuses what is over a
// limit: the in-process authority behind guardHandle. It is safe for
// concurrent use.
type guard struct {
	lim Limits

	mu        sync.Mutex
	asks      int
	pairs     map[[2]string]int
	questions map[[3]string]*askedOnce
	llmCalls  int
	tokens    int
	toolCalls int
	usd       workflow.PicoUSD // what the calls with a price cost
	unpriced  map[string]bool  // models without a price met under a budget_usd
	gate      *budgetGate      // on_budget "pause": holds model calls over the budget; nil: fail
}

// askedOnce holds the first answer to a question, for the same node asking
// the same node the same question again.
type askedOnce struct {
	done   chan struct{}
	answer string
	id     string // the first ask's message id, when it had one
	ok     bool
	// ticket and node name an admitted ask of an agent hosted by a worker:
	// the server's ticket, which its settle event names, and the asker.
	ticket string
	node   string
}

func newGuard(l Limits) *guard {
	return &guard{lim: l, pairs: map[[2]string]int{}, questions: map[[3]string]*askedOnce{}}
}

func (g *guard) limits() Limits {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lim
}

func (g *guard) admitAsk(_ context.Context, from, to, question string) askAdmission {
	key := [3]string{from, to, strings.TrimSpace(question)}
	pair := [2]string{from, to}
	if to < from {
		pair = [2]string{to, from}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if a, ok := g.questions[key]; ok {
		return askAdmission{repeat: a}
	}
	if g.asks >= g.lim.MaxAsks {
		return askAdmission{refusal: fmt.Sprintf("refused: this execution has used its limit of %d asks; answer with what you know", g.lim.MaxAsks), reason: "max_asks"}
	}
	if g.pairs[pair] >= g.lim.MaxAsksPerPair {
		return askAdmission{refusal: fmt.Sprintf("refused: %s and %s have asked each other %d times, the limit; answer with what you know", from, to, g.lim.MaxAsksPerPair), reason: "max_asks_per_pair"}
	}
	g.asks++
	g.pairs[pair]++
	a := &askedOnce{done: make(chan struct{})}
	g.questions[key] = a
	return askAdmission{ticket: a}
}

func (g *guard) awaitRepeat(ctx context.Context, a *askedOnce) error {
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (g *guard) settle(a *askedOnce, answer, id string, ok bool) {
	a.answer, a.id, a.ok = answer, id, ok
	close(a.done)
}

// forget drops an admitted ask whose answer will never be settled (its
// asker was lost with its worker): the same question asked again is a new
// ask, not a repeat that waits for it. A repeat already waiting on it
// learns that it failed, with why.
func (g *guard) forget(a *askedOnce, why string) {
	g.mu.Lock()
	for k, v := range g.questions {
		if v == a {
			delete(g.questions, k)
		}
	}
	g.mu.Unlock()
	g.settle(a, why, "", false)
}

func (g *guard) admitLLMCall(ctx context.Context) error {
	_, err := g.admitLLMCalls(ctx, 1)
	return err
}

// admitLLMCalls admits up to want model calls at once, for a worker that
// makes them without asking for each (see callGrant), and returns how many
// it admitted: want while the execution has plenty left, one near its
// limit, so that calls granted and never made hardly ever lead to a
// refusal, and one under on_budget "pause", whose every call must wait
// at the gate while the execution is paused.
func (g *guard) admitLLMCalls(ctx context.Context, want int) (int, error) {
	if err := g.holdBudget(ctx); err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	room := g.lim.MaxLLMCalls - g.llmCalls
	if room <= 0 {
		return 0, &workflow.Error{Code: workflow.CodeInvalid,
			Message: fmt.Sprintf("refused: this execution has used its limit of %d model calls (metadata.max_llm_calls)", g.lim.MaxLLMCalls)}
	}
	n := 1
	if want > 1 && g.gate == nil && room >= 4*want {
		n = want
	}
	g.llmCalls += n
	return n, nil
}

// unmadeLLMCalls takes back n calls that admitLLMCalls granted a worker
// and that it did not make.
func (g *guard) unmadeLLMCalls(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.llmCalls = max(g.llmCalls-n, 0)
}

func (g *guard) spend(_ context.Context, tokens int) (total int, over bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens += tokens
	if g.gate != nil {
		return g.tokens, false // paused by holdBudget instead
	}
	return g.tokens, g.lim.TokenBudget > 0 && g.tokens > g.lim.TokenBudget
}

func (g *guard) admitToolCall(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.toolCalls >= g.lim.MaxToolCalls {
		return &workflow.Error{Code: workflow.CodeInvalid,
			Message: fmt.Sprintf("refused: this execution has used its limit of %d tool calls (metadata.max_tool_calls); answer with what you know", g.lim.MaxToolCalls)}
	}
	g.toolCalls++
	return nil
}
