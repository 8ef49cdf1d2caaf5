// Package pricing holds what model calls cost: a price per model, in US
// dollars per million input (prompt) and output (completion) tokens. A
// table is built in for common models and may be overridden or extended
// from a JSON file (the --prices flag). It imports no other package of
// Switchboard; the executor asks a Table through an interface of its own.
package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
)

// MaxPerMTok bounds a price per million tokens: a hundred times the
// dearest model sold today, and small enough that a price times the tokens
// of a call cannot overflow the sum in picodollars.
const MaxPerMTok = 10_000

// Price is what one model costs, in US dollars per million tokens.
type Price struct {
	InputPerMTok  float64 `json:"input_per_mtok"`
	OutputPerMTok float64 `json:"output_per_mtok"`
}

// Builtin returns the built-in prices (USD per million tokens, the
// providers' list prices for standard, uncached text), a new map on every
// call. The offline demo model is free.
func Builtin() map[string]Price {
	return map[string]Price{
		"demo": {0, 0},

		"gpt-4o":            {2.50, 10.00},
		"gpt-4o-mini":       {0.15, 0.60},
		"chatgpt-4o-latest": {5.00, 15.00},
		"gpt-4.1":           {2.00, 8.00},
		"gpt-4.1-mini":      {0.40, 1.60},
		"gpt-4.1-nano":      {0.10, 0.40},
		"gpt-5":             {1.25, 10.00},
		"gpt-5-mini":        {0.25, 2.00},
		"gpt-5-nano":        {0.05, 0.40},
		"o1":                {15.00, 60.00},
		"o1-mini":           {1.10, 4.40},
		"o1-pro":            {150.00, 600.00},
		"o3":                {2.00, 8.00},
		"o3-mini":           {1.10, 4.40},
		"o3-pro":            {20.00, 80.00},
		"o4-mini":           {1.10, 4.40},
		"gpt-4-turbo":       {10.00, 30.00},
		"gpt-4":             {30.00, 60.00},
		"gpt-3.5-turbo":     {0.50, 1.50},
	}
}

// Table answers what a model call costs. It is not changed after New, so
// it is safe for concurrent use.
type Table struct {
	// micro holds each price in micro-dollars per million tokens, which is
	// picodollars per token: a call's cost is then a whole number of
	// picodollars, and sums of many calls are exact.
	micro map[string][2]int64
}

// New returns a table of base's prices with overrides' over them (either
// may be nil). It fails, naming the model, on a price that is negative,
// not a number or over MaxPerMTok.
func New(base, overrides map[string]Price) (*Table, error) {
	t := &Table{micro: make(map[string][2]int64, len(base)+len(overrides))}
	for _, m := range []map[string]Price{base, overrides} {
		for name, p := range m {
			if err := check(p); err != nil {
				return nil, fmt.Errorf("price of model %q: %w", name, err)
			}
			t.micro[name] = [2]int64{int64(math.Round(p.InputPerMTok * 1e6)), int64(math.Round(p.OutputPerMTok * 1e6))}
		}
	}
	return t, nil
}

func check(p Price) error {
	for _, f := range []struct {
		key string
		v   float64
	}{{"input_per_mtok", p.InputPerMTok}, {"output_per_mtok", p.OutputPerMTok}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > MaxPerMTok {
			return fmt.Errorf("%s must be a number from 0 to %d, not %v", f.key, MaxPerMTok, f.v)
		}
	}
	return nil
}

