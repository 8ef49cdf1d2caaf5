package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// checkCounts compares CountExecutions, which reads the counts the triggers
// keep, with counting the rows, for every filter.
func checkCounts(t *testing.T, db *DB) {
	t.Helper()
	ctx := t.Context()
	for _, f := range []ExecutionFilter{
		{}, {WorkflowID: "w1"}, {WorkflowID: "w2"}, {WorkflowID: "none"},
		{Status: workflow.ExecSuccess}, {Status: workflow.ExecRunning}, {Status: workflow.ExecInterrupted},
		{WorkflowID: "w1", Status: workflow.ExecSuccess}, {WorkflowID: "w2", Status: workflow.ExecQueued},
	} {
		got, err := db.CountExecutions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		where, args := f.where()
		var want int
		if err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM executions`+where, args...).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("CountExecutions(%+v) = %d, rows: %d", f, got, want)
		}
	}
}

func header(id, wf, status string, created time.Time) workflow.Event {
	return workflow.Event{ExecutionID: id, Seq: 1, Time: created, Kind: workflow.EventExecution,
		Execution: &workflow.Execution{ID: id, WorkflowID: wf, Status: status, CreatedAt: created}}
}

func TestCountsFollowEveryChange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	old := time.Now().Add(-48 * time.Hour).UTC()
	now := time.Now().UTC()
	// New executions, status changes (in separate batches and within one),
	// a header that changes nothing counted, a move to another workflow.
	for i, ev := range []workflow.Event{
		header("a", "w1", workflow.ExecQueued, old), header("b", "w1", workflow.ExecQueued, old),
		header("c", "w2", workflow.ExecQueued, now), header("d", "w2", workflow.ExecRunning, now),
	} {
		if err := db.Record(ctx, ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	checkCounts(t, db)
	for _, ev := range []workflow.Event{
		header("a", "w1", workflow.ExecRunning, old), header("a", "w1", workflow.ExecSuccess, old),
		header("b", "w1", workflow.ExecRunning, old), header("b", "w1", workflow.ExecRunning, old),
		header("c", "w1", workflow.ExecSuccess, now),
	} {
		db.Enqueue(ev)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db)
	// Write functions: interrupted on start-up, pruned.
	if n, err := db.MarkInterrupted(ctx, "test"); err != nil || n != 2 {
		t.Fatalf("MarkInterrupted = %d, %v; want 2", n, err)
	}
	checkCounts(t, db)
	if _, err := db.Prune(ctx, Retention{MaxAge: time.Hour}, 10); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db)
	if n, _ := db.CountExecutions(ctx, ExecutionFilter{WorkflowID: "w1"}); n != 1 {
		t.Errorf("w1 has %d executions after pruning, want 1 (c)", n)
	}
}

// A database made before the counts existed gets them from its rows.
func TestCountsMigrationCountsExistingRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, conn := oldDB(t, path, 2)
	for i, st := range []string{workflow.ExecSuccess, workflow.ExecSuccess, workflow.ExecError} {
		if _, err := conn.ExecContext(ctx, `INSERT INTO executions (id, workflow_id, status, created_at) VALUES (?, 'w1', ?, ?)`,
			string(rune('a'+i)), st, i); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	raw.Close()
	db := openAt(t, path)
	checkCounts(t, db)
	if n, _ := db.CountExecutions(ctx, ExecutionFilter{WorkflowID: "w1", Status: workflow.ExecSuccess}); n != 2 {
		t.Errorf("w1 success = %d, want 2", n)
	}
}
