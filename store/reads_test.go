package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// Many first reads at once on a fresh database: each holds a read
// transaction while its statements are not yet prepared. They must not wait
// on each other for reader connections (a deadlock once seen in the bench).
func TestConcurrentFirstReadsDoNotDeadlock(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "r.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 64 {
		id := fmt.Sprintf("x%d", i)
		x := &workflow.Execution{ID: id, WorkflowID: "w", Status: workflow.ExecSuccess, CreatedAt: time.Now()}
		db.Enqueue(workflow.Event{ExecutionID: id, Kind: workflow.EventExecution, Time: time.Now(), Execution: x})
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.GetExecution(ctx, fmt.Sprintf("x%d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
