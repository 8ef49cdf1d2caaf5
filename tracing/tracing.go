// Package tracing makes the OpenTelemetry tracer provider of a Switchboard
// process from the standard OTEL_* environment variables: spans are sent
// with OTLP over HTTP (protobuf) when an endpoint is set, and tracing is off
// otherwise. Library packages get the provider passed to them (see
// executor.Telemetry); nothing here sets the otel global.
package tracing

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Provider is a process's tracer provider and how to stop it.
type Provider struct {
	// Tracer is nil when tracing is off: callers then start no spans.
	Tracer trace.TracerProvider
	// Endpoint is where spans go ("" when off), for the start-up log.
	Endpoint string
	sdk      *sdktrace.TracerProvider
}

// Shutdown sends the spans still buffered and stops the exporter; ctx
// bounds the wait. Spans that cannot be sent by then are lost (the error
// says so). It does nothing when tracing is off.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces to %s: %w", p.Endpoint, err)
	}
	return nil
}

// FromEnv returns the tracer provider getenv's OTEL_* variables describe.
// Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL of
// the traces endpoint) or OTEL_EXPORTER_OTLP_ENDPOINT (a base URL, to which
// /v1/traces is added) is set, unless OTEL_SDK_DISABLED is true or
// OTEL_TRACES_EXPORTER is none. The service is named by OTEL_SERVICE_NAME
// (defaultService when unset) and OTEL_RESOURCE_ATTRIBUTES; the exporter's
// headers, timeout, compression and certificates, the sampler
// (OTEL_TRACES_SAMPLER) and the batching (OTEL_BSP_*) are read from the
// process environment by the SDK, as its documentation says.
//
// It fails, naming the variable, for a protocol other than http/protobuf, an
// exporter other than otlp or none, or an endpoint that is not a URL. It
// does not contact the endpoint: a collector that is down loses spans, it
// does not stop the process.
func FromEnv(ctx context.Context, getenv func(string) string, defaultService, version string) (*Provider, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return &Provider{}, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "", "otlp":
	case "none":
		return &Provider{}, nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Switchboard sends traces with otlp (or none)", exp)
	}
	endpoint := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
	if endpoint == "" {
		if base := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); base != "" {
			endpoint = strings.TrimRight(base, "/") + "/v1/traces"
		}
	}
	if endpoint == "" {
		return &Provider{}, nil
	}
	for _, key := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(key)); p != "" {
			if p != "http/protobuf" {
				return nil, fmt.Errorf("%s=%q: Switchboard sends traces with OTLP over HTTP, http/protobuf", key, p)
			}
			break
		}
	}
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("OTLP traces endpoint %q: want an http:// or https:// URL, e.g. http://localhost:4318", endpoint)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTLP traces exporter for %s: %w", endpoint, err)
	}
	service := strings.TrimSpace(getenv("OTEL_SERVICE_NAME"))
	if service == "" {
		service = defaultService
	}
	// Later sources win: OTEL_RESOURCE_ATTRIBUTES over the defaults, and the
	// service name getenv gives over both.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", defaultService), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", service)))
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{Tracer: sdk, Endpoint: endpoint, sdk: sdk}, nil
}
