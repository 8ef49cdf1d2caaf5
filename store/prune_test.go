package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

func TestPrune(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "p.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old := time.Now().Add(-48 * time.Hour)
	add := func(id, status string, created time.Time) {
		x := &workflow.Execution{ID: id, WorkflowID: "w", Status: status, CreatedAt: created}
		if err := db.Record(ctx, workflow.Event{ExecutionID: id, Kind: workflow.EventExecution, Time: created, Execution: x}); err != nil {
			t.Fatal(err)
		}
		if err := db.Record(ctx, workflow.Event{ExecutionID: id, Seq: 2, Kind: workflow.EventLog, Time: created,
			Log: &workflow.LogEntry{Time: created, Level: "info", Message: "hi"}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{"o1", "o2", "o3"} {
		add(id, workflow.ExecSuccess, old.Add(time.Duration(i)*time.Minute))
	}
	add("oldrunning", workflow.ExecRunning, old)
	add("new1", workflow.ExecError, time.Now())
	add("new2", workflow.ExecSuccess, time.Now().Add(time.Second))

	// Age: the three old ended ones go, in batches of two; the running one stays.
	n1, err := db.Prune(ctx, store.Retention{MaxAge: 24 * time.Hour}, 2)
	if err != nil || n1 != 2 {
		t.Fatalf("first batch %d %v", n1, err)
	}
	n2, _ := db.Prune(ctx, store.Retention{MaxAge: 24 * time.Hour}, 2)
	if n2 != 1 {
		t.Fatalf("second batch %d", n2)
	}
	if _, err := db.GetExecution(ctx, "o1"); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("o1 not pruned: %v", err)
	}
	if _, err := db.GetExecution(ctx, "oldrunning"); err != nil {
		t.Fatalf("a running execution was pruned: %v", err)
	}
	// Count: keep the newest 2 (oldrunning is not ended and stays anyway).
	n, _ := db.Prune(ctx, store.Retention{MaxCount: 2}, 100)
	if n != 0 {
		t.Fatalf("count prune deleted %d with only 2 ended left", n)
	}
	n, _ = db.Prune(ctx, store.Retention{MaxCount: 1}, 100)
	if n != 1 {
		t.Fatalf("keep 1: deleted %d", n)
	}
	if _, err := db.GetExecution(ctx, "new2"); err != nil {
		t.Fatalf("newest pruned: %v", err)
	}
}
