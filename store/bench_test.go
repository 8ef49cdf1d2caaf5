package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// BenchmarkRecordBatch measures events per second through Enqueue and one
// Flush, with the mix an execution emits: mostly log lines and messages,
// some node updates and context sets.
func BenchmarkRecordBatch(b *testing.B) {
	ctx := b.Context()
	db := openAt(b, filepath.Join(b.TempDir(), "bench.db"))
	t0 := time.Now().UTC()
	const execs = 8
	for x := range execs {
		id := fmt.Sprintf("exec-%d", x)
		if err := db.Record(ctx, workflow.Event{ExecutionID: id, Kind: workflow.EventExecution, Execution: &workflow.Execution{
			ID: id, WorkflowID: "w", Status: workflow.ExecRunning, CreatedAt: t0}}); err != nil {
			b.Fatal(err)
		}
	}
	node := &workflow.NodeState{NodeID: "student", Type: workflow.NodeAIProcessor, Status: workflow.NodeRunning,
		StartedAt: &t0, Output: map[string]any{"answer": "Plants turn light into sugar.", "score": 0.9}}
	msg := &workflow.CommEntry{Time: t0, From: "student", To: "teacher", Type: workflow.CommAsk,
		Content: "Can you explain photosynthesis?", Metadata: map[string]any{"query_id": "q1"}}
	logLine := &workflow.LogEntry{Time: t0, Level: "info", Message: "node student called the model", NodeID: "student"}
	cu := &workflow.ContextUpdate{Key: "topic", Value: "photosynthesis"}

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := workflow.Event{ExecutionID: fmt.Sprintf("exec-%d", i%execs), Seq: int64(i), Time: t0}
		switch i % 8 {
		case 0:
			ev.Kind, ev.Node = workflow.EventNode, node
		case 1, 2:
			ev.Kind, ev.Message = workflow.EventMessage, msg
		case 3:
			ev.Kind, ev.Context = workflow.EventContext, cu
		default:
			ev.Kind, ev.Log = workflow.EventLog, logLine
		}
		db.Enqueue(ev)
	}
	if err := db.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkListExecutions100k seeds 100,000 executions of 100 workflows
// through the batch writer once, then measures page 1 (50 rows) of one
// workflow's executions.
func BenchmarkListExecutions100k(b *testing.B) {
	ctx := b.Context()
	db := openAt(b, filepath.Join(b.TempDir(), "bench.db"))
	const total, workflows = 100_000, 100
	t0 := time.Now().Add(-total * time.Second).UTC()
	start := time.Now()
	for i := range total {
		id := fmt.Sprintf("%024x", i)
		db.Enqueue(workflow.Event{ExecutionID: id, Seq: 1, Kind: workflow.EventExecution, Execution: &workflow.Execution{
			ID: id, WorkflowID: fmt.Sprintf("wf-%03d", i%workflows), WorkflowName: "bench", Status: workflow.ExecSuccess,
			CreatedAt: t0.Add(time.Duration(i) * time.Second), StartTime: &t0, EndTime: &t0,
			RequestedMode: workflow.ModeSimple, Mode: workflow.ModeSimple, Inputs: map[string]any{"topic": "x"},
			Usage: workflow.Usage{TotalTokens: 100}}})
	}
	if err := db.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	seeded := time.Since(start)
	if n, err := db.CountExecutions(ctx, ExecutionFilter{}); err != nil || n != total {
		b.Fatalf("seeded %d executions, %v", n, err)
	}
	b.Logf("seeded %d executions in %v (%.0f events/s)", total, seeded, total/seeded.Seconds())

	b.Run("page1", func(b *testing.B) {
		f := ExecutionFilter{WorkflowID: "wf-042", Limit: 50}
		b.ReportAllocs()
		for b.Loop() {
			page, err := db.ListExecutions(ctx, f)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) != 50 {
				b.Fatalf("page of %d", len(page))
			}
		}
	})
}
