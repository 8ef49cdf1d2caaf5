package store

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// qaEvents are the events the executor records for one execution of the
// example Q&A workflow (start, student asks teacher, teacher, end) after
// the header of Start: the header going to running, a log line, each node
// running and completed with a log line each, the ask and its response,
// the last log line and the final header.
func qaEvents(id string, t0 time.Time) []workflow.Event {
	var evs []workflow.Event
	add := func(ev workflow.Event) {
		ev.ExecutionID, ev.Seq, ev.Time = id, int64(len(evs)+2), t0
		evs = append(evs, ev)
	}
	h := &workflow.Execution{ID: id, WorkflowID: "wf-bench", WorkflowName: "Q&A: a student asks a teacher", Status: workflow.ExecRunning,
		CreatedAt: t0, StartTime: &t0, RequestedMode: workflow.ModeSimple, Mode: workflow.ModeSimple, Inputs: map[string]any{}}
	add(workflow.Event{Kind: workflow.EventExecution, Execution: h})
	add(workflow.Event{Kind: workflow.EventLog, Log: &workflow.LogEntry{Level: "info", Message: "Using communication mode: simple"}})
	for _, n := range []string{"start", "student", "teacher", "end"} {
		add(workflow.Event{Kind: workflow.EventNode, Node: &workflow.NodeState{NodeID: n, Type: workflow.NodeAIProcessor, Name: n,
			Status: workflow.NodeRunning, StartedAt: &t0}})
		add(workflow.Event{Kind: workflow.EventLog, Log: &workflow.LogEntry{Level: "info", Message: "Node " + n + " (ai-processor) started", NodeID: n}})
		if n == "student" {
			add(workflow.Event{Kind: workflow.EventMessage, Message: &workflow.CommEntry{From: "student", To: "teacher", Type: workflow.CommAsk,
				Content: "Can you explain photosynthesis in two sentences?", Metadata: map[string]any{"mode": "inprocess", "transport": "inprocess", "depth": 1}}})
			add(workflow.Event{Kind: workflow.EventMessage, Message: &workflow.CommEntry{From: "teacher", To: "student", Type: workflow.CommResponse,
				Content: "Plants turn light into sugar.", Metadata: map[string]any{"mode": "inprocess", "transport": "inprocess", "depth": 1, "latency_ms": 0.012, "success": true}}})
		}
		add(workflow.Event{Kind: workflow.EventNode, Node: &workflow.NodeState{NodeID: n, Type: workflow.NodeAIProcessor, Name: n,
			Status: workflow.NodeCompleted, StartedAt: &t0, FinishedAt: &t0, Output: "Final answer, using the results of my calls.",
			Model: "bench", Calls: 2, Usage: workflow.Usage{PromptTokens: 10, CompletionTokens: 10, TotalTokens: 20}}})
		add(workflow.Event{Kind: workflow.EventLog, Log: &workflow.LogEntry{Level: "info", Message: "Node " + n + " completed in 0s", NodeID: n}})
	}
	add(workflow.Event{Kind: workflow.EventLog, Log: &workflow.LogEntry{Level: "info", Message: "Execution finished with status success in 0s"}})
	end := *h
	end.Status, end.EndTime = workflow.ExecSuccess, &t0
	add(workflow.Event{Kind: workflow.EventExecution, Execution: &end})
	return evs
}

// recordQA records one execution as the executor does: RecordAsync of the
// queued header, the run's events with Enqueue, then Flush (waits until
// they are committed).
func recordQA(ctx context.Context, db *DB, t0 time.Time) error {
	id := workflow.NewID()
	stored := db.RecordAsync(workflow.Event{ExecutionID: id, Seq: 1, Time: t0, Kind: workflow.EventExecution, Execution: &workflow.Execution{
		ID: id, WorkflowID: "wf-bench", WorkflowName: "Q&A: a student asks a teacher", Status: workflow.ExecQueued, CreatedAt: t0,
		RequestedMode: workflow.ModeSimple, Mode: workflow.ModeSimple, Inputs: map[string]any{}}})
	for _, ev := range qaEvents(id, t0) {
		db.Enqueue(ev)
	}
	if err := db.Flush(ctx); err != nil {
		return err
	}
	return <-stored
}

// BenchmarkExecutionEvents is the store's share of one Q&A execution, one
// execution after another: 24 events, the last of them waited for.
func BenchmarkExecutionEvents(b *testing.B) {
	ctx := b.Context()
	db := openAt(b, filepath.Join(b.TempDir(), "bench.db"))
	t0 := time.Now().UTC()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if err := recordQA(ctx, db, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "executions/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkExecutionEventsParallel is the same with 64 executions recorded
// at a time, so that their events share transactions.
func BenchmarkExecutionEventsParallel(b *testing.B) {
	ctx := b.Context()
	db := openAt(b, filepath.Join(b.TempDir(), "bench.db"))
	t0 := time.Now().UTC()
	var failed atomic.Value
	b.ReportAllocs()
	b.SetParallelism(32) // 64 goroutines on 2 cores
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := recordQA(ctx, db, t0); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "executions/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkEncodeQAEvents is the encoding of one Q&A execution's events
// for their chunk, done in the executor's goroutines (newEventJob).
func BenchmarkEncodeQAEvents(b *testing.B) {
	evs := qaEvents(workflow.NewID(), time.Now().UTC())
	b.ReportAllocs()
	for b.Loop() {
		for i := range evs {
			if evs[i].Kind == workflow.EventExecution {
				continue
			}
			if _, err := encodeEvent(&evs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
