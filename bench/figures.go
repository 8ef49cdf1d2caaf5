package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// figureNames lists the named figures in the order they are
// printed. Every one of them is produced by a run, -quick included.
var figureNames = []string{
	"ask_inprocess_floor_p50_us",
	"ask_simple_p50_us",
	"ask_raw_miniredis_p50_us",
	"ask_raw_redis_p50_us",
	"ask_pubsub_miniredis_p50_us",
	"ask_pubsub_miniredis_p99_us",
	"ask_pubsub_redis_p50_us",
	"ask_pubsub_redis_p99_us",
	"exec_per_s_seq",
	"exec_per_s_conc64",
	"http_exec_per_s_conc64",
	"node_overhead_us_4",
	"node_overhead_us_64",
	"node_overhead_us_512",
	"overlap_ratio_1000",
	"rss_idle_mb",
	"rss_peak_1000_mb",
	"startup_ms",
	"list_p50_ms_100k",
	"ask_worker_raw_redis_p50_us",
	"ask_worker_raw_remote_redis_p50_us",
	"ask_worker_redis_p50_us",
	"ask_worker_redis_p99_us",
	"worker_scaling_2",
	"worker_scaling_4",
	"failover_s",
	"inflight_10k_rss_mb",
}

// target is one line of the table: a figure (or a ratio of two) held
// against a bound.
type target struct {
	name   string // the checked value: a figure, or a ratio computed by value
	what   string // how the target reads in the table
	limit  float64
	atMost bool // true: value <= limit passes; false: value >= limit passes
	value  func(f map[string]float64) (float64, bool)
}

func fig(name string) func(map[string]float64) (float64, bool) {
	return func(f map[string]float64) (float64, bool) { v, ok := f[name]; return v, ok }
}

func ratio(num, den string) func(map[string]float64) (float64, bool) {
	return func(f map[string]float64) (float64, bool) {
		n, ok1 := f[num]
		d, ok2 := f[den]
		if !ok1 || !ok2 || d <= 0 {
			return 0, false
		}
		return n / d, true
	}
}

var targets = []target{
	{"ask_simple_x_floor", "ask_simple_p50_us ≤ 3x ask_inprocess_floor_p50_us", 3, true, ratio("ask_simple_p50_us", "ask_inprocess_floor_p50_us")},
	{"ask_pubsub_miniredis_x_raw", "ask_pubsub_miniredis_p50_us ≤ 1.5x ask_raw_miniredis_p50_us", 1.5, true, ratio("ask_pubsub_miniredis_p50_us", "ask_raw_miniredis_p50_us")},
	{"ask_pubsub_miniredis_p99_x_raw_p99", "ask_pubsub_miniredis_p99_us ≤ 1.5x ask_raw_miniredis_p99_us", 1.5, true, ratio("ask_pubsub_miniredis_p99_us", "ask_raw_miniredis_p99_us")},
	{"ask_pubsub_redis_x_raw", "ask_pubsub_redis_p50_us ≤ 1.5x ask_raw_redis_p50_us", 1.5, true, ratio("ask_pubsub_redis_p50_us", "ask_raw_redis_p50_us")},
	{"ask_pubsub_redis_p99_x_raw_p99", "ask_pubsub_redis_p99_us ≤ 1.5x ask_raw_redis_p99_us", 1.5, true, ratio("ask_pubsub_redis_p99_us", "ask_raw_redis_p99_us")},
	{"exec_per_s_seq", "exec_per_s_seq ≥ 5,000", 5000, false, fig("exec_per_s_seq")},
	{"exec_per_s_conc64", "exec_per_s_conc64 ≥ 10,000", 10000, false, fig("exec_per_s_conc64")},
	{"http_exec_per_s_conc64", "http_exec_per_s_conc64 ≥ 3,000", 3000, false, fig("http_exec_per_s_conc64")},
	{"node_overhead_512_x_4", "node_overhead_us_512 ≤ 1.5x node_overhead_us_4", 1.5, true, ratio("node_overhead_us_512", "node_overhead_us_4")},
	{"overlap_ratio_1000", "overlap_ratio_1000 ≤ 1.2", 1.2, true, fig("overlap_ratio_1000")},
	{"rss_idle_mb", "rss_idle_mb ≤ 30", 30, true, fig("rss_idle_mb")},
	{"rss_peak_1000_mb", "rss_peak_1000_mb ≤ 200", 200, true, fig("rss_peak_1000_mb")},
	{"startup_ms", "startup_ms ≤ 200", 200, true, fig("startup_ms")},
	{"list_p50_ms_100k", "list_p50_ms_100k ≤ 10", 10, true, fig("list_p50_ms_100k")},
	{"ask_worker_redis_x_raw", "ask_worker_redis_p50_us ≤ 1.5x ask_worker_raw_redis_p50_us", 1.5, true, ratio("ask_worker_redis_p50_us", "ask_worker_raw_redis_p50_us")},
	{"worker_scaling_2", "worker_scaling_2 ≥ 1.8", 1.8, false, fig("worker_scaling_2")},
	{"worker_scaling_4", "worker_scaling_4 ≥ 3.5", 3.5, false, fig("worker_scaling_4")},
	{"failover_beyond_lease_node_s", "failover_s − failover_lease_s − failover_node_s ≤ 1", 1, true, failoverBeyond},
	{"inflight_10k_rss_mb", "inflight_10k_rss_mb ≤ 1,000", 1000, true, fig("inflight_10k_rss_mb")},
}

