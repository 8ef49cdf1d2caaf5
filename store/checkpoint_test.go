package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// recordExecutions commits n new executions, one commit each: about 30 KB
// of WAL frames a commit (3,000 of them write about 90 MB of frames).
func recordExecutions(t *testing.T, db *DB, n int) {
	t.Helper()
	t0 := time.Now().UTC()
	for i := range n {
		id := workflow.NewID()
		if err := db.Record(t.Context(), workflow.Event{ExecutionID: id, Seq: int64(i), Time: t0, Kind: workflow.EventExecution,
			Execution: &workflow.Execution{ID: id, WorkflowID: "w", Status: workflow.ExecSuccess, CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
	}
}

func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// The writer's own checkpoint is the backstop that bounds the WAL: with no
// passive checkpoint running beside it, thousands of commits leave a WAL of
// writerCheckpointFrames frames and one commit, not of every page they
// wrote. The checkpointer's connection is held by the test, so no passive
// pass can overlap the writer's checkpoint (which SQLite skips with BUSY
// while another one runs): the bound holds whatever the machine's load.
func TestCheckpointerKeepsTheWALSmall(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ckpt.db")
	db := openAt(t, path)
	hold, err := db.cdb.Conn(t.Context()) // SetMaxOpenConns(1): the checkpointer waits for it
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close() // before openAt's cleanup closes the store
	recordExecutions(t, db, 3000)
	const pageSize, frameHeader, walHeader = 4096, 24, 32
	limit := int64(walHeader + (writerCheckpointFrames+64)*(pageSize+frameHeader))
	if got := walSize(t, path); got > limit {
		t.Errorf("WAL file is %d bytes after 3,000 commits, over the writer's bound of %d; its checkpoint does not start the WAL over", got, limit)
	}
	if n, err := db.CountExecutions(t.Context(), ExecutionFilter{}); err != nil || n != 3000 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

// With the checkpointer running beside a busy writer, a passive pass can
// overlap the writer's checkpoint and let the WAL grow past the backstop
// for that long; how far depends on the machine's load. What holds is that
// once the burst ends and the checkpointer has caught up, the next commit
// starts the WAL over and truncates it back to walSizeLimit.
func TestWALStartsOverAfterABurst(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ckpt.db")
	db := openAt(t, path)
	recordExecutions(t, db, 3000)
	// The checkpointer's one connection is free only between its passes,
	// so this checkpoint runs after any pass in flight, with the writer idle:
	// it copies every frame.
	if err := checkpoint(t.Context(), db.cdb); err != nil {
		t.Fatal(err)
	}
	recordExecutions(t, db, 1)
	if got := walSize(t, path); got > walSizeLimit {
		t.Errorf("WAL file is %d bytes after the burst and a checkpoint, want at most %d (journal_size_limit)", got, walSizeLimit)
	}
	if n, err := db.CountExecutions(t.Context(), ExecutionFilter{}); err != nil || n != 3001 {
		t.Fatalf("count = %d, %v", n, err)
	}
}
