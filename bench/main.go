// Command bench measures Switchboard against its performance targets, side by
// side in one run, and prints the figures as a table (default) or as one JSON
// object (-json).
//
//	go run ./bench            # the full run, about a minute and a half on 2 cores
//	go run ./bench -json      # the same, as JSON: every figure by name, ratios, checks
//	go run ./bench -quick     # a smoke run with small counts (CI runs it; seconds)
//	go run ./bench -only ask,exec -cpuprofile cpu.prof   # some sections, profiled
//
// What it measures, and how:
//
//   - ask_*: one ask_node round trip. The floors are raw request/reply: over
//     Go channels with the wire message JSON-encoded and decoded each way
//     (ask_inprocess_floor), and plain go-redis PUBLISH → subscriber →
//     PUBLISH of a pre-encoded reply → asker, on the embedded miniredis and
//     on a real redis-server started by the bench on a free loopback port
//     (ask_raw_*); ask_bus_* is bus.Ask alone on the same servers (an
//     answerer that publishes its response at once), to tell the bus's
//     share of an ask from the engine's. The engine figures run a workflow whose asker node makes
//     50 asks in a row through the executor, with the SQLite store recording
//     everything; one ask is the time between two consecutive arrivals of a
//     question at the answering node's model, i.e. the whole engine path of
//     an ask: answer, response, communication-log events, the next CALL, the
//     next question. Floors and engine asks alternate in rounds, so drift of
//     this shared machine hits them alike.
//   - exec_per_s_*: the example Q&A workflow (examples/01_qa.json: start,
//     student asks teacher, end) executed through the executor with
//     persistence on, one after another and 64 at a time; http_exec_per_s
//     the same through POST /workflows/{id}/execute (sync) on an in-process
//     server with 64 concurrent keep-alive clients.
//   - node_overhead_us_N: chains of N ai-processor nodes, each rendering
//     {{outputs.previous}}; the engine time per node is the time between the
//     first and the last node's model call divided by N-1 (median over runs:
//     300 of the 4-node chain, 30 of the 64 and 20 of the 512), which leaves
//     out the per-execution costs that would flatter short chains.
//   - overlap_ratio_1000: 1,000 concurrent Q&A executions on a model that
//     takes 200 ms per call, wall time ÷ the wall time of one alone.
//   - startup_ms, rss_idle_mb, rss_peak_1000_mb: the real binary, built once
//     with go build into a temp dir and started with a fresh data directory
//     and its embedded Redis on free ports; startup is process start to the
//     first 200 of /readyz (median of several starts), idle RSS is VmRSS a
//     second after that, peak RSS is VmHWM after 1,000 concurrent Q&A
//     executions (posted async) whose model is an OpenAI-compatible server in
//     the bench answering after 200 ms.
//   - list_p50_ms_100k: GET /workflows/{id}/executions (first page of 50) with
//     100,000 executions of that workflow stored.
//   - workers (worker mode, real processes: a redis-server, `switchboard serve
//     --redis-url` and `switchboard worker` processes started by the bench,
//     each part on fresh ones). ask_worker_redis_*: an ask from an outside
//     program (the bench, with an agent id and channel of its own, bus.Ask) to
//     an agent hosted by a worker, which answers with the instant demo model;
//     the execution's second agent, on a second worker whose demo model waits
//     an hour, keeps the execution running, and it is cancelled at the end.
//     ask_worker_raw_redis_* is the raw floor on the same Redis,
//     ask_worker_raw_remote_redis_* the same with its responder in another
//     process (this program, run again with SWITCHBOARD_BENCH_RAW_RESPONDER
//     set), and ask_worker_hop_*
//     one round trip to another process through the bus: a query to the
//     server's own channel about no execution, which it answers at once with
//     an error; the four alternate in rounds, each after the server has
//     recorded the answers of the round before. worker_scaling_N: executions
//     per second of a one-node pubsub workflow (a model of 200 ms,
//     --concurrency 8 per worker) with N workers ÷ with one
//     (worker_exec_per_s_N); enough executions posted async to keep every slot
//     busy for 4 s, throughput = executions ÷ time from the first post to the
//     end of the last (one that fails is counted in worker_scaling_failed_N);
//     worker_scaling_busiest_share_N is the share of the nodes the busiest
//     worker ran, worker_scaling_cpu_cores_N the CPU of every process of the
//     run (bench included) per second. failover_s: kill -9 of the worker
//     running a node (a model of 1 s) to the node's completion on the other
//     worker, server and workers with --lease 3s (median of 3 runs;
//     failover_node_s is the node's time undisturbed, failover_failed_runs the
//     runs whose execution failed). inflight_10k_rss_mb: the server's VmRSS
//     once inflight_n executions (a model of 2 s, two workers of --concurrency
//     8, so most wait on a worker) are all hosted on the workers or done;
//     inflight_server_hosted counts those whose agents the server hosted
//     instead (placement fell back).
//
// The instant model (see benchModel) answers at once, so everything measured
// is the engine's own work. The logger is a text handler at info level that
// writes to nowhere: the formatting work of a production logger is counted.
//
// -quick runs every figure with small counts, for CI and for bench_test.go; its
// figures are smoke values, not measurements. Missing redis-server is an error
// (install it with apt-get install redis-server).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if exitAsRawResponder(ctx) {
		return
	}
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// sections, in the order they run.
var sections = []string{"ask", "exec", "http", "chain", "overlap", "binary", "list", "workers"}

