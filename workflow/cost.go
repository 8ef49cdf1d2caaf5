package workflow

import (
	"math"
	"strconv"
)

// MaxBudgetUSD is the most metadata.budget_usd may ask for: far above any
// workflow's bill, and small enough that a typing error cannot switch the
// budget off.
const MaxBudgetUSD = 100_000

// NoteBeforeCosts is the cost note of records written before Switchboard
// tracked costs.
const NoteBeforeCosts = "recorded before costs were tracked"

// PicoUSD is an amount of money in picodollars (1e-12 USD). A model's
// price per token is a fraction of a cent; sums of such prices in float64
// dollars drift in their last digits, in picodollars they are exact.
type PicoUSD int64

// USD returns p in dollars.
func (p PicoUSD) USD() float64 { return float64(p) / 1e12 }

// PicoOf returns usd in picodollars, rounded to the nearest.
func PicoOf(usd float64) PicoUSD {
	if f := math.Round(usd * 1e12); f < math.MaxInt64 {
		return PicoUSD(f)
	}
	return math.MaxInt64
}

// FormatUSD writes usd as a plain decimal, as short as it can be while
// exact (0.0125, not 1.25e-02), for messages.
func FormatUSD(usd float64) string { return strconv.FormatFloat(usd, 'f', -1, 64) + " USD" }

// Cost is what the model calls of a node or an execution cost so far: the
// sum of the calls with a price, and why some call had none. The record
// shows it as cost_usd (null when a call had no price, with the reason in
// cost_note) and cost_estimated.
type Cost struct {
	Known     PicoUSD // the calls with a price
	Unknown   string  // why a call had no price; "" when every call had one
	Estimated bool    // some token counts behind it were estimates
}

// Add returns the sum of two costs; the first reason for an unknown cost
// is kept. The sum saturates instead of wrapping.
func (c Cost) Add(o Cost) Cost {
	s := c
	if s.Known > math.MaxInt64-o.Known {
		s.Known = math.MaxInt64
	} else {
		s.Known += o.Known
	}
	if s.Unknown == "" {
		s.Unknown = o.Unknown
	}
	s.Estimated = s.Estimated || o.Estimated
	return s
}

// USD returns the cost in dollars, or nil when a call had no price: a
// partial sum would pass for the whole bill.
func (c Cost) USD() *float64 {
	if c.Unknown != "" {
		return nil
	}
	v := c.Known.USD()
	return &v
}

// CostOf returns the cost a node state shows. A state with no cost and no
// note is from a record written before costs were tracked.
func CostOf(usd *float64, note string, estimated bool) Cost {
	c := Cost{Unknown: note, Estimated: estimated}
	switch {
	case usd != nil:
		c.Known = PicoOf(*usd)
	case note == "":
		c.Unknown = NoteBeforeCosts
	}
	return c
}

// NoPrice is the reason a call of model has no cost.
func NoPrice(model string) string {
	if model == "" {
		return "the model server did not name the model, so it has no price"
	}
	// Once per model call when no model has a price: no fmt on that path.
	return "no price for model " + strconv.Quote(model) + "; add it with --prices"
}

// checkBudgetUSD reports a metadata.budget_usd that is not a positive
// number of dollars up to MaxBudgetUSD.
func checkBudgetUSD(m map[string]any, add func(string, string, ...any)) {
	v, ok := m["budget_usd"]
	if !ok || v == nil {
		return
	}
	f, ok := number(v)
	switch {
	case !ok || math.IsNaN(f) || f <= 0:
		add("metadata.budget_usd", "must be a positive number of US dollars, not %s", describe(v))
	case f > MaxBudgetUSD:
		add("metadata.budget_usd", "must be at most %d, not %s", MaxBudgetUSD, describe(v))
	}
}

// MetaFloat reads a number from a metadata map.
func MetaFloat(m map[string]any, key string) (float64, bool) {
	return number(m[key])
}
