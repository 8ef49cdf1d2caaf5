package tracing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/tracing"
	"github.com/switchboard-dev/switchboard/tracing/tracetest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestOffWithoutEndpoint(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"nothing set":   {"OTEL_SERVICE_NAME": "x"},
		"sdk disabled":  {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
		"exporter none": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"},
	} {
		p, err := tracing.FromEnv(t.Context(), env(vars), "switchboard", "test")
		if err != nil || p.Tracer != nil || p.Endpoint != "" {
			t.Errorf("%s: tracer %v endpoint %q err %v, want off", name, p.Tracer, p.Endpoint, err)
		}
		if err := p.Shutdown(t.Context()); err != nil {
			t.Errorf("%s: shutdown of no tracing: %v", name, err)
		}
	}
}

func TestBadSettingsNameTheVariable(t *testing.T) {
	t.Parallel()
	for want, vars := range map[string]map[string]string{
		"OTEL_EXPORTER_OTLP_PROTOCOL": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		"OTEL_TRACES_EXPORTER":        {"OTEL_TRACES_EXPORTER": "zipkin"},
		"want an http:// or https://": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "127.0.0.1:4318"},
	} {
		_, err := tracing.FromEnv(t.Context(), env(vars), "switchboard", "test")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err %v, want one naming %s", vars, err, want)
		}
	}
}

// TestExportsToTheBaseEndpoint sends a span to OTEL_EXPORTER_OTLP_ENDPOINT
// + /v1/traces, named by OTEL_SERVICE_NAME, and Shutdown flushes it.
func TestExportsToTheBaseEndpoint(t *testing.T) {
	t.Parallel()
	recv := tracetest.NewReceiver(t)
	p, err := tracing.FromEnv(t.Context(), env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": recv.Base() + "/", "OTEL_SERVICE_NAME": "svc"}), "switchboard", "test")
	if err != nil || p.Tracer == nil {
		t.Fatalf("tracer %v err %v", p.Tracer, err)
	}
	if p.Endpoint != recv.Endpoint() {
		t.Errorf("endpoint %q, want %q", p.Endpoint, recv.Endpoint())
	}
	_, span := p.Tracer.Tracer("test").Start(context.Background(), "hello")
	span.End()
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := recv.WaitFor(t, 5*time.Second, "hello", func(s tracetest.Span) bool { return s.Name == "hello" })
	if s.Service != "svc" {
		t.Errorf("service %q, want svc", s.Service)
	}
}
