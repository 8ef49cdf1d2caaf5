package executor

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/workflow"
)

// Telemetry is where the executor (or a worker) reports what it does.
// Its zero value reports nothing, at no cost.
type Telemetry struct {
	// Metrics records counts and durations; nil records none.
	Metrics *metrics.Metrics
	// Tracer makes the spans of executions, nodes, model calls, asks and
	// tool calls; nil makes none. It is passed, never taken from the otel
	// global, so that two executors in one process (tests) stay apart.
	Tracer trace.TracerProvider
	// ModelProvider is gen_ai.provider.name of model-call spans, e.g.
	// "openai"; "" leaves it out.
	ModelProvider string
	// DefaultModel is the model a node without config.model calls (the
	// client's default), for gen_ai.request.model; "" leaves it out.
	DefaultModel string
}

// tracerName is the instrumentation scope of the spans.
const tracerName = "github.com/switchboard-dev/switchboard/executor"

// telemetry is Telemetry made ready: the tracer resolved once. A nil
// *telemetry reports nothing; so does one without a tracer, whose spans
// are never started (a no-op tracer would still put a span in every
// context).
type telemetry struct {
	m        *metrics.Metrics
	tracer   trace.Tracer // nil: tracing is off
	provider string
	model    string // the default model
}

func newTelemetry(t Telemetry) *telemetry {
	tel := &telemetry{m: t.Metrics, provider: t.ModelProvider, model: t.DefaultModel}
	if t.Tracer != nil {
		tel.tracer = t.Tracer.Tracer(tracerName)
	}
	return tel
}

// noSpan is the span of everything while tracing is off: it records
// nothing and ends at no cost.
func noSpan() trace.Span { return trace.SpanFromContext(context.Background()) }

// tracing reports whether spans are made: callers build span names and
// attributes only then, since even building them allocates.
func (t *telemetry) tracing() bool { return t != nil && t.tracer != nil }

func (t *telemetry) metrics() *metrics.Metrics {
	if t == nil {
		return nil
	}
	return t.m
}

// start starts a span under ctx's, or returns ctx and noSpan when
// tracing is off.
func (t *telemetry) start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t == nil || t.tracer == nil {
		return ctx, noSpan()
	}
	return t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// startExecution starts the span of an execution. Its parent is the
// trace context the request came with (a traceparent header), when it
// has one.
func (t *telemetry) startExecution(ctx context.Context, x *workflow.Execution, parent trace.SpanContext) (context.Context, trace.Span) {
	if t == nil || t.tracer == nil {
		return ctx, noSpan()
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return t.start(ctx, "execution "+x.WorkflowName, trace.SpanKindInternal,
		attribute.String("switchboard.execution.id", x.ID), attribute.String("switchboard.workflow.id", x.WorkflowID),
		attribute.String("switchboard.workflow.name", x.WorkflowName), attribute.String("switchboard.mode.requested", x.RequestedMode))
}

// endExecution ends an execution's span and counts it.
func (t *telemetry) endExecution(span trace.Span, status string, x *workflow.Execution) {
	t.metrics().ExecutionFinished(status, x.Mode)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("switchboard.execution.status", status), attribute.String("switchboard.mode", x.Mode))
	if status != workflow.ExecSuccess {
		span.SetStatus(codes.Error, x.Error)
	}
	span.End()
}

// observeNode runs node id of x as runNode does, inside the node's span,
// and observes how long it took.
func (x *execution) observeNode(ctx context.Context, id string) string {
	tel := x.e.tel
	node := x.node(id)
	span := noSpan()
	if tel.tracing() {
		ctx, span = tel.start(ctx, "node "+id, trace.SpanKindInternal,
			attribute.String("switchboard.node.id", id), attribute.String("switchboard.node.type", node.Type))
	}
	start := time.Now()
	status := x.runNode(ctx, id)
	tel.metrics().NodeDone(node.Type, time.Since(start))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("switchboard.node.status", status))
		if status != workflow.NodeCompleted {
			x.mu.Lock()
			msg := x.states[id].Error
			x.mu.Unlock()
			span.SetStatus(codes.Error, msg)
		}
		span.End()
	}
	return status
}

