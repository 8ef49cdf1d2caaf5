package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// A database from before costs were tracked (schema version 8) keeps its
// executions: their cost is null and the record says why, their nodes'
// cost is null; an execution recorded afterwards stores its cost and its
// nodes', and reads them back, in the record and in the list.
func TestCostMigrationKeepsOldRecords(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, conn := oldDB(t, path, 8)
	t0 := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC).UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO executions (id, workflow_id, status, created_at, total_tokens) VALUES ('old', 'w1', 'success', ?, 42)`, []any{t0}},
		{`INSERT INTO exec_events (execution_id, events) VALUES ('old', '[{"k":"node","s":1,"node":"a","status":"completed","model":"gpt-4o","tt":42,"calls":1}]')`, nil},
	} {
		if _, err := conn.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	conn.Close()
	raw.Close()

	db := openAt(t, path)
	old, err := db.GetExecution(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if old.Usage.TotalTokens != 42 || old.CostUSD != nil || old.CostNote != workflow.NoteBeforeCosts {
		t.Fatalf("old execution: usage %+v cost %v note %q", old.Usage, old.CostUSD, old.CostNote)
	}
	if a := old.NodeStates["a"]; a == nil || a.Usage.TotalTokens != 42 || a.CostUSD != nil {
		t.Fatalf("old node: %+v", a)
	}

	usd := func(v float64) *float64 { return &v }
	ended := time.Unix(0, t0).Add(time.Minute).UTC()
	for _, ev := range []workflow.Event{
		{ExecutionID: "new", Kind: workflow.EventExecution, Time: ended, Execution: &workflow.Execution{ID: "new", WorkflowID: "w1", Status: "running"}},
		{ExecutionID: "new", Kind: workflow.EventNode, Seq: 1, Time: ended, Node: &workflow.NodeState{NodeID: "a", Status: "completed", CostUSD: usd(0.0045)}},
		{ExecutionID: "new", Kind: workflow.EventNode, Seq: 2, Time: ended, Node: &workflow.NodeState{NodeID: "b", Status: "completed", CostUSD: usd(0), CostEstimated: true}},
		{ExecutionID: "new", Kind: workflow.EventNode, Seq: 3, Time: ended, Node: &workflow.NodeState{NodeID: "c", Status: "completed", CostNote: workflow.NoPrice("x")}},
		{ExecutionID: "new", Kind: workflow.EventExecution, Time: ended, Execution: &workflow.Execution{ID: "new", WorkflowID: "w1", Status: "success",
			CostUSD: usd(0.0045), CostEstimated: true}},
	} {
		if err := db.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	x, err := db.GetExecution(ctx, "new")
	if err != nil {
		t.Fatal(err)
	}
	if x.CostUSD == nil || *x.CostUSD != 0.0045 || !x.CostEstimated || x.CostNote != "" {
		t.Fatalf("new execution: cost %v estimated %v note %q", x.CostUSD, x.CostEstimated, x.CostNote)
	}
	a, b, c := x.NodeStates["a"], x.NodeStates["b"], x.NodeStates["c"]
	if a.CostUSD == nil || *a.CostUSD != 0.0045 || b.CostUSD == nil || *b.CostUSD != 0 || !b.CostEstimated ||
		c.CostUSD != nil || c.CostNote != `no price for model "x"; add it with --prices` {
		t.Fatalf("nodes: a %v, b %v %v, c %v %q", a.CostUSD, b.CostUSD, b.CostEstimated, c.CostUSD, c.CostNote)
	}
	list, err := db.ListExecutions(ctx, ExecutionFilter{WorkflowID: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "new" || list[0].CostUSD == nil || *list[0].CostUSD != 0.0045 || list[1].CostUSD != nil || list[1].CostNote != workflow.NoteBeforeCosts {
		t.Fatalf("list: %s", asJSON(list))
	}
	// The workflow list sums what is known and counts the ended
	// executions it leaves out; a running one is not among them.
	if err := db.Record(ctx, workflow.Event{ExecutionID: "running", Kind: workflow.EventExecution, Time: ended,
		Execution: &workflow.Execution{ID: "running", WorkflowID: "w1", Status: "running"}}); err != nil {
		t.Fatal(err)
	}
	sums, err := db.WorkflowSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := sums["w1"]; s.Count != 3 || s.CostUSD != 0.0045 || s.CostUnknown != 1 {
		t.Fatalf("summary: %+v", s)
	}
}

// An execution left running by a crash gets, when it is marked
// interrupted, the sum of its nodes' costs; null, with the reason, when a
// node's model had no price.
func TestMarkInterruptedSumsNodeCosts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	usd := func(v float64) *float64 { return &v }
	at := time.Now().UTC()
	for _, ev := range []workflow.Event{
		{ExecutionID: "x1", Kind: workflow.EventExecution, Time: at, Execution: &workflow.Execution{ID: "x1", WorkflowID: "w", Status: "running"}},
		{ExecutionID: "x1", Kind: workflow.EventNode, Seq: 1, Time: at, Node: &workflow.NodeState{NodeID: "a", Status: "completed", CostUSD: usd(0.0045)}},
		{ExecutionID: "x1", Kind: workflow.EventNode, Seq: 2, Time: at, Node: &workflow.NodeState{NodeID: "b", Status: "running", CostUSD: usd(0.00027), CostEstimated: true}},
		{ExecutionID: "x2", Kind: workflow.EventExecution, Time: at, Execution: &workflow.Execution{ID: "x2", WorkflowID: "w", Status: "running"}},
		{ExecutionID: "x2", Kind: workflow.EventNode, Seq: 1, Time: at, Node: &workflow.NodeState{NodeID: "a", Status: "completed", CostUSD: usd(0.0045)}},
		{ExecutionID: "x2", Kind: workflow.EventNode, Seq: 2, Time: at, Node: &workflow.NodeState{NodeID: "b", Status: "running", CostNote: workflow.NoPrice("my-llama")}},
	} {
		if err := db.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.MarkInterrupted(ctx, "crash"); err != nil || n != 2 {
		t.Fatalf("MarkInterrupted = %d, %v", n, err)
	}
	x1, err := db.GetExecution(ctx, "x1")
	if err != nil {
		t.Fatal(err)
	}
	if x1.CostUSD == nil || *x1.CostUSD != 0.00477 || !x1.CostEstimated || x1.CostNote != "" {
		t.Fatalf("x1: cost %v estimated %v note %q", x1.CostUSD, x1.CostEstimated, x1.CostNote)
	}
	if c := x1.NodeStates["b"]; c.Status != "cancelled" || c.CostUSD == nil || *c.CostUSD != 0.00027 {
		t.Fatalf("x1 b: %+v", c)
	}
	x2, err := db.GetExecution(ctx, "x2")
	if err != nil {
		t.Fatal(err)
	}
	if x2.CostUSD != nil || x2.CostNote != `no price for model "my-llama"; add it with --prices` {
		t.Fatalf("x2: cost %v note %q", x2.CostUSD, x2.CostNote)
	}
}
