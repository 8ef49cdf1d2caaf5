package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/tracing"
)

// telemetry is a process's metrics and traces: the metrics always (they
// cost an atomic add where they are recorded, and nothing until scraped),
// the traces when the OTEL_* environment names an endpoint.
type telemetry struct {
	metrics *metrics.Metrics
	tracing *tracing.Provider
}

// openTelemetry makes the process's metrics and its tracer provider, which
// it logs when tracing is on. It fails when the OTEL_* variables are wrong
// (see tracing.FromEnv).
func openTelemetry(ctx context.Context, getenv func(string) string, service string, logger *slog.Logger) (*telemetry, error) {
	tp, err := tracing.FromEnv(ctx, getenv, service, version)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if tp.Tracer != nil {
		logger.Info("tracing on: spans go over OTLP/HTTP", "endpoint", tp.Endpoint)
	}
	return &telemetry{metrics: metrics.New(), tracing: tp}, nil
}

// forExecutor is what the executor (or a worker) reports to, calling the
// model info describes.
func (t *telemetry) forExecutor(info llm.Info) executor.Telemetry {
	// The GenAI conventions name providers by the API they speak.
	provider := info.Provider
	if provider == llm.ProviderOpenAICompatible {
		provider = "openai"
	}
	return executor.Telemetry{Metrics: t.metrics, Tracer: t.tracing.Tracer, ModelProvider: provider, DefaultModel: info.Model}
}

// close sends the spans still buffered, waiting at most 5 s.
func (t *telemetry) close(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.tracing.Shutdown(ctx); err != nil {
		logger.Warn("spans were lost at shutdown", "err", err)
	}
}

// serveMetrics serves GET /metrics (no token) on a listener of its own,
// --metrics-addr, until stop is called, and returns its URL. It fails
// when addr cannot be listened on.
func serveMetrics(ctx context.Context, addr string, m *metrics.Metrics, logger *slog.Logger) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on --metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	url = "http://" + ln.Addr().String() + "/metrics"
	logger.Info("metrics endpoint", "url", url)
	return url, func() { _ = srv.Close() }, nil
}
