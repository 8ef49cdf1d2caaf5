// Package metrics holds Switchboard's Prometheus metrics: their names,
// labels and buckets, on a registry of the process's own (never the
// global default one), and the calls that record them.
//
// A *Metrics is handed to the parts that record through their config
// (executor.Config, executor.WorkerConfig); every recording method is
// safe on a nil *Metrics and then does nothing, so tests and processes
// that want no metrics leave the field unset.
//
// Recording sits on hot paths (every node, every ask): label values that
// are known in advance (ask transports and outcomes, node types) are
// resolved to their series once, in New, so recording one is an atomic
// add; values that are not (model names) are looked up per call, which
// happens once per model call.
//
// Adding a metric is a field, one line in New (m.counter, m.histogram or
// m.gaugeFunc registers it under the switchboard_ prefix; newSeries keeps
// the series of a counter by label values) and a nil-safe method that
// records it, like ModelCall.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "switchboard"

// Ask transports, the transport label of AsksTotal.
const (
	TransportSimple = "simple" // in-process (simple mode, or the rest of a pubsub run after Redis was lost)
	TransportPubSub = "pubsub" // over Redis, asked by an agent hosted in the server
	TransportWorker = "worker" // over Redis, asked by an agent hosted by a worker
)

// Ask outcomes, the outcome label of AsksTotal.
const (
	OutcomeAnswered = "answered"
	OutcomeTimeout  = "timeout"
	OutcomeError    = "error"
)

// Fallback moments, the when label of pubsub fallbacks.
const (
	FallbackAtStart = "start"  // Redis could not be reached when the execution started
	FallbackDuring  = "during" // Redis was lost during the execution; the rest went in-process
)

// transportIndex and outcomeIndex place the pre-resolved ask series;
// -1 is a value with no place, looked up per call.
func transportIndex(t string) int {
	switch t {
	case TransportSimple:
		return 0
	case TransportPubSub:
		return 1
	case TransportWorker:
		return 2
	}
	return -1
}

func outcomeIndex(o string) int {
	switch o {
	case OutcomeAnswered:
		return 0
	case OutcomeTimeout:
		return 1
	case OutcomeError:
		return 2
	}
	return -1
}

// Metrics is one process's metrics and the registry that serves them. Make
// it with New. Its methods are safe for concurrent use, and on a nil
// *Metrics they do nothing.
type Metrics struct {
	reg *prometheus.Registry

	execStarted  *series                  // mode
	execFinished *series                  // status, mode
	nodeSeconds  *prometheus.HistogramVec // type
	nodeByType   map[string]prometheus.Observer
	modelCalls   *prometheus.CounterVec // model
	tokens       *prometheus.CounterVec // model, kind
	cost         *prometheus.CounterVec // model
	modelMu      sync.RWMutex
	byModel      map[string]*modelSeries
	asks         *prometheus.CounterVec   // transport, outcome
	askSeries    [3][3]prometheus.Counter // by transportIndex, outcomeIndex
	fallbacks    *prometheus.CounterVec   // when
	storeWrite   prometheus.Observer
}

// New returns metrics registered on a new registry, with the Go runtime
// and process collectors beside them.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.execStarted = newSeries(m.counter("executions_started_total", "Executions started, by the mode requested.", "mode"))
	m.execFinished = newSeries(m.counter("executions_finished_total", "Executions ended, by final status and the mode used.", "status", "mode"))
	m.nodeSeconds = m.histogram("node_duration_seconds", "How long nodes ran, from start to end state, by node type.",
		[]float64{.0001, .001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}, "type")
	m.modelCalls = m.counter("model_calls_total", "Model calls that returned, by the model that answered.", "model")
	m.tokens = m.counter("model_tokens_total", "Tokens of model calls, by model and kind (prompt or completion).", "model", "kind")
	m.cost = m.counter("model_cost_usd_total", "Cost of model calls in US dollars, by model (calls of a model without a price add nothing).", "model")
	m.byModel = map[string]*modelSeries{}
	m.asks = m.counter("asks_total", "ask_node calls sent to another agent, by transport (simple, pubsub, worker) and outcome (answered, timeout, error).", "transport", "outcome")
	m.fallbacks = m.counter("pubsub_fallbacks_total", "Pubsub executions that went in-process because Redis was unreachable: at start, or during the run.", "when")
	m.storeWrite = m.histogram("store_write_seconds", "How long the store took to write and commit one batch of events.",
		[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}).WithLabelValues()

	// The node types of every workflow; others are looked up per node.
	m.nodeByType = map[string]prometheus.Observer{}
	for _, t := range []string{"start", "end", "ai-processor"} {
		m.nodeByType[t] = m.nodeSeconds.WithLabelValues(t)
	}
	for _, t := range []string{TransportSimple, TransportPubSub, TransportWorker} {
		for _, o := range []string{OutcomeAnswered, OutcomeTimeout, OutcomeError} {
			m.askSeries[transportIndex(t)][outcomeIndex(o)] = m.asks.WithLabelValues(t, o)
		}
	}
	for _, w := range [...]string{FallbackAtStart, FallbackDuring} {
		m.fallbacks.WithLabelValues(w) // shown at 0 before the first
	}
	return m
}

