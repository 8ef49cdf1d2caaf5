package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/examples"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/pricing"
	"github.com/switchboard-dev/switchboard/schedule"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// serveConfig is what serve reads from flags and the environment.
type serveConfig struct {
	addr          string
	data          string
	logLevel      string
	shutdownGrace time.Duration
	bus           busConfig
	token         string
	insecure      bool
	retain        store.Retention
	bodyLimit     int64
	limits        workflow.Limits
	lease         time.Duration
	http          executor.HTTPConfig
	mcp           executor.MCPConfig
	hooks         hookConfig
	prices        *pricing.Table
	smtp          executor.SMTPConfig
	metricsAddr   string // GET /metrics on a listener of its own, without the token; "": on the API's
}

// busConfig says which Redis pubsub executions use.
type busConfig struct {
	redisURL     string // external Redis; empty runs the embedded one
	embeddedAddr string // where the embedded Redis listens
}

func addBusFlags(fs *flag.FlagSet, getenv func(string) string, cfg *busConfig) {
	fs.StringVar(&cfg.redisURL, "redis-url", getenv("REDIS_URL"), "Redis for pubsub mode, redis:// or rediss:// (env REDIS_URL); empty runs an embedded Redis")
	fs.StringVar(&cfg.embeddedAddr, "embedded-redis-addr", envOr(getenv, "SWITCHBOARD_EMBEDDED_REDIS_ADDR", "127.0.0.1:6380"),
		"where the embedded Redis listens when no Redis URL is set; a free port if taken (env SWITCHBOARD_EMBEDDED_REDIS_ADDR)")
}

