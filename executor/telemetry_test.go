package executor_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/tracing/tracetest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// tracerProvider exports the spans of one "process" (service) to recv
// over OTLP/HTTP; flush sends what it holds.
func tracerProvider(t *testing.T, recv *tracetest.Receiver, service string) (tp *sdktrace.TracerProvider, flush func()) {
	t.Helper()
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(recv.Endpoint()))
	if err != nil {
		t.Fatal(err)
	}
	tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	})
	return tp, func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatalf("flush the spans of %s: %v", service, err)
		}
	}
}

// startTracedWorker runs a worker named name, with tp as its tracer
// provider, until the test ends.
func startTracedWorker(t *testing.T, url, name string, tp trace.TracerProvider) {
	t.Helper()
	b := connectBus(t, url)
	w, err := executor.NewWorker(b.Client(), b, llm.NewDemo(), executor.WorkerConfig{Name: name, Concurrency: 4, Lease: 5 * time.Second,
		Heartbeat: time.Second, Logger: testLogger(t), Telemetry: executor.Telemetry{Tracer: tp, ModelProvider: "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker %s: %v", name, err)
		}
	})
}

// TestTracesAcrossWorkers runs the Q&A example with its two agents on two
// workers, each with a tracer provider of its own as separate processes
// have, and follows the parent links in what an OTLP receiver got: the
// request's trace → execution → node (server) → node (worker) → model
// call and tool call → ask → the answer on the other worker → its model
// call, all in one trace.
func TestTracesAcrossWorkers(t *testing.T) {
	t.Parallel()
	recv := tracetest.NewReceiver(t)
	serverTP, flushServer := tracerProvider(t, recv, "server")
	url := bustest.Start(t, bustest.Miniredis).URL()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	we := &workerEnv{rdb: rdb}
	// The server's executor, traced, in worker mode on the same bus.
	b := connectBus(t, url)
	e := newEnv(t, llm.NewDemo(), b, executor.Config{Telemetry: executor.Telemetry{Tracer: serverTP, ModelProvider: "demo"}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.exec.UseWorkers(ctx, b.Client(), executor.WorkerOptions{Lease: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	flushes := []func(){flushServer}
	for _, name := range []string{"w1", "w2"} {
		tp, flush := tracerProvider(t, recv, "worker-"+name)
		flushes = append(flushes, flush)
		startTracedWorker(t, url, name, tp)
	}
	we.waitWorkers(t, "w1", "w2")

	// The request's trace context, as a traceparent header would bring it.
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled, Remote: true})
	x := e.run(t, example(t, "04_pubsub_qa.json"), executor.Options{Trace: parent})
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
		t.Fatalf("status %s placement %s (%s): %s", x.Status, x.Placement, x.PlacementFallbackReason, x.Error)
	}
	ask := findComm(x, workflow.CommAsk, "student", "teacher")
	if ask == nil {
		t.Fatalf("no ask in %+v", x.CommunicationLog)
	}
	queryID, _ := ask.Metadata["message_id"].(string)
	asker, answerer := "worker-"+x.NodeStates["student"].Worker, "worker-"+x.NodeStates["teacher"].Worker
	if asker == answerer {
		t.Fatalf("both agents ran on %s; the test wants them in two processes", asker)
	}
	for _, f := range flushes {
		f()
	}

	traceID := parent.TraceID().String()
	in := func(service, name string) func(tracetest.Span) bool {
		return func(s tracetest.Span) bool { return s.Service == service && s.Name == name }
	}
	child := func(service, name string, of tracetest.Span) tracetest.Span {
		t.Helper()
		return recv.WaitFor(t, 10*time.Second, name+" in "+service+" under "+of.Name, func(s tracetest.Span) bool {
			return s.Service == service && s.Name == name && s.ParentSpanID == of.SpanID && s.TraceID == traceID
		})
	}
	exec := recv.WaitFor(t, 10*time.Second, "execution", func(s tracetest.Span) bool {
		return s.Service == "server" && s.Attrs["switchboard.execution.id"] == x.ID
	})
	if exec.TraceID != traceID || exec.ParentSpanID != parent.SpanID().String() {
		t.Fatalf("execution span in trace %s under %s, want trace %s under %s", exec.TraceID, exec.ParentSpanID, traceID, parent.SpanID())
	}
	node := child("server", "node student", exec)
	remote := child(asker, "node student", node)
	chat := child(asker, "chat", remote)
	if chat.Attrs["gen_ai.operation.name"] != "chat" || chat.Attrs["gen_ai.provider.name"] != "demo" ||
		chat.Attrs["gen_ai.response.model"] != "demo" || !(chat.Attrs["gen_ai.usage.input_tokens"].(int64) > 0) ||
		!(chat.Attrs["gen_ai.usage.output_tokens"].(int64) > 0) {
		t.Errorf("model call span attributes %v", chat.Attrs)
	}
	tool := child(asker, "execute_tool ask_node", remote)
	askSpan := child(asker, "ask teacher", tool)
	if askSpan.Attrs["switchboard.query_id"] != queryID || askSpan.Attrs["switchboard.ask.outcome"] != "answered" {
		t.Errorf("ask span attributes %v, want query id %s", askSpan.Attrs, queryID)
	}
	answer := child(answerer, "answer teacher", askSpan)
	if answer.Attrs["switchboard.query_id"] != queryID {
		t.Errorf("answer span attributes %v, want query id %s", answer.Attrs, queryID)
	}
	child(answerer, "chat", answer)
	// Every span of the run is in the request's trace.
	for _, s := range recv.Find(in("server", "node teacher")) {
		if s.TraceID != traceID || s.ParentSpanID != exec.SpanID {
			t.Errorf("node teacher span in trace %s under %s", s.TraceID, s.ParentSpanID)
		}
	}
}