// counter registers a counter family named switchboard_<name>.
func (m *Metrics) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	m.reg.MustRegister(c)
	return c
}

// histogram registers a histogram family named switchboard_<name>.
func (m *Metrics) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	m.reg.MustRegister(h)
	return h
}

// gaugeFunc registers a gauge named switchboard_<name> that calls fn at
// every scrape; fn must be cheap and must not block.
func (m *Metrics) gaugeFunc(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it). A nil *Metrics serves 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Register adds a collector that lives elsewhere to the registry. It fails
// when one of its metrics is already registered.
func (m *Metrics) Register(c prometheus.Collector) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(c)
}

// ExecutionStarted counts an execution started in mode (simple or pubsub,
// as requested).
func (m *Metrics) ExecutionStarted(mode string) {
	if m == nil {
		return
	}
	m.execStarted.get(mode, "").Inc()
}

// ExecutionFinished counts an execution that ended with status in mode
// (the mode it used).
func (m *Metrics) ExecutionFinished(status, mode string) {
	if m == nil {
		return
	}
	m.execFinished.get(status, mode).Inc()
}

// NodeDone observes how long a node of nodeType ran.
func (m *Metrics) NodeDone(nodeType string, d time.Duration) {
	if m == nil {
		return
	}
	o, ok := m.nodeByType[nodeType]
	if !ok {
		o = m.nodeSeconds.WithLabelValues(nodeType)
	}
	o.Observe(d.Seconds())
}

// ModelCall counts a model call of model, its prompt and completion
// tokens and its cost in US dollars (nil when the model has no price).
func (m *Metrics) ModelCall(model string, promptTokens, completionTokens int, usd *float64) {
	if m == nil {
		return
	}
	if model == "" {
		model = "unknown"
	}
	s := m.model(model)
	s.calls.Inc()
	if promptTokens > 0 {
		s.prompt().Add(float64(promptTokens))
	}
	if completionTokens > 0 {
		s.completion().Add(float64(completionTokens))
	}
	if usd != nil && *usd > 0 {
		s.cost().Add(*usd)
	}
}

// Ask counts an ask sent by transport (TransportSimple, TransportPubSub,
// TransportWorker) that ended with outcome (OutcomeAnswered,
// OutcomeTimeout, OutcomeError).
func (m *Metrics) Ask(transport, outcome string) {
	if m == nil {
		return
	}
	i, j := transportIndex(transport), outcomeIndex(outcome)
	if i < 0 || j < 0 {
		m.asks.WithLabelValues(transport, outcome).Inc()
		return
	}
	m.askSeries[i][j].Inc()
}

// PubSubFallback counts a pubsub execution that went in-process, when
// (FallbackAtStart or FallbackDuring).
func (m *Metrics) PubSubFallback(when string) {
	if m == nil {
		return
	}
	m.fallbacks.WithLabelValues(when).Inc()
}

// StoreWrite observes how long one write batch of the store took.
func (m *Metrics) StoreWrite(d time.Duration) {
	if m == nil {
		return
	}
	m.storeWrite.Observe(d.Seconds())
}

// WatchBus shows the bus's connection losses as
// switchboard_bus_reconnects_total, read at every scrape from outages (the
// bus's own count, which must be cheap and safe for concurrent use).
func (m *Metrics) WatchBus(outages func() uint64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "bus_reconnects_total",
		Help: "Times the bus lost its Redis pub/sub connection and began reconnecting."},
		func() float64 { return float64(outages()) }))
}

