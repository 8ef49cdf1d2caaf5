package executor

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/workflow"
)

// budgetGate holds an execution's model calls while it is over its budget
// and its workflow says on_budget "pause". The call that went over has
// been paid for: its reply is kept, and its node holds before using it;
// every other model call of the execution holds before it starts. An
// approval raises the budget and lets them all go on. Its fields are
// guarded by the guard's mutex.
type budgetGate struct {
	open    func(over workflow.Wait) // opens the execution's budget wait (status waiting)
	paused  bool
	resumed chan struct{} // closed and replaced by an approval
}

// overLocked reports whether the execution is over its token budget or
// its budget_usd. g.mu is held.
func (g *guard) overLocked() bool {
	return g.lim.TokenBudget > 0 && g.tokens > g.lim.TokenBudget ||
		g.lim.BudgetUSD > 0 && g.usd > workflow.PicoOf(g.lim.BudgetUSD)
}

// overLockedWait describes how far over its budgets the execution is, for
// its budget wait. g.mu is held.
func (g *guard) overLockedWait() workflow.Wait {
	w := workflow.Wait{Reason: workflow.WaitBudget, TokensUsed: g.tokens, TokenBudget: g.lim.TokenBudget}
	if g.lim.BudgetUSD > 0 {
		w.SpentUSD, w.BudgetUSD = g.usd.USD(), g.lim.BudgetUSD
	}
	return w
}

// holdBudget returns at once unless the execution pauses over its budget;
// then it opens the budget wait (once per pause) and returns when an
// approval lets the execution go on, or with ctx's cause when ctx ends
// first (the execution was stopped, or the process stops).
func (g *guard) holdBudget(ctx context.Context) error {
	if g.gate == nil {
		return nil
	}
	for {
		g.mu.Lock()
		if !g.overLocked() {
			g.mu.Unlock()
			return nil
		}
		first := !g.gate.paused
		g.gate.paused = true
		resumed, over := g.gate.resumed, g.overLockedWait()
		g.mu.Unlock()
		if first {
			g.gate.open(over)
		}
		select {
		case <-resumed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// checkRaise refuses an approval that leaves the execution over its token
// budget or its budget_usd, naming the amount that falls short.
func (g *guard) checkRaise(extraTokens int, extraUSD float64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ps []workflow.Problem
	if g.lim.TokenBudget > 0 && g.tokens > g.lim.TokenBudget+extraTokens {
		ps = append(ps, workflow.Problem{Path: "extra_tokens", Message: fmt.Sprintf("must be at least %d: the execution has used %d tokens of its token_budget of %d",
			g.tokens-g.lim.TokenBudget, g.tokens, g.lim.TokenBudget)})
	}
	if g.lim.BudgetUSD > 0 && g.usd > workflow.PicoOf(g.lim.BudgetUSD+extraUSD) {
		ps = append(ps, workflow.Problem{Path: "extra_usd", Message: fmt.Sprintf("must be more than %s: the execution has spent %s of its budget_usd of %s",
			workflow.FormatUSD(g.usd.USD()-g.lim.BudgetUSD), workflow.FormatUSD(g.usd.USD()), workflow.FormatUSD(g.lim.BudgetUSD))})
	}
	if len(ps) > 0 {
		return &workflow.Error{Code: workflow.CodeInvalid, Message: "the approval leaves the execution over its budget", Problems: ps}
	}
	return nil
}

// raise adds an approval to the budget and lets held model calls go on.
func (g *guard) raise(extraTokens int, extraUSD float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lim.TokenBudget > 0 {
		g.lim.TokenBudget += extraTokens
	}
	if g.lim.BudgetUSD > 0 {
		g.lim.BudgetUSD += extraUSD
	}
	if g.gate.paused {
		g.gate.paused = false
		close(g.gate.resumed)
		g.gate.resumed = make(chan struct{})
	}
}

// holdBudget has nothing to hold in a worker: the server holds the
// agent's next model call when it admits it.
func (g *remoteGuard) holdBudget(context.Context) error { return nil }
