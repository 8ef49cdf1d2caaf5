package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
)

// workerConfig is what the worker command reads from flags and the
// environment.
type workerConfig struct {
	redisURL    string
	name        string
	concurrency int
	healthAddr  string
	lease       time.Duration
	logLevel    string
	http        executor.HTTPConfig
	mcp         executor.MCPConfig
}

func parseWorkerFlags(args []string, getenv func(string) string, stderr io.Writer) (workerConfig, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host, _ := os.Hostname()
	cfg := workerConfig{}
	fs.StringVar(&cfg.redisURL, "redis-url", getenv("REDIS_URL"), "the Redis the server uses, redis:// or rediss:// (env REDIS_URL); required")
	fs.StringVar(&cfg.name, "name", envOr(getenv, "SWITCHBOARD_WORKER_NAME", fmt.Sprintf("%s-%d", host, os.Getpid())),
		"this worker's name, unique among the workers of one Redis (env SWITCHBOARD_WORKER_NAME); default host-pid")
	fs.IntVar(&cfg.concurrency, "concurrency", 16, "nodes this worker runs at once")
	fs.StringVar(&cfg.healthAddr, "health-addr", getenv("SWITCHBOARD_WORKER_HEALTH_ADDR"), "serve GET /healthz and GET /metrics on this address, e.g. 127.0.0.1:8081 (env SWITCHBOARD_WORKER_HEALTH_ADDR); off when empty")
	fs.DurationVar(&cfg.lease, "lease", bus.DefaultLease, "how long a task may go unrenewed before the server places it again; must match the server's --lease")
	fs.StringVar(&cfg.logLevel, "log-level", envOr(getenv, "SWITCHBOARD_LOG_LEVEL", "info"), "debug, info, warn or error (env SWITCHBOARD_LOG_LEVEL)")
	if err := addHTTPFlags(fs, getenv, &cfg.http); err != nil {
		return cfg, err
	}
	if err := addMCPFlags(fs, getenv, &cfg.mcp); err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("worker takes no arguments, got %q", fs.Args())
	case cfg.redisURL == "":
		return cfg, errors.New("worker needs --redis-url (or REDIS_URL): the Redis of the server whose agents it hosts, e.g. redis://127.0.0.1:6379; a server with no REDIS_URL runs an embedded one, whose address it logs at start")
	case cfg.concurrency < 1 || cfg.concurrency > 10000:
		return cfg, fmt.Errorf("--concurrency %d: want 1 to 10000", cfg.concurrency)
	case cfg.lease < time.Second:
		return cfg, fmt.Errorf("--lease %s: want at least 1s", cfg.lease)
	}
	return cfg, nil
}

// worker runs the worker command: a process with no database and no API
// that hosts agents and runs nodes for the servers sharing its Redis.
func worker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseWorkerFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.logLevel, stderr)
	if err != nil {
		return err
	}
	b, err := bus.Connect(ctx, cfg.redisURL, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	model, info := llm.FromEnv(getenv, logger)
	tel, err := openTelemetry(ctx, getenv, "switchboard-worker", logger)
	if err != nil {
		return err
	}
	defer tel.close(logger)
	w, err := executor.NewWorker(b.Client(), b, model, executor.WorkerConfig{
		Name: cfg.name, Concurrency: cfg.concurrency, Lease: cfg.lease, HTTP: cfg.http, MCP: cfg.mcp, Logger: logger,
		Telemetry: tel.forExecutor(info)})
	if err != nil {
		return err
	}
	tel.metrics.WatchBus(b.Outages)
	tel.metrics.WatchWorker(func() (int, int) {
		reg, _ := w.Registration()
		return cfg.concurrency, reg.InUse
	})
	if cfg.healthAddr != "" {
		ln, err := net.Listen("tcp", cfg.healthAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.healthAddr, err)
		}
		mux := workerHealth(w, b)
		mux.Handle("GET /metrics", tel.metrics.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		logger.Info("health endpoint", "url", "http://"+ln.Addr().String()+"/healthz")
	}
	d := b.Describe()
	fmt.Fprintf(stdout, "Switchboard worker %s is running (capacity %d, Redis %s, model %v)\n", cfg.name, cfg.concurrency, d.URL, info.Provider)
	return w.Run(ctx)
}

// workerHealth answers GET /healthz: 200 while the worker is registered
// and its Redis connection is up, else 503, with what it runs as JSON.
func workerHealth(w *executor.Worker, b *bus.Bus) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		info, registered := w.Registration()
		body := map[string]any{"status": "ok", "name": info.Name, "capacity": info.Capacity, "in_use": info.InUse, "agents": len(info.Agents)}
		status := http.StatusOK
		switch {
		case !b.Healthy():
			status, body["status"], body["reason"] = http.StatusServiceUnavailable, "unavailable", "the Redis connection is down"
		case !registered:
			status, body["status"], body["reason"] = http.StatusServiceUnavailable, "unavailable", "not registered yet"
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(status)
		_ = json.NewEncoder(rw).Encode(body)
	})
	return mux
}
