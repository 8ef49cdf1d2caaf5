package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// benchModel answers at once: a task whose prompt holds CALL statements
// gets the prompt back (so the node makes those calls), any other task
// "Done.", a question a one-line answer, a follow-up a final answer.
type benchModel struct{}

func (benchModel) Chat(_ context.Context, r llm.Request) (llm.Response, error) {
	content := "Done."
	switch last := r.Messages[len(r.Messages)-1].Content; {
	case r.Purpose == llm.PurposeFollowUp:
		content = "Final answer, using the results of my calls."
	case r.Purpose == llm.PurposeAnswer:
		content = "An answer, in one sentence."
	case strings.Contains(last, "CALL:"):
		content = last
	}
	if r.OnDelta != nil {
		r.OnDelta(content)
	}
	return llm.Response{Content: content, Model: "bench", Usage: llm.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}}, nil
}

// nopRecorder stores nothing, so that a benchmark measures the engine alone.
type nopRecorder struct{}

func (nopRecorder) RecordAsync(workflow.Event) <-chan error { return recorded() }
func (nopRecorder) Enqueue(workflow.Event)                  {}
func (nopRecorder) Flush(context.Context) error             { return nil }

// recorded is RecordAsync's answer for an event recorded without error.
func recorded() <-chan error {
	done := make(chan error, 1)
	done <- nil
	return done
}

// quietLogger drops the engine's logs in benchmarks: a benchmark's output is
// printed whether it fails or not, and writing it would be timed too.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func benchExecutor(b *testing.B, rec executor.Recorder, ps executor.PubSub) *executor.Executor {
	// As serve runs it: metrics recorded, tracing off.
	ex := executor.New(rec, benchModel{}, ps, quietLogger(), executor.Config{Telemetry: executor.Telemetry{Metrics: metrics.New()}})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ex.Shutdown(ctx)
	})
	return ex
}

func benchParse(b *testing.B, doc any) *workflow.Workflow {
	data, err := json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	w, err := workflow.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	w.ID = workflow.NewID()
	return w
}

func benchRun(b *testing.B, ex *executor.Executor, w *workflow.Workflow, mode string) {
	ctx := b.Context()
	r, err := ex.Start(w, executor.Options{Mode: mode})
	if err != nil {
		b.Fatal(err)
	}
	if status, err := r.Wait(ctx); err != nil || status != workflow.ExecSuccess {
		b.Fatalf("execution ended %q: %v", status, err)
	}
}

// chainDoc is a chain of n ai-processor nodes, each prompt rendering the
// previous node's output.
func chainDoc(n int) map[string]any {
	nodes := make([]any, 0, n)
	edges := make([]any, 0, n)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		prompt := "Step 1: begin."
		if i > 0 {
			prompt = fmt.Sprintf("Step %d: continue from {{outputs.n%d}}.", i+1, i)
			edges = append(edges, map[string]any{"from": fmt.Sprintf("n%d", i), "to": id})
		}
		nodes = append(nodes, map[string]any{"id": id, "type": "ai-processor",
			"config": map[string]any{"name": "Step", "system_prompt": "You do one step.", "prompt": prompt}})
	}
	return map[string]any{"name": "chain", "nodes": nodes, "edges": edges, "metadata": map[string]any{"max_llm_calls": n}}
}

// BenchmarkNodeDispatch runs chains of 4, 64 and 512 nodes with an instant
// model and no store: the engine's own cost per node (scheduling, events,
// templates, the model call), which should not grow with the chain.
func BenchmarkNodeDispatch(b *testing.B) {
	for _, n := range []int{4, 64, 512} {
		b.Run(fmt.Sprintf("chain-%d", n), func(b *testing.B) {
			ex := benchExecutor(b, nopRecorder{}, nil)
			w := benchParse(b, chainDoc(n))
			b.ReportAllocs()
			for b.Loop() {
				benchRun(b, ex, w, "")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/node")
		})
	}
}

// askDoc is a workflow whose asker asks the answerer n questions in a row.
func askDoc(n int) map[string]any {
	var prompt strings.Builder
	for i := range n {
		fmt.Fprintf(&prompt, "CALL: ask_node('answerer', 'Question %d: what is the next step?')\n", i+1)
	}
	return map[string]any{
		"name":     "asks",
		"metadata": map[string]any{"max_asks": n + 1, "max_asks_per_pair": n + 1, "max_llm_calls": 4 * n},
		"nodes": []any{
			map[string]any{"id": "asker", "type": "ai-processor", "config": map[string]any{
				"name": "Asker", "system_prompt": "You ask questions.", "prompt": prompt.String(), "can_communicate": true}},
			map[string]any{"id": "answerer", "type": "ai-processor", "config": map[string]any{
				"name": "Answerer", "system_prompt": "You answer questions briefly.", "can_communicate": true}},
		},
		"edges": []any{map[string]any{"from": "asker", "to": "answerer"}},
	}
}

const asksPerRun = 50

// benchAsks runs executions of 50 asks each in mode and reports the time
// per ask (the execution's own cost spread over its 50 asks).
func benchAsks(b *testing.B, ex *executor.Executor, mode string) {
	w := benchParse(b, askDoc(asksPerRun))
	benchRun(b, ex, w, mode) // warm up: subscriptions, connections
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchRun(b, ex, w, mode)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*asksPerRun), "ns/ask")
}

