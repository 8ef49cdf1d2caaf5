package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

func sampleWorkflow(name string) *workflow.Workflow {
	return &workflow.Workflow{
		Name:   name,
		Status: workflow.StatusActive,
		Metadata: map[string]any{
			"communication_mode": "pubsub",
			"description":        "a tutoring session",
			"x_custom":           map[string]any{"nested": []any{1.5, "two", true, nil}},
			"owner":              "ana",
		},
		Nodes: []workflow.Node{
			{ID: "start", Type: workflow.NodeStart, Config: map[string]any{}},
			{ID: "student", Type: workflow.NodeAIProcessor, Position: map[string]any{"x": 10.0, "y": 20.5},
				Config: map[string]any{"name": "Student", "prompt": "Ask about {{topic}}", "temperature": 0.2,
					"max_tokens": 256.0, "can_communicate": true, "unknown_setting": "kept"}},
			{ID: "end", Type: workflow.NodeEnd, Config: map[string]any{}},
		},
		Edges:     []workflow.Edge{{From: "start", To: "student"}, {From: "student", To: "end"}},
		Variables: []workflow.Variable{{Name: "topic", Value: "photosynthesis", Type: "string"}, {Name: "n", Value: 3.0, Secret: true}},
	}
}

func TestWorkflowCRUD(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)

	w := sampleWorkflow("tutoring")
	before := time.Now().UTC()
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	if len(w.ID) != 24 {
		t.Fatalf("assigned id %q, want a 24-character NewID", w.ID)
	}
	if w.CreatedAt.Before(before) || !w.UpdatedAt.Equal(w.CreatedAt) || w.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt=%v UpdatedAt=%v", w.CreatedAt, w.UpdatedAt)
	}

	got, err := db.GetWorkflow(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("GetWorkflow =\n%s\nwant\n%s", asJSON(got), asJSON(w))
	}
	if got.Mode() != workflow.ModePubSub {
		t.Fatalf("Mode() = %q", got.Mode())
	}

	// A given id is kept; the same id again is a conflict.
	fixed := sampleWorkflow("fixed")
	fixed.ID = "0123456789abcdef01234567"
	if err := db.CreateWorkflow(ctx, fixed); err != nil {
		t.Fatal(err)
	}
	if fixed.ID != "0123456789abcdef01234567" {
		t.Fatalf("given id replaced by %q", fixed.ID)
	}
	dup := sampleWorkflow("dup")
	dup.ID = fixed.ID
	wantCode(t, db.CreateWorkflow(ctx, dup), workflow.CodeConflict)
	if !dup.CreatedAt.IsZero() {
		t.Fatal("a failed CreateWorkflow changed its argument")
	}

	// Update replaces the document and bumps UpdatedAt only.
	upd := *got
	upd.Name = "tutoring v2"
	upd.Metadata = map[string]any{"communication_mode": "simple", "new_key": []any{"a"}}
	upd.Nodes = upd.Nodes[:1]
	upd.CreatedAt = time.Time{} // ignored: the stored creation time is kept
	if err := db.UpdateWorkflow(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	if !upd.CreatedAt.Equal(w.CreatedAt) || !upd.UpdatedAt.After(w.UpdatedAt) {
		t.Fatalf("after update CreatedAt=%v UpdatedAt=%v, created %v", upd.CreatedAt, upd.UpdatedAt, w.CreatedAt)
	}
	got2, err := db.GetWorkflow(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got2, &upd) {
		t.Fatalf("after update GetWorkflow =\n%s\nwant\n%s", asJSON(got2), asJSON(&upd))
	}

	// List: most recently updated first; Count.
	third := sampleWorkflow("third")
	if err := db.CreateWorkflow(ctx, third); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateWorkflow(ctx, fixed); err != nil { // fixed becomes the newest
		t.Fatal(err)
	}
	list, err := db.ListWorkflows(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name)
	}
	if want := []string{"fixed", "third", "tutoring v2"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ListWorkflows names = %v, want %v", names, want)
	}
	page2, err := db.ListWorkflows(ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(page2) != 1 || page2[0].Name != "third" {
		t.Fatalf("ListWorkflows(1, 1) = %s", asJSON(page2))
	}
	if n, err := db.CountWorkflows(ctx); err != nil || n != 3 {
		t.Fatalf("CountWorkflows = %d, %v", n, err)
	}

	// Delete, then everything about it is not found.
	if err := db.DeleteWorkflow(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.GetWorkflow(ctx, w.ID)
	wantCode(t, err, workflow.CodeNotFound)
	wantCode(t, db.DeleteWorkflow(ctx, w.ID), workflow.CodeNotFound)
	wantCode(t, db.UpdateWorkflow(ctx, w), workflow.CodeNotFound)
	if n, err := db.CountWorkflows(ctx); err != nil || n != 2 {
		t.Fatalf("CountWorkflows after delete = %d, %v", n, err)
	}
	empty, err := db.ListWorkflows(ctx, 10, 5)
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("ListWorkflows past the end = %v, %v; want an empty slice", empty, err)
	}
}

func TestWorkflowNotFound(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	w, err := db.GetWorkflow(ctx, "nope")
	if w != nil {
		t.Fatalf("GetWorkflow of a missing id returned %v", w)
	}
	wantCode(t, err, workflow.CodeNotFound)
	if msg := workflow.ErrorMessage(err); msg != "workflow nope not found" {
		t.Fatalf("message = %q", msg)
	}
	wantCode(t, db.UpdateWorkflow(ctx, &workflow.Workflow{ID: "nope"}), workflow.CodeNotFound)
	wantCode(t, db.UpdateWorkflow(ctx, &workflow.Workflow{}), workflow.CodeInvalid)
	wantCode(t, db.DeleteWorkflow(ctx, "nope"), workflow.CodeNotFound)
}

func TestWorkflowUnencodable(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	w := sampleWorkflow("bad")
	w.Metadata["ch"] = make(chan int)
	wantCode(t, db.CreateWorkflow(t.Context(), w), workflow.CodeInvalid)
	if w.ID != "" {
		t.Fatal("a failed CreateWorkflow set the id")
	}
}

func TestDeleteWorkflowKeepsExecutions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	w := sampleWorkflow("doomed")
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := newRun(w.ID, "e1", time.Now())
	for _, ev := range r.fullSequence() {
		if err := db.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteWorkflow(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetExecution(ctx, "e1")
	if err != nil {
		t.Fatalf("GetExecution after deleting its workflow: %v", err)
	}
	if !reflect.DeepEqual(got, r.want) {
		t.Fatalf("GetExecution after delete =\n%s\nwant\n%s", asJSON(got), asJSON(r.want))
	}
	if n, err := db.CountExecutions(ctx, ExecutionFilter{WorkflowID: w.ID}); err != nil || n != 1 {
		t.Fatalf("CountExecutions of the deleted workflow = %d, %v", n, err)
	}
	sums, err := db.WorkflowSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := sums[w.ID]; s.Count != 1 || s.LastID != "e1" {
		t.Fatalf("summary of the deleted workflow = %+v", s)
	}
}
