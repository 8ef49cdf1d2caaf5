package executor

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/switchboard-dev/switchboard/workflow"
)

// Limits bound what the agents of one execution may do, so that a model
// that loops cannot run up calls, tokens or time. Workflow metadata
// overrides each (max_asks, max_asks_per_pair, max_ask_depth,
// max_llm_calls, token_budget). Zero fields take the defaults.
type Limits struct {
	MaxAsks        int // asks per execution
	MaxAsksPerPair int // asks between the same two nodes, either way
	MaxDepth       int // nested asks (A asks B, B asks C...)
	MaxLLMCalls    int // model calls per execution
	TokenBudget    int // total tokens per execution; 0: no budget
	MaxPromptBytes int // a rendered prompt, or a question (256 KiB)
	MaxReplyBytes  int // one model reply (1 MiB)
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
	return l
}

// errBudget is the cancellation cause when an execution spends its token
// budget.
var errBudget = errors.New(string(workflow.CodeBudget))

// guard counts what an execution's agents do and refuses what is over a
// limit. It is safe for concurrent use.
type guard struct {
	limits Limits

	mu        sync.Mutex
	asks      int
	pairs     map[[2]string]int
	questions map[[3]string]*askedOnce
	llmCalls  int
	tokens    int
}

// askedOnce holds the first answer to a question, for the same node asking
// the same node the same question again.
type askedOnce struct {
	done   chan struct{}
	answer string
	id     string // the first ask's message id, when it had one
	ok     bool
}

func newGuard(l Limits) *guard {
	return &guard{limits: l, pairs: map[[2]string]int{}, questions: map[[3]string]*askedOnce{}}
}

// admitAsk decides whether from may ask to. It returns the earlier ask of
// the same question when there is one (wait on its done channel), or a
// refusal the model can read, or neither and a new askedOnce to complete.
func (g *guard) admitAsk(from, to, question string) (earlier, mine *askedOnce, refusal, reason string) {
	key := [3]string{from, to, strings.TrimSpace(question)}
	pair := [2]string{from, to}
	if to < from {
		pair = [2]string{to, from}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if a, ok := g.questions[key]; ok {
		return a, nil, "", ""
	}
	if g.asks >= g.limits.MaxAsks {
		return nil, nil, fmt.Sprintf("refused: this execution has used its limit of %d asks; answer with what you know", g.limits.MaxAsks), "max_asks"
	}
	if g.pairs[pair] >= g.limits.MaxAsksPerPair {
		return nil, nil, fmt.Sprintf("refused: %s and %s have asked each other %d times, the limit; answer with what you know", from, to, g.limits.MaxAsksPerPair), "max_asks_per_pair"
	}
	g.asks++
	g.pairs[pair]++
	a := &askedOnce{done: make(chan struct{})}
	g.questions[key] = a
	return nil, a, "", ""
}

// admitLLMCall counts one model call, or refuses it over the limit.
func (g *guard) admitLLMCall() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.llmCalls >= g.limits.MaxLLMCalls {
		return &workflow.Error{Code: workflow.CodeInvalid,
			Message: fmt.Sprintf("refused: this execution has used its limit of %d model calls (metadata.max_llm_calls)", g.limits.MaxLLMCalls)}
	}
	g.llmCalls++
	return nil
}

// spend adds tokens and reports whether the budget is now overrun.
func (g *guard) spend(tokens int) (total int, over bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens += tokens
	return g.tokens, g.limits.TokenBudget > 0 && g.tokens > g.limits.TokenBudget
}
