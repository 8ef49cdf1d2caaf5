package store

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

func resumeHeader(id, from, status string, at time.Time) workflow.Event {
	return workflow.Event{ExecutionID: id, Kind: workflow.EventExecution, Time: at,
		Execution: &workflow.Execution{ID: id, WorkflowID: "w", Status: status, CreatedAt: at, ResumedFrom: from}}
}

// An execution is resumed once: the header of a second resume is refused
// with a conflict that names the first, even when both arrive in one
// batch; the refusal is the resumer's alone (Flush does not report it to
// whoever flushes next), and the first resume's later headers go through.
func TestResumedOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	now := time.Now()
	if err := db.Record(ctx, resumeHeader("crashed", "", workflow.ExecInterrupted, now)); err != nil {
		t.Fatal(err)
	}
	// Submitted together, so the writer applies both in one transaction.
	first := db.RecordAsync(resumeHeader("first", "crashed", workflow.ExecQueued, now.Add(time.Second)))
	second := db.RecordAsync(resumeHeader("second", "crashed", workflow.ExecQueued, now.Add(2*time.Second)))
	if err := <-first; err != nil {
		t.Fatalf("first resume refused: %v", err)
	}
	err := <-second
	if workflow.ErrorCode(err) != workflow.CodeConflict || !strings.Contains(workflow.ErrorMessage(err), "execution crashed was already resumed by execution first") {
		t.Fatalf("second resume: %v, want a conflict naming execution first", err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatalf("Flush reports the refused resume to another caller: %v", err)
	}
	if _, err := db.GetExecution(ctx, "second"); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("the refused resume was stored: %v", err)
	}
	for _, st := range []string{workflow.ExecRunning, workflow.ExecSuccess} {
		if err := db.Record(ctx, resumeHeader("first", "crashed", st, now.Add(time.Second))); err != nil {
			t.Fatalf("first resume's %s header: %v", st, err)
		}
	}
	// A later, sequential attempt is refused the same way.
	err = db.Record(ctx, resumeHeader("third", "crashed", workflow.ExecQueued, now.Add(3*time.Second)))
	if workflow.ErrorCode(err) != workflow.CodeConflict || !strings.Contains(workflow.ErrorMessage(err), "by execution first") {
		t.Fatalf("third resume: %v", err)
	}
	// Resuming the resume is fine.
	if err := db.Record(ctx, resumeHeader("fourth", "first", workflow.ExecQueued, now.Add(4*time.Second))); err != nil {
		t.Fatal(err)
	}
}

// A database written before resumes were limited to one may hold two of
// the same execution: it migrates, and both stay readable.
func TestResumedOnceMigratesDuplicates(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, conn := oldDB(t, path, 4)
	for _, id := range []string{"a", "b"} {
		if _, err := conn.ExecContext(t.Context(), `INSERT INTO executions (id, workflow_id, status, created_at, resumed_from)
			VALUES (?, 'w', 'success', 1, 'crashed')`, id); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	raw.Close()
	db := openAt(t, path)
	for _, id := range []string{"a", "b"} {
		if x, err := db.GetExecution(t.Context(), id); err != nil || x.ResumedFrom != "crashed" {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

// ResumedBy names the execution that resumed one, the first where an older
// database holds two, and "" for one not resumed or not there; it finds
// it through the index on resumed_from.
func TestResumedBy(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	now := time.Now()
	for _, ev := range []workflow.Event{
		resumeHeader("crashed", "", workflow.ExecInterrupted, now),
		resumeHeader("failed", "", workflow.ExecError, now),
		resumeHeader("again", "crashed", workflow.ExecSuccess, now.Add(time.Second)),
	} {
		if err := db.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{"crashed": "again", "failed": "", "again": "", "nope": ""} {
		if got, err := db.ResumedBy(ctx, id); err != nil || got != want {
			t.Errorf("ResumedBy(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
	if p := queryPlan(t, db, resumedByQuery, "crashed"); !strings.Contains(p, "executions_resumed_from") {
		t.Errorf("ResumedBy does not use the index on resumed_from:\n%s", p)
	}
	db.Close()
	if _, err := db.ResumedBy(ctx, "crashed"); workflow.ErrorCode(err) != workflow.CodeUnavailable {
		t.Errorf("ResumedBy on a closed database: %v, want unavailable", err)
	}
}
