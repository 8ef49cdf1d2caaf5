package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// BenchmarkGetExecution reads the whole record of one Q&A execution, as
// GET /workflows/executions/{id} and the sync execute do.
func BenchmarkGetExecution(b *testing.B) {
	ctx := b.Context()
	db := openAt(b, filepath.Join(b.TempDir(), "bench.db"))
	t0 := time.Now().UTC()
	id := workflow.NewID()
	if err := db.Record(ctx, workflow.Event{ExecutionID: id, Seq: 1, Time: t0, Kind: workflow.EventExecution,
		Execution: &workflow.Execution{ID: id, WorkflowID: "wf-bench", Status: workflow.ExecQueued, CreatedAt: t0, Inputs: map[string]any{}}}); err != nil {
		b.Fatal(err)
	}
	for _, ev := range qaEvents(id, t0) {
		db.Enqueue(ev)
	}
	if err := db.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		x, err := db.GetExecution(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if len(x.Logs) != 10 || len(x.NodeStates) != 4 || len(x.CommunicationLog) != 2 {
			b.Fatalf("record of %d logs, %d nodes, %d messages", len(x.Logs), len(x.NodeStates), len(x.CommunicationLog))
		}
	}
}

// BenchmarkGetWorkflow reads the example Q&A workflow, as every execute
// request does.
func BenchmarkGetWorkflow(b *testing.B) {
	ctx := b.Context()
	db := openAt(b, filepath.Join(b.TempDir(), "bench.db"))
	data, err := os.ReadFile(filepath.Join("..", "examples", "01_qa.json"))
	if err != nil {
		b.Fatal(err)
	}
	w, err := workflow.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.CreateWorkflow(ctx, w); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.GetWorkflow(ctx, w.ID); err != nil {
			b.Fatal(err)
		}
	}
}
