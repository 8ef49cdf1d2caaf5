package store_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// testLogger sends the store's log lines to the test's output, shown with
// a failing test.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "p.db"), testLogger(t))
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

// A start-up after a crash marks what was running interrupted and then
// prunes: the count alone never deletes an interrupted execution that is
// not resumed yet, or resume would have nothing left to resume. Once
// resumed, or past the age limit, it goes like the others.
func TestPruneKeepsInterruptedUntilResumed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "p.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	base := time.Now().Add(-time.Hour)
	add := func(id, status, resumedFrom string, created time.Time) {
		t.Helper()
		x := &workflow.Execution{ID: id, WorkflowID: "w", Status: status, CreatedAt: created, ResumedFrom: resumedFrom}
		if err := db.Record(ctx, workflow.Event{ExecutionID: id, Kind: workflow.EventExecution, Time: created, Execution: x}); err != nil {
			t.Fatal(err)
		}
	}
	add("crashed", workflow.ExecRunning, "", base)
	add("failed", workflow.ExecError, "", base.Add(time.Second))
	for i := range 12 {
		add(fmt.Sprintf("later%02d", i), workflow.ExecSuccess, "", base.Add(time.Duration(i+2)*time.Minute))
	}
	if n, err := db.MarkInterrupted(ctx, "the server stopped while it was running"); err != nil || n != 1 {
		t.Fatalf("MarkInterrupted: %d %v", n, err)
	}
	n, err := db.Prune(ctx, store.Retention{MaxCount: 10}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 { // failed, later00, later01
		t.Errorf("pruned %d, want 3", n)
	}
	if x, err := db.GetExecution(ctx, "crashed"); err != nil || x.Status != workflow.ExecInterrupted {
		t.Fatalf("the interrupted execution was pruned by the count: %v", err)
	}
	if _, err := db.GetExecution(ctx, "failed"); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("failed was kept: %v", err)
	}

	// The age limit still applies.
	if n, err := db.Prune(ctx, store.Retention{MaxAge: 30 * time.Minute, MaxCount: 10}, 100); err != nil || n != 1 {
		t.Fatalf("age and count: pruned %d %v, want the interrupted one", n, err)
	}
	if _, err := db.GetExecution(ctx, "crashed"); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("the interrupted execution outlived the age limit: %v", err)
	}

	// Resumed, it is pruned by the count like any other.
	add("crashed2", workflow.ExecRunning, "", base.Add(30*time.Second))
	if _, err := db.MarkInterrupted(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.Prune(ctx, store.Retention{MaxCount: 10}, 100); n != 0 {
		t.Fatalf("pruned %d before the resume", n)
	}
	add("resumer", workflow.ExecSuccess, "crashed2", time.Now())
	if n, err := db.Prune(ctx, store.Retention{MaxCount: 10}, 100); err != nil || n != 2 { // crashed2 and later02
		t.Fatalf("after the resume: pruned %d %v, want 2", n, err)
	}
	if _, err := db.GetExecution(ctx, "crashed2"); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("a resumed interrupted execution was kept: %v", err)
	}
}
