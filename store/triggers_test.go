package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

func TestTriggerIsStoredAndListed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	at := utc(time.Now().Add(-time.Minute))
	tr := &workflow.Trigger{Kind: workflow.TriggerWebhook, RemoteAddr: "192.0.2.1:5000", ScheduledAt: &at,
		Body: map[string]any{"x": "y"}, Query: map[string]any{"q": "1"}}
	h := &workflow.Execution{ID: "e", WorkflowID: "w", Status: workflow.ExecQueued, CreatedAt: utc(time.Now()), Trigger: tr}
	old := &workflow.Execution{ID: "old", WorkflowID: "w", Status: workflow.ExecQueued, CreatedAt: utc(time.Now().Add(-time.Hour))}
	for _, x := range []*workflow.Execution{h, old} {
		if err := db.Record(ctx, workflow.Event{Kind: workflow.EventExecution, Execution: x}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.GetExecution(ctx, "e")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Trigger, tr) {
		t.Errorf("trigger = %+v, want %+v", got.Trigger, tr)
	}
	list, err := db.ListExecutions(ctx, ExecutionFilter{WorkflowID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !reflect.DeepEqual(list[0].Trigger, tr) || list[1].Trigger != nil {
		t.Errorf("listed triggers = %+v, %+v", list[0].Trigger, list[1].Trigger)
	}
}

func TestWebhookTokens(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	w, err := workflow.Parse([]byte(`{"name":"w","nodes":[{"id":"start","type":"start"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := db.HookToken(ctx, w.ID); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("HookToken before any token: %v, want not_found", err)
	}
	tok, err := db.WebhookToken(ctx, w.ID)
	if err != nil || len(tok) != 64 {
		t.Fatalf("WebhookToken = %q, %v", tok, err)
	}
	if again, _ := db.WebhookToken(ctx, w.ID); again != tok {
		t.Fatalf("second WebhookToken = %q, want the first %q", again, tok)
	}
	rotated, err := db.RotateWebhookToken(ctx, w.ID)
	if err != nil || rotated == tok {
		t.Fatalf("RotateWebhookToken = %q, %v (old %q)", rotated, err, tok)
	}
	if got, _ := db.HookToken(ctx, w.ID); got != rotated {
		t.Fatalf("HookToken after rotation = %q, want %q", got, rotated)
	}
	for _, f := range []func() error{
		func() error { _, err := db.WebhookToken(ctx, "ghost"); return err },
		func() error { _, err := db.RotateWebhookToken(ctx, "ghost"); return err },
	} {
		if err := f(); workflow.ErrorCode(err) != workflow.CodeNotFound {
			t.Errorf("token of a missing workflow: %v, want not_found", err)
		}
	}

	at := utc(time.Now())
	if err := db.SetLastTick(ctx, w.ID, at); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := db.LastTick(ctx, w.ID); err != nil || !ok || !got.Equal(at) {
		t.Fatalf("LastTick = %v, %v, %v; want %v", got, ok, err, at)
	}
	if err := db.DeleteWorkflow(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.HookToken(ctx, w.ID); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Errorf("token outlived its workflow: %v", err)
	}
	if _, ok, _ := db.LastTick(ctx, w.ID); ok {
		t.Error("last tick outlived its workflow")
	}
}
