package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// A bad prices file stops serve and run before anything starts, with the
// model and key it is about; so does one named by SWITCHBOARD_PRICES.
func TestPricesFlagRefusesABadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "prices.json")
	if err := os.WriteFile(bad, []byte(`{"gpt-4o": {"input_per_mtok": "cheap", "output_per_mtok": 10}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	wf := filepath.Join(dir, "wf.json")
	if err := os.WriteFile(wf, []byte(`{"name":"x","nodes":[{"id":"a","type":"ai-processor"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args   []string
		getenv func(string) string
		want   string
	}{
		{[]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--prices", bad}, noEnv, `model "gpt-4o": input_per_mtok must be a number`},
		{[]string{"run", wf, "--prices", bad}, noEnv, `model "gpt-4o": input_per_mtok must be a number`},
		{[]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--prices", filepath.Join(dir, "none.json")}, noEnv, "read prices file"},
		{[]string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, func(k string) string {
			if k == "SWITCHBOARD_PRICES" {
				return bad
			}
			return ""
		}, "SWITCHBOARD_PRICES: prices file " + bad},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		var out strings.Builder
		err := run(ctx, tc.args, tc.getenv, &out, &out)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want an error with %q", tc.args, err, tc.want)
		}
	}
}

// The costs of a run, priced with a --prices file over the built-in
// table, reach the API (the record and the list) and the dashboard (the
// execution's page per node and in total, the executions list, the
// workflow list's total); a model without a price shows as unknown with
// the reason.
func TestDashboardCosts(t *testing.T) {
	model := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply {
		return llmtest.Reply{Content: "done", Usage: &openai.Usage{PromptTokens: 1000, CompletionTokens: 200, TotalTokens: 1200}}
	})
	prices := filepath.Join(t.TempDir(), "prices.json")
	// gpt-4o costs 1000 × 1 + 200 × 2 per million = 0.0014 USD a call
	// here, not its built-in price; house-model 1200 × 0.5 = 0.0006.
	if err := os.WriteFile(prices, []byte(`{"gpt-4o": {"input_per_mtok": 1, "output_per_mtok": 2},
		"house-model": {"input_per_mtok": 0.5, "output_per_mtok": 0.5}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := startServer(t, map[string]string{"OPENAI_BASE_URL": model.URL()}, "--prices", prices)
	priced := importAPI(t, base, `{"name":"priced","nodes":[
		{"id":"a","type":"ai-processor","config":{"model":"gpt-4o-2024-08-06","prompt":"hi"}},
		{"id":"b","type":"ai-processor","config":{"model":"house-model","prompt":"hi"}}]}`)
	unpriced := importAPI(t, base, `{"name":"unpriced","nodes":[
		{"id":"m","type":"ai-processor","config":{"model":"mystery","prompt":"hi"}}]}`)
	var x1, x2 workflow.Execution
	for _, r := range []struct {
		id string
		x  *workflow.Execution
	}{{priced, &x1}, {unpriced, &x2}} {
		if code := postJSON(t, base+"/workflows/"+r.id+"/execute", `{"async_execution":false}`, r.x); code != http.StatusOK || r.x.Status != "success" {
			t.Fatalf("execute: %d %s %s", code, r.x.Status, r.x.Error)
		}
	}
	get := func(path string, out any) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	var got workflow.Execution
	get("/workflows/executions/"+x1.ID, &got)
	a, b := got.NodeStates["a"], got.NodeStates["b"]
	if got.CostUSD == nil || *got.CostUSD != 0.002 || a.CostUSD == nil || *a.CostUSD != 0.0014 || b.CostUSD == nil || *b.CostUSD != 0.0006 {
		t.Fatalf("costs: total %v a %v b %v", got.CostUSD, a.CostUSD, b.CostUSD)
	}
	var list []map[string]any
	get("/workflows/"+unpriced+"/executions", &list)
	if len(list) != 1 || list[0]["cost_usd"] != nil || list[0]["cost_note"] != `no price for model "mystery"; add it with --prices` {
		t.Fatalf("list: %v", list)
	}
	if _, ok := list[0]["cost_usd"]; !ok {
		t.Fatalf("the list leaves cost_usd out instead of null: %v", list[0])
	}

	br := newBrowser(t, 1280, 900)
	br.do("the priced execution", 20*time.Second,
		chromedp.Navigate(base+"/ui/executions/"+x1.ID),
		chromedp.WaitVisible(chromedp.ID("exec-cost")),
	)
	if txt := evalJS[string](br, `document.getElementById('exec-cost').textContent`); txt != "$0.002" {
		t.Errorf("total cost shows %q", txt)
	}
	facts := evalJS[string](br, `Array.from(document.querySelectorAll('.node-facts')).map(e => e.textContent).join('\n')`)
	if !strings.Contains(facts, "$0.0014") || !strings.Contains(facts, "$0.0006") {
		t.Errorf("node costs missing:\n%s", facts)
	}
	br.shot("execution-cost")
	// A run started from the dashboard shows its cost once it ends, on
	// the page it goes to, whether the end comes live or before.
	br.do("run it from the dashboard", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows/"+priced),
		chromedp.WaitVisible(chromedp.ID("run-form")),
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("exec-cost")),
	)
	br.waitJS("the run's cost", `document.getElementById('exec-status').textContent === 'success' &&
		document.getElementById('exec-cost').textContent === '$0.002' && location.pathname !== '/ui/executions/`+x1.ID+`'`, 20*time.Second)
	br.do("the executions list", 20*time.Second,
		chromedp.Navigate(base+"/ui/executions"),
		chromedp.WaitVisible(chromedp.CSS(`td[data-label=Cost]`)),
	)
	cells := evalJS[[]string](br, `Array.from(document.querySelectorAll('td[data-label=Cost]')).map(e => e.textContent + '|' + (e.querySelector('[title]')?.title || ''))`)
	if len(cells) != 3 || cells[0] != "$0.002|" || cells[1] != `unknown|no price for model "mystery"; add it with --prices` || cells[2] != "$0.002|" {
		t.Errorf("cost column: %q", cells)
	}
	br.shot("executions-cost")
	br.do("the workflow list", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows"),
		chromedp.WaitVisible(chromedp.ID("wf-"+priced)),
	)
	if txt := evalJS[string](br, `document.querySelector('#wf-`+priced+` td[data-label=Spent]').textContent`); txt != "$0.004" {
		t.Errorf("the workflow's total shows %q", txt)
	}
	if txt := evalJS[string](br, `document.querySelector('#wf-`+unpriced+` td[data-label=Spent]').textContent`); txt != "$0+" {
		t.Errorf("the unpriced workflow's total shows %q", txt)
	}
}
