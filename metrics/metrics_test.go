package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchboard-dev/switchboard/metrics"
)

// TestNilRecordsNothing: code given no *Metrics calls the same methods.
func TestNilRecordsNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.ExecutionStarted("simple")
	m.ExecutionFinished("success", "simple")
	m.NodeDone("start", time.Millisecond)
	m.ModelCall("demo", 1, 2, nil)
	m.Ask(metrics.TransportSimple, metrics.OutcomeAnswered)
	m.PubSubFallback(metrics.FallbackAtStart)
	m.StoreWrite(time.Millisecond)
	m.WatchBus(func() uint64 { return 1 })
	if err := m.Register(nil); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil metrics served %d", rec.Code)
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(string(body))); err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return string(body)
}

// TestSeries checks the series recording makes, labels and all, including
// label values that are not resolved in advance.
func TestSeries(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Ask(metrics.TransportWorker, metrics.OutcomeTimeout)
	m.Ask("carrier-pigeon", metrics.OutcomeAnswered)
	m.NodeDone("human", 2*time.Second)
	m.ModelCall("", 3, 0, nil)
	usd := 0.25
	m.ModelCall("gpt-4o", 10, 0, &usd)
	m.ModelCall("gpt-4o", 10, 0, &usd)
	m.ModelCall("my-llama", 10, 0, nil)
	var outages uint64 = 2
	m.WatchBus(func() uint64 { return outages })
	body := scrape(t, m)
	for _, want := range []string{
		`switchboard_asks_total{outcome="timeout",transport="worker"} 1`,
		`switchboard_asks_total{outcome="answered",transport="carrier-pigeon"} 1`,
		`switchboard_node_duration_seconds_count{type="human"} 1`,
		`switchboard_model_calls_total{model="unknown"} 1`,
		`switchboard_model_tokens_total{kind="prompt",model="unknown"} 3`,
		`switchboard_model_cost_usd_total{model="gpt-4o"} 0.5`,
		`switchboard_bus_reconnects_total 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(body, `kind="completion"`) {
		t.Error("a call with no completion tokens made a completion series")
	}
	if strings.Contains(body, `switchboard_model_cost_usd_total{model="my-llama"}`) {
		t.Error("a call of a model without a price made a cost series")
	}
}

// TestQueuesAtScrape: the queue collector reads at every scrape, and a
// read that fails shows queues_up 0 and nothing else.
func TestQueuesAtScrape(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	fail := false
	m.WatchQueues(func(ctx context.Context) (metrics.Queues, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the read has no deadline")
		}
		if fail {
			return metrics.Queues{}, errors.New("redis is down")
		}
		return metrics.Queues{Workers: 2, Tasks: map[string]int64{"w1": 3, "w2": 0}, Results: 5}, nil
	}, time.Second)
	body := scrape(t, m)
	for _, want := range []string{"switchboard_queues_up 1", "switchboard_workers_registered 2",
		`switchboard_worker_task_stream_length{worker="w1"} 3`, "switchboard_result_stream_length 5"} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	fail = true
	body = scrape(t, m)
	if !strings.Contains(body, "switchboard_queues_up 0\n") || strings.Contains(body, "switchboard_workers_registered") {
		t.Errorf("after a failed read:\n%s", body)
	}
}
