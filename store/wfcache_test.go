package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

// GetWorkflow answers from the cache after the first read, with a value
// the caller may change, and never answers with a document that an update
// or a delete has replaced, even with readers racing the writes.
func TestWorkflowCacheFollowsWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openAt(t, filepath.Join(t.TempDir(), "wf.db"))
	w := &workflow.Workflow{Name: "v0", Metadata: map[string]any{"k": "v"}, Nodes: []workflow.Node{{ID: "a", Type: "start", Config: map[string]any{}}}}
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetWorkflow(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Name, got.Metadata["k"] = "changed by the caller", "changed"
	again, err := db.GetWorkflow(ctx, w.ID)
	if err != nil || again.Name != "v0" || again.Metadata["k"] != "v" {
		t.Fatalf("second read = %+v, %v; want v0 untouched by the first caller", again, err)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.GetWorkflow(ctx, w.ID); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 200; i++ {
		u := *w
		u.Name = fmt.Sprintf("v%d", i)
		if err := db.UpdateWorkflow(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if got, err := db.GetWorkflow(ctx, w.ID); err != nil || got.Name != u.Name {
			t.Fatalf("after update %d: %v, %v", i, got.Name, err)
		}
	}
	close(stop)
	wg.Wait()
	if err := db.DeleteWorkflow(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetWorkflow(ctx, w.ID); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("after delete: %v, want not_found", err)
	}
}