// Models returns the names the table has a price for, sorted.
func (t *Table) Models() []string {
	if t == nil {
		return nil
	}
	names := make([]string, 0, len(t.micro))
	for n := range t.micro {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// datedSuffix matches the date that providers append to a model's name to
// pin one release of it: -2024-08-06, -20240806 or -0613.
var datedSuffix = regexp.MustCompile(`-(\d{4}-\d{2}-\d{2}|\d{8}|(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01]))$`)

// Lookup returns the price of model and the table's name for it: the
// model's own name when the table has it, otherwise the name without a
// dated suffix (gpt-4o-2024-08-06 is priced as gpt-4o, gpt-4-0613 as
// gpt-4). No other prefix matches: a model the table does not name has no
// price, rather than the price of a cousin.
func (t *Table) Lookup(model string) (Price, string, bool) {
	name, ok := t.find(model)
	if !ok {
		return Price{}, "", false
	}
	m := t.micro[name]
	return Price{float64(m[0]) / 1e6, float64(m[1]) / 1e6}, name, true
}

func (t *Table) find(model string) (string, bool) {
	if t == nil { // a nil table prices nothing
		return "", false
	}
	if _, ok := t.micro[model]; ok {
		return model, true
	}
	if loc := datedSuffix.FindStringIndex(model); loc != nil && loc[0] > 0 {
		base := model[:loc[0]]
		if _, ok := t.micro[base]; ok {
			return base, true
		}
	}
	return "", false
}

// Cost returns what a call of model with these token counts costs, in
// picodollars (1e-12 USD), and false when the table has no price for the
// model. Negative counts count as zero.
func (t *Table) Cost(model string, promptTokens, completionTokens int) (int64, bool) {
	name, ok := t.find(model)
	if !ok {
		return 0, false
	}
	m := t.micro[name]
	return addSat(mulSat(promptTokens, m[0]), mulSat(completionTokens, m[1])), true
}

// mulSat and addSat keep a cost from wrapping around when a model server
// reports absurd token counts: it stays at the most an int64 holds, which
// any budget exceeds.
func mulSat(tokens int, micro int64) int64 {
	n := int64(max(tokens, 0))
	if micro != 0 && n > math.MaxInt64/micro {
		return math.MaxInt64
	}
	return n * micro
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// ReadFile reads a prices file: a JSON object from model name to
// {"input_per_mtok": N, "output_per_mtok": N}. Both keys are required.
// It fails with an error naming the file and, for a bad entry, the model
// and the key.
func ReadFile(path string) (map[string]Price, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read prices file: %w", err)
	}
	prices, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("prices file %s: %w", path, err)
	}
	return prices, nil
}

// Parse reads prices from JSON as ReadFile does.
func Parse(data []byte) (map[string]Price, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf(`want a JSON object like {"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}}: %w`, err)
	}
	if raw == nil {
		return nil, errors.New(`want a JSON object like {"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}}, not null`)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	slices.Sort(names) // the first problem reported is the same on every run
	prices := make(map[string]Price, len(raw))
	for _, name := range names {
		if strings.TrimSpace(name) == "" {
			return nil, errors.New("a model name is empty")
		}
		p, err := parseEntry(raw[name])
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", name, err)
		}
		prices[name] = p
	}
	return prices, nil
}

func parseEntry(data json.RawMessage) (Price, error) {
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return Price{}, fmt.Errorf(`want an object like {"input_per_mtok": 2.5, "output_per_mtok": 10}, not %s`, bytes.TrimSpace(data))
	}
	var p Price
	for _, f := range []struct {
		key string
		dst *float64
	}{{"input_per_mtok", &p.InputPerMTok}, {"output_per_mtok", &p.OutputPerMTok}} {
		v, ok := fields[f.key]
		if !ok {
			return Price{}, fmt.Errorf("%s is missing (USD per million tokens)", f.key)
		}
		n, ok := v.(float64)
		if !ok || n < 0 || n > MaxPerMTok {
			return Price{}, fmt.Errorf("%s must be a number from 0 to %d (USD per million tokens), not %s", f.key, MaxPerMTok, show(v))
		}
		*f.dst = n
		delete(fields, f.key)
	}
	if len(fields) > 0 {
		return Price{}, fmt.Errorf("unknown key %q; the keys are input_per_mtok and output_per_mtok", slices.Sorted(maps.Keys(fields))[0])
	}
	return p, nil
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
