// Package tracetest is an in-process OTLP/HTTP trace receiver for tests: an
// httptest server that decodes the protobuf ExportTraceServiceRequests an
// otlptracehttp exporter sends, and keeps their spans.
package tracetest

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, its ids in hex as W3C traceparent writes them.
type Span struct {
	Service      string // the service.name of its resource
	Name         string
	TraceID      string
	SpanID       string
	ParentSpanID string // "" for a root span
	Attrs        map[string]any
	Failed       bool // its status is error
}

// Receiver collects the spans exported to it. Its methods are safe for
// concurrent use.
type Receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	spans   []Span
	arrived chan struct{} // gets a value after each export, without blocking
}

// NewReceiver starts a receiver that serves POST /v1/traces until the test
// ends.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{arrived: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.export))
	t.Cleanup(r.srv.Close)
	return r
}

// Endpoint is the URL of the traces endpoint, for
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
func (r *Receiver) Endpoint() string { return r.srv.URL + "/v1/traces" }

// Base is the receiver's base URL, for OTEL_EXPORTER_OTLP_ENDPOINT.
func (r *Receiver) Base() string { return r.srv.URL }

func (r *Receiver) export(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "want POST /v1/traces", http.StatusNotFound)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		http.Error(w, "decode ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{Service: service, Name: s.GetName(), TraceID: hex.EncodeToString(s.GetTraceId()),
					SpanID: hex.EncodeToString(s.GetSpanId()), Attrs: map[string]any{},
					Failed: s.GetStatus().GetCode() == 2}
				if len(s.GetParentSpanId()) > 0 {
					sp.ParentSpanID = hex.EncodeToString(s.GetParentSpanId())
				}
				for _, kv := range s.GetAttributes() {
					sp.Attrs[kv.GetKey()] = value(kv.GetValue())
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	}
	return fmt.Sprint(v)
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// WaitFor waits until a span matches ok and returns it; it fails the test
// after within.
func (r *Receiver) WaitFor(t testing.TB, within time.Duration, what string, ok func(Span) bool) Span {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		for _, s := range r.Spans() {
			if ok(s) {
				return s
			}
		}
		select {
		case <-r.arrived:
		case <-deadline.C:
			t.Fatalf("no span %s among %d received:\n%s", what, len(r.Spans()), r.Dump())
		}
	}
}

// Find returns the spans that match ok.
func (r *Receiver) Find(ok func(Span) bool) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if ok(s) {
			out = append(out, s)
		}
	}
	return out
}

// Dump lists the spans received, one a line, for failure messages.
func (r *Receiver) Dump() string {
	var b strings.Builder
	for _, s := range r.Spans() {
		fmt.Fprintf(&b, "  %s %q trace %s span %s parent %s %v\n", s.Service, s.Name, s.TraceID, s.SpanID, s.ParentSpanID, s.Attrs)
	}
	return b.String()
}
