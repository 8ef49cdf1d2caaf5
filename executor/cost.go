package executor

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/workflow"
)

// Pricer prices model calls; pricing.Table satisfies it. It must be safe
// for concurrent use.
type Pricer interface {
	// Cost returns what a call of model with these token counts costs,
	// in picodollars (1e-12 USD), and false when it has no price for the
	// model.
	Cost(model string, promptTokens, completionTokens int) (int64, bool)
}

// ModelCall is one model call of an execution as the executor accounts
// for it, handed to Config.OnModelCall (for metrics, say) after it is
// counted.
type ModelCall struct {
	ExecutionID string
	NodeID      string
	Model       string         // the model that answered, as priced; "" when unknown
	Usage       workflow.Usage // its tokens
	// Cost is what it cost: Cost.USD() is nil when the model has no price
	// (Cost.Unknown says why).
	Cost workflow.Cost
}

// priceCall works out what a model call of node cost, counts it against
// the execution's budget_usd, and shows it to Config.OnModelCall. It runs
// in the server for every call, its own agents' and its workers', where
// the tokens are counted. A call that takes the execution over its
// budget_usd is marked over budget, which ends the execution as the token
// budget does.
func (x *execution) priceCall(node string, c *modelCall) workflow.Cost {
	model := c.model
	if model == "" {
		if n := x.node(node); n != nil && n.Type == workflow.NodeAIProcessor {
			model = x.aiOf(n).Model
		}
	}
	cost := workflow.Cost{Estimated: c.usage.Estimated}
	pico, ok := int64(0), false
	if p := x.e.cfg.Prices; p != nil && model != "" {
		pico, ok = p.Cost(model, c.usage.PromptTokens, c.usage.CompletionTokens)
	}
	if ok {
		cost.Known = workflow.PicoUSD(pico)
	} else {
		cost.Unknown = workflow.NoPrice(model)
	}
	x.e.tel.metrics().ModelCall(model, c.usage.PromptTokens, c.usage.CompletionTokens, cost.USD())
	if h := x.e.cfg.OnModelCall; h != nil {
		h(ModelCall{ExecutionID: x.rec.ID, NodeID: node, Model: model, Usage: c.usage, Cost: cost})
	}
	overrun, unpriced := x.guard.spendUSD(x.ctx, model, cost)
	if unpriced {
		x.log(slog.LevelWarn, node, "budget_usd does not count the calls of model %q: it has no price (add it with --prices)", model)
	}
	if overrun != "" && !c.overBudget {
		x.log(slog.LevelError, node, "%s; ending the execution", overrun)
		c.overBudget = true
	}
	return cost
}

// addCost adds a call's cost to node state s and to the execution's
// total; the caller holds x.mu.
func (x *execution) addCost(s *workflow.NodeState, c workflow.Cost) {
	sum := workflow.CostOf(s.CostUSD, s.CostNote, s.CostEstimated).Add(c)
	s.CostUSD, s.CostEstimated, s.CostNote = sum.USD(), sum.Estimated, sum.Unknown
	x.cost = x.cost.Add(c)
}

// costSoFar returns what the execution's model calls have cost.
func (x *execution) costSoFar() workflow.Cost {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cost
}

// overUSD returns the execution's end message when it ended over its
// budget_usd and not over its token_budget, whose message stays as it
// was.
func (x *execution) overUSD() (string, bool) {
	lim := x.guard.limits()
	x.mu.Lock()
	tokens, cost := x.usage.TotalTokens, x.cost
	x.mu.Unlock()
	if lim.TokenBudget > 0 && tokens > lim.TokenBudget {
		return "", false
	}
	if lim.BudgetUSD <= 0 || cost.Known <= workflow.PicoOf(lim.BudgetUSD) {
		return "", false
	}
	return fmt.Sprintf("budget_exceeded: the execution spent %s, over its budget_usd of %s",
		workflow.FormatUSD(cost.Known.USD()), workflow.FormatUSD(lim.BudgetUSD)), true
}

// spendUSD adds a model call's cost to what the execution spent and
// returns what budget it overran ("" when none). unpriced is true the
// first time a model without a price is met while a budget_usd is set:
// the budget cannot count its calls, and the log should say so once.
func (g *guard) spendUSD(_ context.Context, model string, c workflow.Cost) (overrun string, unpriced bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.Unknown != "" && g.lim.BudgetUSD > 0 && !g.unpriced[model] {
		if g.unpriced == nil {
			g.unpriced = map[string]bool{}
		}
		g.unpriced[model], unpriced = true, true
	}
	g.usd = workflow.Cost{Known: g.usd}.Add(workflow.Cost{Known: c.Known}).Known
	if g.gate != nil {
		return "", unpriced // paused by holdBudget instead
	}
	if g.lim.BudgetUSD > 0 && g.usd > workflow.PicoOf(g.lim.BudgetUSD) {
		return fmt.Sprintf("USD budget exceeded: %s spent, budget %s", workflow.FormatUSD(g.usd.USD()), workflow.FormatUSD(g.lim.BudgetUSD)), unpriced
	}
	return "", unpriced
}

// spendUSD leaves the count to the server, which prices the usage the
// agent reports after every model call, as it does for its own agents.
func (g *remoteGuard) spendUSD(context.Context, string, workflow.Cost) (string, bool) {
	return "", false
}

// noteLate marks node, whose state s has just counted a model call, when
// it has ended already: a node that ended may still answer asks, and its
// record is to show what those calls used and cost, so that the
// execution's totals are the sums of its nodes'. The caller holds x.mu.
func (x *execution) noteLate(node string, s *workflow.NodeState) {
	if s.Status == workflow.NodeRunning || s.Status == workflow.NodePending {
		return
	}
	if x.late == nil {
		x.late = map[string]bool{}
	}
	x.late[node] = true
}

// recordLate records once, when the run ends, the state of each node
// that counted calls after it ended: every agent hosted here has stopped
// by then. A call a worker reports after it is not in the record, as it
// is not in the totals.
func (x *execution) recordLate() {
	x.mu.Lock()
	late := x.late
	x.late = nil
	x.mu.Unlock()
	for _, id := range x.graph.Order {
		if node := x.wf.Nodes[id].ID; late[node] {
			x.nodeState(node, func(*workflow.NodeState) {})
		}
	}
}