// startChat starts the span of a model call, named and attributed as the
// OpenTelemetry GenAI conventions say.
func (t *telemetry) startChat(ctx context.Context, model, node string) (context.Context, trace.Span) {
	if t == nil || t.tracer == nil {
		return ctx, noSpan()
	}
	attrs := []attribute.KeyValue{attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.agent.name", node)}
	if model == "" {
		model = t.model
	}
	name := "chat"
	if model != "" {
		name += " " + model
		attrs = append(attrs, attribute.String("gen_ai.request.model", model))
	}
	if t.provider != "" {
		// gen_ai.system is the older name of gen_ai.provider.name; both are
		// set while backends read either.
		attrs = append(attrs, attribute.String("gen_ai.provider.name", t.provider), attribute.String("gen_ai.system", t.provider))
	}
	return t.start(ctx, name, trace.SpanKindClient, attrs...)
}

// endChat ends a model call's span with what the model answered.
func endChat(span trace.Span, resp llm.Response, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		if resp.Model != "" {
			span.SetAttributes(attribute.String("gen_ai.response.model", resp.Model))
		}
		span.SetAttributes(attribute.Int("gen_ai.usage.input_tokens", resp.Usage.PromptTokens),
			attribute.Int("gen_ai.usage.output_tokens", resp.Usage.CompletionTokens))
	}
	span.End()
}

// startTool starts the span of a tool call (a native one, or a CALL:
// line when id is "").
func (t *telemetry) startTool(ctx context.Context, name, id string) (context.Context, trace.Span) {
	if t == nil || t.tracer == nil {
		return ctx, noSpan()
	}
	attrs := []attribute.KeyValue{attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", name)}
	if id != "" {
		attrs = append(attrs, attribute.String("gen_ai.tool.call.id", id))
	}
	return t.start(ctx, "execute_tool "+name, trace.SpanKindInternal, attrs...)
}

// endSpan ends span, marked failed when err is set.
func endSpan(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startAsk starts the span of an ask from node from to node to.
func (t *telemetry) startAsk(ctx context.Context, from, to string) (context.Context, trace.Span) {
	if !t.tracing() {
		return ctx, noSpan()
	}
	return t.start(ctx, "ask "+to, trace.SpanKindClient,
		attribute.String("switchboard.ask.from", from), attribute.String("switchboard.ask.to", to))
}

// askOutcome is how an ask ended, for its metric: answered, timed out (its
// deadline passed while the asker still waited), or failed.
func askOutcome(res askResult, actx, ctx context.Context) string {
	switch {
	case res.err == nil:
		return metrics.OutcomeAnswered
	case res.timedOut, actx.Err() != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded):
		return metrics.OutcomeTimeout
	}
	return metrics.OutcomeError
}

// endAsk ends an ask's span with its QUERY id and outcome.
func endAsk(span trace.Span, r askRequest, res askResult, outcome string) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("switchboard.ask.transport", res.transport), attribute.String("switchboard.ask.outcome", outcome))
	if r.id != "" {
		span.SetAttributes(attribute.String("switchboard.query_id", r.id), attribute.String("messaging.message.id", r.id))
	}
	if res.err != nil {
		span.SetStatus(codes.Error, res.err.Error())
	}
	span.End()
}

// askTransport is the transport label of an ask that went via (viaRedis
// or viaInProcess) from an agent hosted in the server.
func askTransport(via string) string {
	if via == viaRedis {
		return metrics.TransportPubSub
	}
	return metrics.TransportSimple
}

// metaTraceParent and metaTraceState are the keys of a message's metadata
// that carry the W3C trace context, under the names of the HTTP headers.
const (
	metaTraceParent = "traceparent"
	metaTraceState  = "tracestate"
)

// metaCarrier lets the W3C propagator read and write a message's metadata.
type metaCarrier map[string]any

func (c metaCarrier) Get(key string) string {
	s, _ := c[key].(string)
	return s
}

func (c metaCarrier) Set(key, value string) { c[key] = value }

func (c metaCarrier) Keys() []string { return []string{metaTraceParent, metaTraceState} }

// injectTrace puts the trace context of ctx's span into meta, so that the
// agent answering in another process makes its spans children of it; it
// does nothing when ctx has no span (tracing is off).
func injectTrace(ctx context.Context, meta map[string]any) {
	if meta == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagation.TraceContext{}.Inject(ctx, metaCarrier(meta))
}

// extractTrace returns ctx with the remote span context meta carries, if
// it carries one, as the parent of the spans started under it.
func (t *telemetry) extractTrace(ctx context.Context, meta map[string]any) context.Context {
	if t == nil || t.tracer == nil || meta[metaTraceParent] == nil {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, metaCarrier(meta))
}

// traceParent is the W3C traceparent of ctx's span, "" when there is
// none, for the run tasks of worker mode.
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	m := map[string]any{}
	propagation.TraceContext{}.Inject(ctx, metaCarrier(m))
	s, _ := m[metaTraceParent].(string)
	return s
}