// scale holds the counts of a run; quick and full differ only here.
type scale struct {
	askRounds      int // rounds of floors and engine asks, after one warm-up round
	askRuns        int // engine executions per mode per round
	asksPerRun     int // asks one execution makes
	execDuration   time.Duration
	chainRounds    int
	chainRuns      map[int]int // chain length → executions per round
	overlapN       int
	overlapLatency time.Duration
	startups       int
	rssN           int
	listN          int
	listSamples    int

	workerAsksPerRound int // outside asks (and raw round trips) per round, askRounds rounds
	scalingBusy        time.Duration
	failoverRuns       int
	failoverLease      time.Duration
	failoverNode       time.Duration
	inflightN          int
}

var fullScale = scale{
	askRounds: 10, askRuns: 4, asksPerRun: 50,
	execDuration: 3 * time.Second,
	chainRounds:  5, chainRuns: map[int]int{4: 60, 64: 6, 512: 4},
	overlapN: 1000, overlapLatency: 200 * time.Millisecond,
	startups: 5, rssN: 1000,
	listN: 100_000, listSamples: 200,
	workerAsksPerRound: 200, scalingBusy: 4 * time.Second,
	failoverRuns: 3, failoverLease: 3 * time.Second, failoverNode: time.Second,
	inflightN: 10000,
}

var quickScale = scale{
	askRounds: 1, askRuns: 1, asksPerRun: 10,
	execDuration: 200 * time.Millisecond,
	chainRounds:  1, chainRuns: map[int]int{4: 3, 64: 1, 512: 1},
	overlapN: 50, overlapLatency: 200 * time.Millisecond,
	startups: 1, rssN: 50,
	listN: 2000, listSamples: 10,
	workerAsksPerRound: 20, scalingBusy: 400 * time.Millisecond,
	failoverRuns: 1, failoverLease: 2 * time.Second, failoverNode: 200 * time.Millisecond,
	inflightN: 100,
}

// runInfo says how a run was made.
type runInfo struct {
	Quick      bool     `json:"quick"`
	GoVersion  string   `json:"go_version"`
	CPUs       int      `json:"cpus"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	Sections   []string `json:"sections"`
	Seconds    float64  `json:"seconds"`
	Started    string   `json:"started"`
}

func (i runInfo) describe() string {
	mode := "full run"
	if i.Quick {
		mode = "quick run (smoke counts, not measurements)"
	}
	return fmt.Sprintf("%s, %s, %d CPUs, GOMAXPROCS %d, %s, took %.0f s", mode, i.GoVersion, i.CPUs, i.GOMAXPROCS, i.Started, i.Seconds)
}

type results struct {
	figures map[string]float64
	info    runInfo
}

func (r *results) set(name string, v float64) { r.figures[name] = v }

// bencher carries what the sections share.
type bencher struct {
	sc     scale
	dir    string // temp dir of the run, removed at the end
	bin    string // the binary, once built
	log    io.Writer
	logger *slog.Logger // the engine's logger (see the package comment)
	res    *results

	workerParts []string // parts of the workers section to run; all when empty
}

func (b *bencher) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object of every figure, the ratios and the checks")
	quick := fs.Bool("quick", false, "smoke run with small counts")
	only := fs.String("only", "", "comma-separated sections to run: "+strings.Join(sections, ","))
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the run to this file")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	parts := fs.String("workers", "", "comma-separated parts of the workers section to run: "+strings.Join(workerParts, ",")+" (all when empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	run := sections
	if *only != "" {
		run = nil
		for _, s := range strings.Split(*only, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(sections, s) {
				return fmt.Errorf("unknown section %q; sections are %s", s, strings.Join(sections, ","))
			}
			run = append(run, s)
		}
	}
	var wparts []string
	if *parts != "" {
		for _, p := range strings.Split(*parts, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(workerParts, p) {
				return fmt.Errorf("unknown part %q of the workers section; parts are %s", p, strings.Join(workerParts, ","))
			}
			wparts = append(wparts, p)
		}
	}
	sc := fullScale
	if *quick {
		sc = quickScale
	}
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	progress := stderr
	if *quiet {
		progress = io.Discard
	}
	started := time.Now()
	b := &bencher{
		sc: sc, dir: dir, log: progress, workerParts: wparts,
		logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		res: &results{figures: map[string]float64{}, info: runInfo{
			Quick: *quick, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
			Sections: run, Started: started.UTC().Format(time.RFC3339),
		}},
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			f, err := os.Create(*memProfile)
			if err != nil {
				fmt.Fprintln(stderr, "bench: memprofile:", err)
				return
			}
			defer f.Close()
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
		}()
	}

	steps := map[string]func(context.Context) error{
		"ask": b.asks, "exec": b.execs, "http": b.httpExecs, "chain": b.chains,
		"overlap": b.overlap, "binary": b.binary, "list": b.list, "workers": b.workers,
	}
	for _, s := range run {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := time.Now()
		b.progress("%s...", s)
		if err := steps[s](ctx); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		b.progress("%s done in %s", s, time.Since(t).Round(time.Millisecond))
	}
	b.res.info.Seconds = round(time.Since(started).Seconds(), 1)

	if *asJSON {
		return writeJSON(stdout, b.res)
	}
	writeTable(stdout, b.res)
	return nil
}
