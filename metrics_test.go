package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchboard-dev/switchboard/examples"
	"github.com/switchboard-dev/switchboard/workflow"
)

// scrape reads url's metrics with token ("" for none) and parses them with
// the Prometheus text parser; it fails the test unless the status is 200.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url, token)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse the metrics of %s: %v\n%s", url, err, body)
	}
	return fams
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data)
}

// value is the value of the series of family name whose labels include
// labels (a counter's, a gauge's, or a histogram's count); found is false
// when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (v float64, found bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, want := range labels {
			if have[k] != want {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func authedPost(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode the answer of %s: %v", url, err)
	}
	return resp.StatusCode, out
}

// asksIn counts the asks of an execution record's communication log.
func asksIn(x map[string]any) int {
	n := 0
	log, _ := x["communication_log"].([]any)
	for _, e := range log {
		if m, ok := e.(map[string]any); ok && m["type"] == "ask" {
			n++
		}
	}
	return n
}

// TestMetricsAfterRuns scrapes /metrics over HTTP after a simple and a
// pubsub run of the Q&A example and checks the series those runs imply;
// /metrics is behind the token like the API.
func TestMetricsAfterRuns(t *testing.T) {
	t.Parallel()
	const token = "metrics-test-token-0123456789"
	base, _, _ := startServerOut(t, nil, nil, "--token", token)

	if code, body := get(t, base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without the token: %d %s, want 401", code, body)
	}
	doc, err := examples.FS.ReadFile("04_pubsub_qa.json")
	if err != nil {
		t.Fatal(err)
	}
	code, wf := authedPost(t, base+"/workflows/", token, string(doc))
	if code != http.StatusCreated {
		t.Fatalf("import: %d %v", code, wf)
	}
	asks := map[string]int{}
	for _, mode := range []string{"simple", "pubsub"} {
		code, x := authedPost(t, base+"/workflows/"+wf["id"].(string)+"/execute", token,
			`{"communication_mode": "`+mode+`", "placement": "local"}`)
		if code != http.StatusOK || x["status"] != "success" || x["communication_mode"] != mode {
			t.Fatalf("%s run: %d status %v mode %v: %v", mode, code, x["status"], x["communication_mode"], x["error"])
		}
		asks[mode] = asksIn(x)
		if asks[mode] == 0 {
			t.Fatalf("the %s run made no ask; the test needs one: %v", mode, x["communication_log"])
		}
	}

	fams := scrape(t, base+"/metrics", token)
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"switchboard_executions_started_total", map[string]string{"mode": "simple"}, 1},
		{"switchboard_executions_started_total", map[string]string{"mode": "pubsub"}, 1},
		{"switchboard_executions_finished_total", map[string]string{"status": "success", "mode": "simple"}, 1},
		{"switchboard_executions_finished_total", map[string]string{"status": "success", "mode": "pubsub"}, 1},
		{"switchboard_asks_total", map[string]string{"transport": "simple", "outcome": "answered"}, float64(asks["simple"])},
		{"switchboard_asks_total", map[string]string{"transport": "pubsub", "outcome": "answered"}, float64(asks["pubsub"])},
		{"switchboard_asks_total", map[string]string{"transport": "pubsub", "outcome": "timeout"}, 0},
		// Two runs of start, student, teacher and end.
		{"switchboard_node_duration_seconds", map[string]string{"type": "ai-processor"}, 4},
		{"switchboard_node_duration_seconds", map[string]string{"type": "start"}, 2},
		{"switchboard_pubsub_fallbacks_total", map[string]string{"when": "start"}, 0},
		{"switchboard_bus_reconnects_total", nil, 0},
		// Worker mode is on and no worker is registered.
		{"switchboard_queues_up", nil, 1},
		{"switchboard_workers_registered", nil, 0},
	}
	for _, w := range want {
		got, ok := value(fams, w.name, w.labels)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (found %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	// Each run calls the model for the student's task, its follow-up with
	// the answer, the teacher's answer to the ask and the teacher's task.
	if calls, _ := value(fams, "switchboard_model_calls_total", map[string]string{"model": "demo"}); calls < 8 {
		t.Errorf("model calls of demo = %v, want at least 8", calls)
	}
	for _, kind := range []string{"prompt", "completion"} {
		if n, _ := value(fams, "switchboard_model_tokens_total", map[string]string{"model": "demo", "kind": kind}); n <= 0 {
			t.Errorf("%s tokens of demo = %v, want > 0", kind, n)
		}
	}
	if n, _ := value(fams, "switchboard_store_write_seconds", nil); n < 1 {
		t.Errorf("store write batches observed = %v, want some", n)
	}
	if _, ok := value(fams, "go_goroutines", nil); !ok {
		t.Error("the Go runtime collector is missing")
	}
}

// TestMetricsAddr serves /metrics on a listener of its own, without the
// token, and no longer on the API's.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	const token = "metrics-addr-token-0123456789"
	base, extra, _ := startServerOut(t, nil, []string{`Metrics are served at (http://\S+)`},
		"--token", token, "--metrics-addr", "127.0.0.1:0")
	murl := extra[0]
	if murl == "" {
		t.Fatal("the program did not say where the metrics are served")
	}
	fams := scrape(t, murl, "")
	if v, ok := value(fams, "switchboard_pubsub_fallbacks_total", map[string]string{"when": "start"}); !ok || v != 0 {
		t.Errorf("switchboard_pubsub_fallbacks_total on --metrics-addr = %v (found %v), want 0", v, ok)
	}
	if code, body := get(t, base+"/metrics", token); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's listener with --metrics-addr: %d %s, want 404", code, body)
	}
}

// TestWorkerProcessMetrics runs an execution whose agents are on two
// `switchboard worker` processes: the server counts the asks made on the
// workers (transport worker) and sees the workers and their queues, and
// each worker serves its own metrics on --health-addr.
func TestWorkerProcessMetrics(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	x := r.run(t, `{"async_execution":true}`)
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
		t.Fatalf("status %s placement %s (%q)", x.Status, x.Placement, x.PlacementFallbackReason)
	}
	asks := 0
	for _, c := range x.CommunicationLog {
		if c.Type == workflow.CommAsk {
			asks++
		}
	}
	fams := scrape(t, r.server.url+"/metrics", "")
	for _, w := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"switchboard_asks_total", map[string]string{"transport": "worker", "outcome": "answered"}, float64(asks)},
		{"switchboard_asks_total", map[string]string{"transport": "pubsub", "outcome": "answered"}, 0},
		{"switchboard_executions_finished_total", map[string]string{"status": "success", "mode": "pubsub"}, 1},
		{"switchboard_workers_registered", nil, 2},
		{"switchboard_queues_up", nil, 1},
	} {
		if got, ok := value(fams, w.name, w.labels); !ok || got != w.value {
			t.Errorf("server: %s%v = %v (found %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	if _, ok := value(fams, "switchboard_worker_task_stream_length", map[string]string{"worker": "w1"}); !ok {
		t.Error("server: no task stream length for w1")
	}
	wm := scrape(t, strings.TrimSuffix(r.workers["w1"].health, "/healthz")+"/metrics", "")
	if got, ok := value(wm, "switchboard_worker_capacity", nil); !ok || got != 16 {
		t.Errorf("worker: switchboard_worker_capacity = %v (found %v), want 16", got, ok)
	}
	if got, ok := value(wm, "switchboard_bus_reconnects_total", nil); !ok || got != 0 {
		t.Errorf("worker: switchboard_bus_reconnects_total = %v (found %v), want 0", got, ok)
	}
}