// BenchmarkAskSimple is ask_node in simple mode: the target answers
// in-process. With the SQLite store on, as in production, and without.
func BenchmarkAskSimple(b *testing.B) {
	b.Run("nostore", func(b *testing.B) {
		benchAsks(b, benchExecutor(b, nopRecorder{}, nil), workflow.ModeSimple)
	})
	b.Run("sqlite", func(b *testing.B) {
		benchAsks(b, benchExecutor(b, benchStore(b), nil), workflow.ModeSimple)
	})
}

func benchStore(b *testing.B) *store.DB {
	db, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkAskPubSub is ask_node in pubsub mode on miniredis and on a real
// redis-server, each next to its floor on the same server in the same run:
// raw is plain go-redis, a pre-encoded query PUBLISHed to a subscriber that
// PUBLISHes a pre-encoded reply (ns/ask of raw is one round trip).
func BenchmarkAskPubSub(b *testing.B) {
	bustest.ForEachB(b, func(b *testing.B, url string, ctl bustest.Controller) {
		b.Run("raw", func(b *testing.B) { benchRawRoundTrip(b, ctl.Addr()) })
		b.Run("engine", func(b *testing.B) {
			ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
			defer cancel()
			bb, err := bus.Connect(ctx, url, quietLogger())
			if err != nil {
				b.Fatal(err)
			}
			if err := bb.WaitHealthy(ctx); err != nil {
				b.Fatal(err)
			}
			// Cleanups run last-in first-out: the executor stops before the bus closes.
			b.Cleanup(func() { bb.Close() })
			benchAsks(b, benchExecutor(b, nopRecorder{}, bb), workflow.ModePubSub)
		})
	})
}

func benchRawRoundTrip(b *testing.B, addr string) {
	ctx := b.Context()
	q := bus.NewQuery("node-raw-asker", "node-raw-answerer", "Question 1: what is the next step?", nil, bus.Meta("raw", "wf"), 0)
	query, _ := q.MarshalJSON()
	reply, _ := bus.NewResponse(q, "node-raw-answerer", "An answer, in one sentence.").MarshalJSON()
	reqCh, repCh := bus.Channel("node-raw-answerer"), bus.Channel("node-raw-asker")
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	responder, asker := rc.Subscribe(ctx, reqCh), rc.Subscribe(ctx, repCh)
	for _, ps := range []*redis.PubSub{responder, asker} {
		if _, err := ps.Receive(ctx); err != nil { // the confirmation
			b.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := responder.ReceiveMessage(ctx); err != nil {
				return // closed
			}
			if err := rc.Publish(ctx, repCh, reply).Err(); err != nil {
				return
			}
		}
	}()
	defer func() {
		_ = responder.Close()
		<-done
		_ = asker.Close()
	}()
	b.ReportAllocs()
	for b.Loop() {
		if err := rc.Publish(ctx, reqCh, query).Err(); err != nil {
			b.Fatal(err)
		}
		if _, err := asker.ReceiveMessage(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ask")
}

// BenchmarkQAExecution is one execution of the example Q&A workflow
// (start, student asks teacher, teacher, end) with an instant model: the
// engine alone, and with the SQLite store recording everything.
func BenchmarkQAExecution(b *testing.B) { benchQA(b, false) }

// BenchmarkQAExecutionParallel is the same with 64 executions at a time,
// as the bench's exec_per_s_conc64: the store's commits are shared between
// them.
func BenchmarkQAExecutionParallel(b *testing.B) { benchQA(b, true) }

func benchQA(b *testing.B, parallel bool) {
	for _, withStore := range []bool{false, true} {
		name := "nostore"
		if withStore {
			name = "sqlite"
		}
		b.Run(name, func(b *testing.B) {
			var rec executor.Recorder = nopRecorder{}
			if withStore {
				rec = benchStore(b)
			}
			ex := benchExecutor(b, rec, nil)
			w := benchExample(b, "01_qa.json")
			b.ReportAllocs()
			if !parallel {
				for b.Loop() {
					benchRun(b, ex, w, "")
				}
				return
			}
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchRun(b, ex, w, "")
				}
			})
		})
	}
}

func benchExample(b *testing.B, name string) *workflow.Workflow {
	data, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		b.Fatal(err)
	}
	w, err := workflow.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	w.ID = workflow.NewID()
	return w
}
