package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// Passive checkpoints alone never catch up with a busy writer; the
// writer's own checkpoint bounds the WAL: thousands of commits leave a WAL
// file of a few megabytes, not of every page they wrote (3,000 commits of
// a new execution each write about 90 MB of frames).
func TestCheckpointerKeepsTheWALSmall(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ckpt.db")
	db := openAt(t, path)
	t0 := time.Now().UTC()
	for i := range 3000 {
		id := workflow.NewID()
		if err := db.Record(ctx, workflow.Event{ExecutionID: id, Seq: int64(i), Time: t0, Kind: workflow.EventExecution,
			Execution: &workflow.Execution{ID: id, WorkflowID: "w", Status: workflow.ExecSuccess, CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 24<<20 {
		t.Errorf("WAL file is %d MB after 3,000 commits; the checkpointer is not keeping up", fi.Size()>>20)
	}
	if n, err := db.CountExecutions(ctx, ExecutionFilter{}); err != nil || n != 3000 {
		t.Fatalf("count = %d, %v", n, err)
	}
}
