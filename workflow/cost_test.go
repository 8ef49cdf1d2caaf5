package workflow_test

import (
	"math"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

func TestBudgetUSDIsAPositiveNumberWithAMaximum(t *testing.T) {
	t.Parallel()
	for _, v := range []string{`0.5`, `0.0001`, `100000`, `3`} {
		wantValid(t, refuse(`"budget_usd":`+v, ``, `{"name":"n","value":1}`))
	}
	for _, tt := range []struct{ v, want string }{
		{`-1`, "must be a positive number of US dollars, not -1"},
		{`0`, "must be a positive number of US dollars, not 0"},
		{`"5"`, `must be a positive number of US dollars, not "5"`},
		{`true`, "must be a positive number of US dollars"},
		{`100000.01`, "must be at most 100000, not 100000.01"},
		{`1e300`, "must be at most 100000"},
	} {
		wantProblem(t, refuse(`"budget_usd":`+tt.v, ``, `{"name":"n","value":1}`), "metadata.budget_usd", tt.want)
	}
}

func TestCostSumsExactlyAndNullWhenAPriceIsMissing(t *testing.T) {
	t.Parallel()
	a := workflow.Cost{Known: workflow.PicoOf(0.1)}
	b := workflow.Cost{Known: workflow.PicoOf(0.2), Estimated: true}
	sum := a.Add(b)
	if v := sum.USD(); v == nil || *v != 0.3 || !sum.Estimated {
		t.Fatalf("0.1 + 0.2 = %v (estimated %v); want exactly 0.3", v, sum.Estimated)
	}
	unknown := sum.Add(workflow.Cost{Unknown: workflow.NoPrice("x")}).Add(workflow.Cost{Unknown: workflow.NoPrice("y")})
	if unknown.USD() != nil || unknown.Unknown != `no price for model "x"; add it with --prices` || unknown.Known != sum.Known {
		t.Fatalf("with unknown: %+v", unknown)
	}
	if big := (workflow.Cost{Known: math.MaxInt64}).Add(workflow.Cost{Known: 1}); big.Known != math.MaxInt64 {
		t.Fatalf("the sum wrapped: %d", big.Known)
	}
	if c := workflow.CostOf(nil, "", false); c.Unknown != workflow.NoteBeforeCosts {
		t.Fatalf("a state with no cost and no note: %+v", c)
	}
	zero := 0.0
	if c := workflow.CostOf(&zero, "", true); c.USD() == nil || !c.Estimated {
		t.Fatalf("a free node: %+v", c)
	}
	if got := workflow.FormatUSD(0.0135); got != "0.0135 USD" {
		t.Fatalf("FormatUSD = %q", got)
	}
}
