package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// The events of one batch that set the same row are written once, with the
// last values, and the database ends up as if each had been written in
// turn: the node keeps the position where it was first seen, the execution
// the created_at of its first header.
func TestCoalescedUpsertsKeepEveryEventsEffect(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openAt(t, filepath.Join(t.TempDir(), "c.db"))
	t0 := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Second)
	id := "exec-coalesce"
	if err := db.Record(ctx, workflow.Event{ExecutionID: id, Seq: 1, Time: t0, Kind: workflow.EventExecution,
		Execution: &workflow.Execution{ID: id, WorkflowID: "w", Status: workflow.ExecQueued, CreatedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	node := func(seq int64, nodeID, status string, out any) workflow.Event {
		return workflow.Event{ExecutionID: id, Seq: seq, Time: t1, Kind: workflow.EventNode,
			Node: &workflow.NodeState{NodeID: nodeID, Type: workflow.NodeAIProcessor, Status: status, Output: out}}
	}
	header := func(seq int64, status string, created time.Time) workflow.Event {
		return workflow.Event{ExecutionID: id, Seq: seq, Time: t1, Kind: workflow.EventExecution,
			Execution: &workflow.Execution{ID: id, WorkflowID: "w", Status: status, CreatedAt: created}}
	}
	for _, ev := range []workflow.Event{
		header(2, workflow.ExecRunning, t0),
		node(3, "b", workflow.NodeRunning, nil),
		node(4, "a", workflow.NodeRunning, nil),
		{ExecutionID: id, Seq: 5, Time: t1, Kind: workflow.EventContext, Context: &workflow.ContextUpdate{Key: "k", Value: "first"}},
		node(6, "a", workflow.NodeCompleted, "answer a"),
		{ExecutionID: id, Seq: 7, Time: t1, Kind: workflow.EventContext, Context: &workflow.ContextUpdate{Key: "k", Value: "second"}},
		node(8, "b", workflow.NodeCompleted, map[string]any{"n": 2.0}),
		header(9, workflow.ExecSuccess, time.Time{}), // zero CreatedAt: the event's time, which must not win
	} {
		db.Enqueue(ev)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	x, err := db.GetExecution(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != workflow.ExecSuccess || !x.CreatedAt.Equal(t0) {
		t.Errorf("header: status %s created_at %s, want success and %s", x.Status, x.CreatedAt, t0)
	}
	if got := x.SharedContext["k"]; got != "second" {
		t.Errorf("shared context k = %v, want second", got)
	}
	states, err := db.NodeStates(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states[0].NodeID != "b" || states[1].NodeID != "a" {
		t.Fatalf("node order %v, want b (first seen at seq 3) then a", states)
	}
	if states[1].Status != workflow.NodeCompleted || states[1].Output != "answer a" {
		t.Errorf("node a = %+v, want completed with its answer", states[1])
	}
	if m, _ := states[0].Output.(map[string]any); states[0].Status != workflow.NodeCompleted || m["n"] != 2.0 {
		t.Errorf("node b = %+v, want completed with its output", states[0])
	}
}

// A held-back row that fails on its own fails each of its events, and the
// other events of the batch are written.
func TestCoalescedUpsertFailureIsItsOwn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openAt(t, filepath.Join(t.TempDir(), "c.db"))
	t0 := time.Now().UTC()
	if err := db.Record(ctx, workflow.Event{ExecutionID: "real", Seq: 1, Time: t0, Kind: workflow.EventExecution,
		Execution: &workflow.Execution{ID: "real", WorkflowID: "w", Status: workflow.ExecRunning, CreatedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"ghost", "real", "ghost", "real"} {
		db.Enqueue(workflow.Event{ExecutionID: id, Seq: int64(i + 2), Time: t0, Kind: workflow.EventNode,
			Node: &workflow.NodeState{NodeID: "n", Status: workflow.NodeRunning}})
	}
	err := db.Flush(ctx)
	if workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("Flush = %v, want the not_found of the ghost execution's node", err)
	}
	states, err := db.NodeStates(ctx, "real")
	if err != nil || len(states) != 1 {
		t.Fatalf("node states of the real execution: %v, %v", states, err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatalf("a second Flush reports %v, want nil: the error was reported once", err)
	}
}