// failoverBeyond is the time a failover takes beyond the lease and the
// node's own time.
func failoverBeyond(f map[string]float64) (float64, bool) {
	s, ok1 := f["failover_s"]
	l, ok2 := f["failover_lease_s"]
	n, ok3 := f["failover_node_s"]
	return s - l - n, ok1 && ok2 && ok3
}

// check is a target evaluated on a run's figures.
type check struct {
	Name   string  `json:"name"`
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	// Ratio is value ÷ limit: at most 1 passes an "at most" target, at least
	// 1 an "at least" one.
	Ratio float64 `json:"ratio"`
	Pass  bool    `json:"pass"`
}

func evaluate(f map[string]float64) []check {
	var out []check
	for _, t := range targets {
		v, ok := t.value(f)
		c := check{Name: t.name, Target: t.what, Limit: t.limit}
		if ok {
			c.Value = round(v, 3)
			c.Ratio = round(v/t.limit, 3)
			c.Pass = v <= t.limit
			if !t.atMost {
				c.Pass = v >= t.limit
			}
		}
		out = append(out, c)
	}
	return out
}

// report is what -json prints: every figure at the top level, by name, plus
// the ratios, the checks against the targets and how the run was made.
func writeJSON(w io.Writer, r *results) error {
	obj := map[string]any{}
	for k, v := range r.figures {
		obj[k] = round(v, 3)
	}
	checks := evaluate(r.figures)
	ratios := map[string]float64{}
	allPass := true
	for _, c := range checks {
		if strings.Contains(c.Name, "_x_") {
			ratios[c.Name] = c.Value
		}
		allPass = allPass && c.Pass
	}
	obj["ratios"] = ratios
	obj["checks"] = checks
	obj["all_pass"] = allPass
	obj["run"] = r.info
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(obj)
}

// writeTable prints the figures with their targets, readable in a terminal
// and as Markdown.
func writeTable(w io.Writer, r *results) {
	fmt.Fprintf(w, "Switchboard bench — %s\n\n", r.info.describe())
	fmt.Fprintln(w, "| figure | value |")
	fmt.Fprintln(w, "|---|---:|")
	names := append([]string{}, figureNames...)
	var extra []string
	for k := range r.figures {
		if !slices.Contains(figureNames, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range append(names, extra...) {
		v, ok := r.figures[k]
		s := "missing"
		if ok {
			s = formatValue(v)
		}
		fmt.Fprintf(w, "| `%s` | %s |\n", k, s)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | ratio | result |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, c := range evaluate(r.figures) {
		res := "pass"
		if !c.Pass {
			res = "**FAIL**"
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | %s |\n", c.Target, formatValue(c.Value), c.Ratio, res)
	}
}

func formatValue(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 10:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// percentile returns the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
