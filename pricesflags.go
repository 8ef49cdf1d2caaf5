package main

import (
	"flag"
	"fmt"

	"github.com/switchboard-dev/switchboard/pricing"
	"github.com/switchboard-dev/switchboard/workflow"
)

// costText is an execution's cost for the end of switchboard run: its
// cost_usd, or why it is unknown.
func costText(x *workflow.Execution) string {
	switch {
	case x.CostUSD == nil:
		return "cost unknown: " + x.CostNote
	case x.CostEstimated:
		return "≈ " + workflow.FormatUSD(*x.CostUSD)
	}
	return workflow.FormatUSD(*x.CostUSD)
}

// addPricesFlag adds --prices to fs: a file of model prices over the
// built-in ones, from the environment (SWITCHBOARD_PRICES) unless the flag
// is given. *t is the built-in table until then. A bad file fails the
// flag's parsing with the model and key it is about.
func addPricesFlag(fs *flag.FlagSet, getenv func(string) string, t **pricing.Table) error {
	load := func(path string) error {
		var over map[string]pricing.Price
		if path != "" {
			var err error
			if over, err = pricing.ReadFile(path); err != nil {
				return err
			}
		}
		tab, err := pricing.New(pricing.Builtin(), over)
		if err != nil {
			return err
		}
		*t = tab
		return nil
	}
	if err := load(getenv("SWITCHBOARD_PRICES")); err != nil {
		return fmt.Errorf("SWITCHBOARD_PRICES: %w", err)
	}
	fs.Func("prices", `a JSON file of model prices over the built-in ones, {"model": {"input_per_mtok": 2.5, "output_per_mtok": 10}} in USD per million tokens (env SWITCHBOARD_PRICES)`, load)
	return nil
}