// WatchWorker shows a worker process's capacity and the nodes it runs now,
// read at every scrape from state (which must be cheap and must not block).
func (m *Metrics) WatchWorker(state func() (capacity, inUse int)) {
	if m == nil {
		return
	}
	m.gaugeFunc("worker_capacity", "Nodes this worker runs at once at most.", func() float64 { c, _ := state(); return float64(c) })
	m.gaugeFunc("worker_in_use", "Nodes this worker runs now.", func() float64 { _, n := state(); return float64(n) })
}

// Queues is what a scrape reads of worker mode from Redis.
type Queues struct {
	Workers int              // workers registered (alive)
	Tasks   map[string]int64 // entries in each worker's task stream, by worker name
	Results int64            // entries in this server's result stream
}

// WatchQueues shows the registered workers and the lengths of their task
// streams and of the result stream, read by read at every scrape. read
// gets a context bounded by timeout, so a slow or unreachable Redis delays
// a scrape by at most that; when it fails, switchboard_queues_up is 0 and
// the other gauges are left out of that scrape. At most maxWorkers
// workers get a series each.
func (m *Metrics) WatchQueues(read func(ctx context.Context) (Queues, error), timeout time.Duration) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&queueCollector{read: read, timeout: timeout,
		up:      prometheus.NewDesc(Namespace+"_queues_up", "1 when the last scrape could read worker mode's queues from Redis, else 0.", nil, nil),
		workers: prometheus.NewDesc(Namespace+"_workers_registered", "Workers registered on the bus and alive.", nil, nil),
		tasks:   prometheus.NewDesc(Namespace+"_worker_task_stream_length", "Entries in a worker's task stream.", []string{"worker"}, nil),
		results: prometheus.NewDesc(Namespace+"_result_stream_length", "Entries in this server's result stream.", nil, nil),
	})
}

// maxWorkers bounds the series of one scrape: one per worker.
const maxWorkers = 256

// queueCollector reads worker mode's queues when scraped.
type queueCollector struct {
	read                        func(ctx context.Context) (Queues, error)
	timeout                     time.Duration
	up, workers, tasks, results *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.workers
	ch <- c.tasks
	ch <- c.results
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	q, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(q.Workers))
	ch <- prometheus.MustNewConstMetric(c.results, prometheus.GaugeValue, float64(q.Results))
	n := 0
	for w, l := range q.Tasks {
		if n++; n > maxWorkers {
			break
		}
		ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(l), w)
	}
}

// series is a counter family of one or two labels with the series used so
// far kept by their label values: WithLabelValues allocates its argument
// list on every call, and a node's model call would pay for it each time.
type series struct {
	vec *prometheus.CounterVec
	mu  sync.RWMutex
	got map[[2]string]prometheus.Counter
}

func newSeries(vec *prometheus.CounterVec) *series {
	return &series{vec: vec, got: map[[2]string]prometheus.Counter{}}
}

// get returns the series of label values a (and b, for a family of two
// labels; "" otherwise).
func (s *series) get(a, b string) prometheus.Counter {
	key := [2]string{a, b}
	s.mu.RLock()
	c, ok := s.got[key]
	s.mu.RUnlock()
	if ok {
		return c
	}
	if b == "" {
		c = s.vec.WithLabelValues(a)
	} else {
		c = s.vec.WithLabelValues(a, b)
	}
	s.mu.Lock()
	s.got[key] = c
	s.mu.Unlock()
	return c
}

// modelSeries are the series of one model, found with one lookup per model
// call. The token series are made at their first tokens, so that a model
// that never reports completion tokens shows none.
type modelSeries struct {
	calls                    prometheus.Counter
	prompt, completion, cost func() prometheus.Counter
}

// model returns the series of model.
func (m *Metrics) model(model string) *modelSeries {
	m.modelMu.RLock()
	s, ok := m.byModel[model]
	m.modelMu.RUnlock()
	if ok {
		return s
	}
	m.modelMu.Lock()
	defer m.modelMu.Unlock()
	if s, ok := m.byModel[model]; ok {
		return s
	}
	s = &modelSeries{calls: m.modelCalls.WithLabelValues(model),
		prompt:     sync.OnceValue(func() prometheus.Counter { return m.tokens.WithLabelValues(model, "prompt") }),
		completion: sync.OnceValue(func() prometheus.Counter { return m.tokens.WithLabelValues(model, "completion") }),
		cost:       sync.OnceValue(func() prometheus.Counter { return m.cost.WithLabelValues(model) })}
	m.byModel[model] = s
	return s
}
