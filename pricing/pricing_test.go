package pricing_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/pricing"
)

func builtin(t *testing.T) *pricing.Table {
	t.Helper()
	tab, err := pricing.New(pricing.Builtin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestLookupMatchesExactThenDatedSuffix(t *testing.T) {
	t.Parallel()
	tab := builtin(t)
	for _, tc := range []struct {
		model, want string
		ok          bool
	}{
		{"gpt-4o", "gpt-4o", true},
		{"gpt-4o-mini", "gpt-4o-mini", true},
		{"gpt-4o-2024-08-06", "gpt-4o", true},
		{"gpt-4o-mini-2024-07-18", "gpt-4o-mini", true},
		{"gpt-4-0613", "gpt-4", true},
		{"gpt-3.5-turbo-0125", "gpt-3.5-turbo", true},
		{"o3-mini-20250131", "o3-mini", true},
		{"demo", "demo", true},
		{"gpt-4o-audio-preview", "", false}, // no cousin's price
		{"o3-pro-x", "", false},
		{"gpt-4-1399", "", false}, // not a date
		{"-2024-08-06", "", false},
		{"llama3", "", false},
	} {
		_, name, ok := tab.Lookup(tc.model)
		if name != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.model, name, ok, tc.want, tc.ok)
		}
	}
}

func TestCostIsExactInPicodollars(t *testing.T) {
	t.Parallel()
	tab := builtin(t)
	// gpt-4o: 2.50 in, 10.00 out per million: 1200 in and 300 out cost
	// 0.003 + 0.003 = 0.006 USD.
	got, ok := tab.Cost("gpt-4o-2024-08-06", 1200, 300)
	if !ok || got != 6_000_000_000 {
		t.Fatalf("Cost = %d, %v; want 6000000000 picodollars", got, ok)
	}
	// gpt-4o-mini: 0.15 and 0.60: 7 in, 3 out = 1.05e-6 + 1.8e-6 USD.
	if got, _ := tab.Cost("gpt-4o-mini", 7, 3); got != 2_850_000 {
		t.Fatalf("Cost = %d; want 2850000", got)
	}
	if got, ok := tab.Cost("demo", 1000, 1000); !ok || got != 0 {
		t.Fatalf("demo costs %d, %v; want 0, true", got, ok)
	}
	if _, ok := tab.Cost("no-such-model", 1, 1); ok {
		t.Fatal("an unknown model has a price")
	}
	if got, _ := tab.Cost("o1-pro", math.MaxInt, math.MaxInt); got != math.MaxInt64 {
		t.Fatalf("absurd counts cost %d; want the most an int64 holds", got)
	}
}

func TestOverridesReplaceAndExtend(t *testing.T) {
	t.Parallel()
	over, err := pricing.Parse([]byte(`{"gpt-4o": {"input_per_mtok": 1, "output_per_mtok": 2}, "my-llama": {"input_per_mtok": 0.2, "output_per_mtok": 0}}`))
	if err != nil {
		t.Fatal(err)
	}
	tab, err := pricing.New(pricing.Builtin(), over)
	if err != nil {
		t.Fatal(err)
	}
	if p, _, _ := tab.Lookup("gpt-4o-2024-08-06"); p != (pricing.Price{InputPerMTok: 1, OutputPerMTok: 2}) {
		t.Errorf("gpt-4o = %+v; want the override", p)
	}
	if c, ok := tab.Cost("my-llama", 1_000_000, 5); !ok || c != 200_000_000_000 {
		t.Errorf("my-llama = %d, %v; want 0.2 USD", c, ok)
	}
	if _, _, ok := tab.Lookup("gpt-4.1"); !ok {
		t.Error("an override dropped the built-in prices")
	}
}

func TestBadPricesFilesNameTheModelAndKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{`[1]`, "want a JSON object"},
		{`null`, "not null"},
		{`{"gpt-4o": 3}`, `model "gpt-4o": want an object`},
		{`{"gpt-4o": {"output_per_mtok": 10}}`, `model "gpt-4o": input_per_mtok is missing`},
		{`{"x": {"input_per_mtok": "2.5", "output_per_mtok": 10}}`, `model "x": input_per_mtok must be a number from 0 to 10000 (USD per million tokens), not "2.5"`},
		{`{"x": {"input_per_mtok": 1, "output_per_mtok": -1}}`, `model "x": output_per_mtok must be a number`},
		{`{"x": {"input_per_mtok": 1, "output_per_mtok": 1e9}}`, `model "x": output_per_mtok must be a number`},
		{`{"x": {"input_per_mtok": 1, "output_per_mtok": 1, "cached_per_mtok": 1}}`, `model "x": unknown key "cached_per_mtok"`},
		{`{"": {"input_per_mtok": 1, "output_per_mtok": 1}}`, "a model name is empty"},
		{`{"x": {"input_per_mtok": 1, "output_per_mtok": 1}} {}`, "more than one JSON value"},
		{`{"x": `, "want a JSON object"},
	} {
		path := filepath.Join(t.TempDir(), "prices.json")
		if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := pricing.ReadFile(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("ReadFile(%s) error = %v; want one naming the file and %q", tc.body, err, tc.want)
		}
	}
	if _, err := pricing.ReadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "read prices file") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := pricing.New(map[string]pricing.Price{"x": {InputPerMTok: math.NaN()}}, nil); err == nil || !strings.Contains(err.Error(), `model "x"`) {
		t.Errorf("New with NaN: %v", err)
	}
}

func TestBuiltinIsAFreshMap(t *testing.T) {
	t.Parallel()
	m := pricing.Builtin()
	delete(m, "gpt-4o")
	if _, ok := pricing.Builtin()["gpt-4o"]; !ok {
		t.Fatal("Builtin shares its map between calls")
	}
	tab := builtin(t)
	if len(tab.Models()) != len(pricing.Builtin()) {
		t.Fatalf("Models() = %v", tab.Models())
	}
}

// FuzzParse: any file is either refused with an error or gives prices a
// table accepts, with a name for every model.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}}`,
		`{"x": {"input_per_mtok": 0, "output_per_mtok": 1e4}}`,
		`{"x": {"input_per_mtok": -1, "output_per_mtok": 1}}`,
		`{"": {}}`, `null`, `[]`, `{"a": null}`, `{"a": {"input_per_mtok": 1e400}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		prices, err := pricing.Parse(data)
		if err != nil {
			return
		}
		tab, err := pricing.New(nil, prices)
		if err != nil {
			t.Fatalf("Parse accepted %s, New refused it: %v", data, err)
		}
		for name := range prices {
			if _, ok := tab.Cost(name, 1_000_000, 1_000_000); !ok || strings.TrimSpace(name) == "" {
				t.Fatalf("model %q of %s has no price", name, data)
			}
		}
	})
}