func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := serveConfig{}
	fs.StringVar(&cfg.addr, "addr", envOr(getenv, "SWITCHBOARD_ADDR", "127.0.0.1:8000"), "address to listen on (env SWITCHBOARD_ADDR)")
	fs.StringVar(&cfg.data, "data", envOr(getenv, "SWITCHBOARD_DATA", "./switchboard-data"), "directory for the database (env SWITCHBOARD_DATA)")
	fs.StringVar(&cfg.logLevel, "log-level", envOr(getenv, "SWITCHBOARD_LOG_LEVEL", "info"), "debug, info, warn or error (env SWITCHBOARD_LOG_LEVEL)")
	fs.DurationVar(&cfg.shutdownGrace, "shutdown-grace", 30*time.Second, "how long running executions may finish on shutdown before they are cancelled")
	addBusFlags(fs, getenv, &cfg.bus)
	fs.DurationVar(&cfg.lease, "lease", bus.DefaultLease, "how long a worker's task may go unrenewed before its agents are placed again; give workers the same --lease")
	fs.StringVar(&cfg.token, "token", getenv("SWITCHBOARD_TOKEN"), "access token: the API needs it as a bearer token, the dashboard asks for it (env SWITCHBOARD_TOKEN)")
	fs.BoolVar(&cfg.insecure, "insecure-no-auth", false, "allow listening on a non-loopback address without a token")
	fs.StringVar(&cfg.metricsAddr, "metrics-addr", getenv("SWITCHBOARD_METRICS_ADDR"), "serve GET /metrics on this address, without the token (env SWITCHBOARD_METRICS_ADDR); default: on --addr, behind the token")
	fs.Int64Var(&cfg.bodyLimit, "max-body", 1<<20, "largest request body in bytes")
	fs.IntVar(&cfg.limits.MaxNodes, "max-nodes", 500, "most nodes in one workflow")
	fs.IntVar(&cfg.limits.MaxPromptBytes, "max-prompt-bytes", 64<<10, "largest prompt or system prompt in a workflow, in bytes")
	fs.Func("retain", "delete ended executions older than an age (30d, 12h) and/or beyond a count (10000), e.g. 30d,10000 (env SWITCHBOARD_RETAIN); default: keep all",
		func(v string) error { return parseRetention(v, &cfg.retain) })
	if err := addHTTPFlags(fs, getenv, &cfg.http); err != nil {
		return cfg, err
	}
	if err := addMCPFlags(fs, getenv, &cfg.mcp); err != nil {
		return cfg, err
	}
	if err := addHookFlags(fs, getenv, &cfg.hooks); err != nil {
		return cfg, err
	}
	if err := addPricesFlag(fs, getenv, &cfg.prices); err != nil {
		return cfg, err
	}
	if err := addSMTPFlags(fs, getenv, &cfg.smtp); err != nil {
		return cfg, err
	}
	if v := getenv("SWITCHBOARD_RETAIN"); v != "" {
		if err := parseRetention(v, &cfg.retain); err != nil {
			return cfg, fmt.Errorf("SWITCHBOARD_RETAIN: %w", err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := checkSMTP(&cfg.smtp); err != nil {
		return cfg, err
	}
	if cfg.lease < time.Second {
		return cfg, fmt.Errorf("--lease %s: want at least 1s", cfg.lease)
	}
	if cfg.token == "" && !cfg.insecure && !loopback(cfg.addr) {
		return cfg, fmt.Errorf("refusing to listen on %s without a token: anyone who can reach it could run workflows on your model key. "+
			"Set SWITCHBOARD_TOKEN (or --token) to a long random secret, e.g. SWITCHBOARD_TOKEN=$(openssl rand -hex 24), "+
			"or pass --insecure-no-auth if something in front of it already checks who gets in", cfg.addr)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	return cfg, nil
}

// parseRetention reads "30d", "12h", "10000" or "30d,10000".
func parseRetention(v string, r *store.Retention) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if n, err := strconv.Atoi(part); err == nil {
			if n < 1 {
				return fmt.Errorf("retain count %d: must be 1 or more", n)
			}
			r.MaxCount = n
			continue
		}
		if days, ok := strings.CutSuffix(part, "d"); ok {
			n, err := strconv.Atoi(days)
			// A count of days past about 106751 would wrap the time.Duration
			// to a negative age; a hundred years is the most anyone means.
			if err != nil || n < 1 || n > 36500 {
				return fmt.Errorf("retain age %q: want a number of days from 1 to 36500, like 30d", part)
			}
			r.MaxAge = time.Duration(n) * 24 * time.Hour
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d <= 0 {
			return fmt.Errorf("retain %q: want an age like 30d or 12h, or a count like 10000", part)
		}
		r.MaxAge = d
	}
	return nil
}

// pruneLoop deletes executions the retention policy no longer keeps, now and
// every ten minutes, in small batches so running executions never wait long
// for the writer.
func pruneLoop(ctx context.Context, db *store.DB, r store.Retention, logger *slog.Logger) {
	tick := time.NewTicker(10 * time.Minute)
	defer tick.Stop()
	for {
		total := 0
		for ctx.Err() == nil {
			n, err := db.Prune(ctx, r, 200)
			if err != nil {
				if ctx.Err() == nil {
					logger.Warn("pruning old executions failed", "err", err)
				}
				break
			}
			total += n
			if n < 200 {
				break
			}
		}
		if total > 0 {
			logger.Info("pruned old executions", "count", total, "max_age", r.MaxAge, "max_count", r.MaxCount)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// loopback reports whether addr listens on the loopback interface only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// app is the wired program: store, model, bus and executor.
type app struct {
	logger   *slog.Logger
	db       *store.DB
	model    llm.Client
	llmInfo  llm.Info
	bus      *bus.Bus
	embedded *bus.Embedded // nil when an external Redis is used
	exec     *executor.Executor
	tel      *telemetry
}

// close releases what openApp opened, newest first: the bus (senders
// before receivers: executions have ended by now), the embedded Redis, then
// the database.
func (a *app) close() {
	if a.exec != nil {
		// The MCP servers the executor started stop with it; serve has
		// shut it down already, and run has no execution left.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.exec.Shutdown(ctx)
		cancel()
	}
	if a.tel != nil {
		a.tel.close(a.logger) // the executions' last spans
	}
	if a.bus != nil {
		if err := a.bus.Close(); err != nil {
			a.logger.Warn("close bus", "err", err)
		}
	}
	if a.embedded != nil {
		a.embedded.Close()
	}
	if err := a.db.Close(); err != nil {
		a.logger.Warn("close database", "err", err)
	}
}

// busInfo describes the bus for /readyz and the dashboard; never a password.
func (a *app) busInfo() map[string]any {
	d := a.bus.Describe()
	info := map[string]any{"url": d.URL, "addr": d.Addr, "healthy": d.Healthy, "channels": d.Channels, "pending_asks": d.PendingAsks}
	if a.embedded != nil {
		info["kind"] = "embedded"
		info["watch"] = "redis-cli -p " + portOf(d.Addr) + " PSUBSCRIBE 'agent:messages:*'"
	} else {
		info["kind"] = "external"
	}
	return info
}

// busView adapts the app's bus to what the dashboard shows.
type busView struct{ a *app }

func (v busView) Info(ctx context.Context) map[string]any {
	info := v.a.busInfo()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	if err := v.a.bus.Ping(pctx); err != nil {
		info["connected"] = false
		info["error"] = err.Error()
	} else {
		info["connected"] = true
		info["latency_ms"] = float64(time.Since(start).Microseconds()) / 1000
	}
	if chans, err := v.a.bus.ActiveChannels(pctx, "agent:messages:node-*"); err == nil {
		info["agents"] = chans
	}
	return info
}

// Monitor shows raw bus traffic with the secret values of the execution a
// message belongs to masked.
func (v busView) Monitor(ctx context.Context, pattern string, fn func(channel string, payload []byte)) error {
	return v.a.bus.Monitor(ctx, pattern, func(channel string, payload []byte) {
		var m bus.Message
		if err := json.Unmarshal(payload, &m); err == nil {
			if id := m.ExecutionID(); id != "" {
				payload = []byte(v.a.exec.Redact(id, string(payload)))
			}
		}
		fn(channel, payload)
	})
}

// Workers lists the registered workers for the Bus page and GET /workers.
// Records that cannot be decoded are left out with a warning, so one bad
// key does not hide the others; Redis out of reach is unavailable (503).
func (v busView) Workers(ctx context.Context) ([]web.Worker, error) {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ws, err := bus.ListWorkers(lctx, v.a.bus.Client())
	if errors.Is(err, bus.ErrMalformedWorker) {
		v.a.logger.Warn("the worker registry holds records that are not workers", "err", err)
	} else if err != nil {
		return nil, &workflow.Error{Code: workflow.CodeUnavailable,
			Message: fmt.Sprintf("cannot list the workers: Redis at %s cannot be reached", v.a.bus.Describe().Addr), Err: err}
	}
	out := make([]web.Worker, len(ws))
	for i, w := range ws {
		out[i] = web.Worker{Name: w.Name, Host: w.Host, PID: w.PID, Capacity: w.Capacity, InUse: w.InUse,
			StartedAt: w.StartedAt, LastHeartbeat: w.LastHeartbeat, Agents: w.Agents, Instance: w.Instance}
	}
	return out, nil
}

func portOf(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil {
		return port
	}
	return addr
}

// openBus connects to the configured Redis, or starts the embedded one.
// Redis being down is not an error here: the server starts, and pubsub
// executions fall back to simple mode until it is back.
func openBus(ctx context.Context, cfg busConfig, logger *slog.Logger) (*bus.Bus, *bus.Embedded, error) {
	url := cfg.redisURL
	var emb *bus.Embedded
	if url == "" {
		var err error
		emb, err = bus.StartEmbedded(cfg.embeddedAddr, logger)
		if err != nil {
			return nil, nil, fmt.Errorf("start embedded redis: %w", err)
		}
		url = emb.URL()
	}
	b, err := bus.Connect(ctx, url, logger)
	if err != nil {
		if emb != nil {
			emb.Close()
		}
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d := b.Describe()
	if err := b.Ping(pctx); err != nil {
		logger.Warn("redis is unreachable; pubsub executions will fall back to simple mode until it is back", "redis", d.URL, "err", err)
	} else if emb != nil {
		logger.Info("pubsub bus: embedded redis", "addr", d.Addr, "watch", "redis-cli -p "+portOf(d.Addr)+" PSUBSCRIBE 'agent:messages:*'")
	} else {
		logger.Info("pubsub bus: external redis", "redis", d.URL)
	}
	return b, emb, nil
}

// openApp opens the database in dataDir, the bus and the executor, which
// gets ec with the tool mode of the environment. A new database gets the
// example workflows.
func openApp(ctx context.Context, dataDir string, bc busConfig, ec executor.Config, getenv func(string) string, logger *slog.Logger) (*app, error) {
	// How nodes that set no config.tool_mode reach the others.
	toolMode := envOr(getenv, "SWITCHBOARD_TOOL_MODE", workflow.ToolModeAuto)
	if !workflow.ValidToolMode(toolMode) {
		return nil, fmt.Errorf("SWITCHBOARD_TOOL_MODE=%q: want native, text or auto", toolMode)
	}
	path := filepath.Join(dataDir, "switchboard.db")
	_, statErr := os.Stat(path)
	fresh := errors.Is(statErr, fs.ErrNotExist)
	db, err := store.Open(ctx, path, logger)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if n, err := db.MarkInterrupted(ctx, "the server stopped while it was running"); err != nil {
		db.Close()
		return nil, fmt.Errorf("mark interrupted executions: %w", err)
	} else if n > 0 {
		logger.Warn("marked executions left running by the last process as interrupted", "count", n)
	}
	if fresh {
		if err := loadExamples(ctx, db, logger); err != nil {
			db.Close()
			return nil, err
		}
	}
	b, emb, err := openBus(ctx, bc, logger)
	if err != nil {
		db.Close()
		return nil, err
	}
	model, info := llm.FromEnv(getenv, logger)
	tel, err := openTelemetry(ctx, getenv, "switchboard", logger)
	if err != nil {
		b.Close()
		if emb != nil {
			emb.Close()
		}
		db.Close()
		return nil, err
	}
	db.ObserveWrites(tel.metrics.StoreWrite)
	tel.metrics.WatchBus(b.Outages)
	ec.ToolMode, ec.Telemetry = toolMode, tel.forExecutor(info)
	ex := executor.New(db, model, b, logger, ec)
	return &app{logger: logger, db: db, model: model, llmInfo: info, bus: b, embedded: emb, exec: ex, tel: tel}, nil
}

func loadExamples(ctx context.Context, db *store.DB, logger *slog.Logger) error {
	names, err := fs.Glob(examples.FS, "*.json")
	if err != nil {
		return fmt.Errorf("list examples: %w", err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names))) // newest-first lists show 01 first
	for _, name := range names {
		data, err := examples.FS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read example %s: %w", name, err)
		}
		w, err := workflow.Parse(data)
		if err != nil {
			return fmt.Errorf("example %s: %w", name, err)
		}
		if err := db.CreateWorkflow(ctx, w); err != nil {
			return fmt.Errorf("store example %s: %w", name, err)
		}
	}
	logger.Info("loaded example workflows into the new database", "count", len(names))
	return nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.logLevel, stderr)
	if err != nil {
		return err
	}
	if cfg.insecure && cfg.token == "" && !loopback(cfg.addr) {
		logger.Warn("INSECURE: listening on a non-loopback address with no token; anyone who can reach " + cfg.addr + " can read and run every workflow")
	}
	// Listen first, so a taken port fails at once and ":0" works in tests.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	defer ln.Close()

	a, err := openApp(ctx, cfg.data, cfg.bus, executor.Config{HTTP: cfg.http, MCP: cfg.mcp, Prices: cfg.prices, SMTP: cfg.smtp}, getenv, logger)
	if err != nil {
		return err
	}
	defer a.close()
	// Worker mode: pubsub executions place their agents on the workers
	// that share the bus's Redis. It stops after the executions (defers
	// run newest first).
	workersCtx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	if err := a.exec.UseWorkers(workersCtx, a.bus.Client(), executor.WorkerOptions{Lease: cfg.lease}); err != nil {
		return fmt.Errorf("worker mode: %w", err)
	}
	if err := reenterWaiting(ctx, a.db, a.exec, logger); err != nil {
		return err
	}
	a.tel.metrics.WatchQueues(a.exec.QueueDepths, time.Second)
	var metricsHandler http.Handler // on the API's listener, behind the token
	if cfg.metricsAddr != "" {
		murl, stopMetrics, err := serveMetrics(workersCtx, cfg.metricsAddr, a.tel.metrics, logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
		fmt.Fprintf(stdout, "Metrics are served at %s (no token)\n", murl)
	} else {
		metricsHandler = a.tel.metrics.Handler()
	}

	// The scheduler starts runs of the workflows with a metadata.schedule;
	// the web server tells it when a workflow changes.
	sched := schedule.New(a.db, a.exec, logger)
	webCfg := web.Config{
		Version:   version,
		Token:     cfg.token,
		BodyLimit: cfg.bodyLimit,
		Limits:    cfg.limits,
		Assets:    webAssets(),
		Bus:       busView{a},
		DataDir:   cfg.data,
		HookRate:  cfg.hooks.rate,
		HookBurst: cfg.hooks.burst,
		HookWait:  cfg.hooks.wait,
		Schedules: sched,
		Metrics:   metricsHandler,
		Settings: map[string]any{
			"llm": a.llmInfo, "bus": a.busInfo(), "version": version, "data_dir": cfg.data,
		},
		Checks: map[string]web.Check{"bus": func(ctx context.Context) (map[string]any, error) {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if err := a.bus.Ping(pctx); err != nil {
				return a.busInfo(), err
			}
			// Redis answering is not enough: the subscriber connection that
			// delivers agents' messages must be up too.
			if !a.bus.Healthy() {
				return a.busInfo(), fmt.Errorf("the pub/sub subscriber connection is down (reconnecting)")
			}
			return a.busInfo(), nil
		}},
	}
	srv, err := web.New(webCfg, a.db, a.exec, logger)
	if err != nil {
		return fmt.Errorf("build web server: %w", err)
	}
	// Request contexts derive from reqCtx, cancelled at shutdown so that
	// live streams end instead of holding Shutdown open.
	reqCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.retain.MaxAge > 0 || cfg.retain.MaxCount > 0 {
		go pruneLoop(reqCtx, a.db, cfg.retain, logger)
	}
	if err := sched.Start(ctx); err != nil {
		return fmt.Errorf("start the schedules: %w", err)
	}
	// Stopped before the executor (defers run newest first, and shutdown
	// below stops it first): no scheduled run starts while runs are ended.
	defer sched.Stop(context.Background()) //nolint:errcheck // stopped already on a clean shutdown
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	url := "http://" + ln.Addr().String()
	logger.Info("switchboard is ready", "url", url, "data", cfg.data, "version", version)
	fmt.Fprintf(stdout, "Switchboard %s is running at %s/ (data in %s)\n", version, url, cfg.data)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	logger.Info("shutting down", "grace", cfg.shutdownGrace)
	// Newest first: stop accepting HTTP, then let executions finish (or
	// cancel them after the grace period), then the database closes (defer).
	graceCtx, cancelGrace := context.WithTimeout(context.Background(), cfg.shutdownGrace)
	defer cancelGrace()
	if err := sched.Stop(graceCtx); err != nil {
		logger.Warn("schedule stop", "err", err)
	}
	cancelRequests()
	if err := httpSrv.Shutdown(graceCtx); err != nil {
		logger.Warn("http shutdown", "err", err)
	}
	if err := a.exec.Shutdown(graceCtx); err != nil {
		logger.Warn("executions were cancelled at shutdown", "err", err)
	}
	logger.Info("stopped")
	return nil
}

// splitKV parses key=value.
func splitKV(s string) (string, string, bool) {
	k, v, ok := strings.Cut(s, "=")
	return strings.TrimSpace(k), v, ok && strings.TrimSpace(k) != ""
}
