package web

import (
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// remoteParent is the W3C trace context a request came with (its
// traceparent and tracestate headers), to be the parent of the execution
// it starts. A missing or malformed traceparent gives the zero span
// context, and the execution starts a trace of its own, as the W3C
// recommendation says a receiver does.
func remoteParent(r *http.Request) trace.SpanContext {
	if r.Header.Get("traceparent") == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return trace.SpanContextFromContext(ctx)
}
