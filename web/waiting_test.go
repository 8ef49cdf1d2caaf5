package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// untilStatus waits for an execution event of id with status, from
// events subscribed before the change.
func untilStatus(t *testing.T, events <-chan workflow.Event, id, status string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the event stream ended before %s was %s", id, status)
			}
			if ev.ExecutionID == id && ev.Kind == workflow.EventExecution && ev.Execution.Status == status {
				return
			}
		case <-deadline:
			t.Fatalf("execution %s did not become %s", id, status)
		}
	}
}

// untilEnded waits until execution id has ended and its record is stored.
func (s *testServer) untilEnded(t *testing.T, events <-chan workflow.Event, id string) *workflow.Execution {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.ExecutionID == id && ev.Kind == workflow.EventExecution && workflow.Terminal(ev.Execution.Status) {
				if err := s.db.Flush(t.Context()); err != nil {
					t.Fatal(err)
				}
				x, err := s.db.GetExecution(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
		case <-deadline:
			t.Fatalf("execution %s did not end", id)
		}
	}
}

// A human node through the API: a synchronous execute answers with the
// waiting record, bad inputs are refused naming their field, an answer
// finishes the execution, and a second one conflicts.
func TestAPIHumanInput(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	code, body, _ := s.do(t, "POST", "/workflows/", `{"name":"h","nodes":[
		{"id":"ok","type":"human","config":{"question":"Ship?","input":"choice","choices":["yes","no"]}}]}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	wid := decode[map[string]any](t, body)["id"].(string)
	events, stop := s.exec.SubscribeAll()
	defer stop()
	code, body, _ = s.do(t, "POST", "/workflows/"+wid+"/execute", `{}`)
	x := decode[workflow.Execution](t, body)
	if code != 200 || x.Status != workflow.ExecWaiting || len(x.Waiting) != 1 || x.Waiting[0].NodeID != "ok" || x.Waiting[0].Question != "Ship?" {
		t.Fatalf("sync execute: %d %s", code, body)
	}
	p := "/workflows/executions/" + x.ID
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantBody         string
	}{
		{"get shows the wait", p, "", 200, `"waiting":[{"reason":"human","node_id":"ok","question":"Ship?","input":"choice","choices":["yes","no"]`},
		{"list by status", "/workflows/" + wid + "/executions?status=waiting", "", 200, x.ID},
		{"not json", p + "/input", `{"node_id":`, 400, `"code":"malformed"`},
		{"not an object", p + "/input", `["ok"]`, 422, `must be a JSON object`},
		{"unknown field", p + "/input", `{"node":"ok","answer":"yes"}`, 422, `"path":"node"`},
		{"missing answer", p + "/input", `{"node_id":"ok"}`, 422, `"path":"answer"`},
		{"answer not a string", p + "/input", `{"node_id":"ok","answer":3}`, 422, `"path":"answer"`},
		{"wrong node", p + "/input", `{"node_id":"nope","answer":"yes"}`, 422, `"path":"node_id"`},
		{"bad choice", p + "/input", `{"node_id":"ok","answer":"maybe"}`, 422, `"path":"answer","message":"must be one of`},
		{"unknown execution", "/workflows/executions/nope/input", `{"node_id":"ok","answer":"yes"}`, 404, "not_found"},
		{"approve an answer", p + "/approve", `{"extra_tokens":100}`, 409, "waits for an answer"},
		{"approve nothing", p + "/approve", `{}`, 422, `"path":"extra_tokens"`},
		{"approve negative", p + "/approve", `{"extra_tokens":-1}`, 422, `"path":"extra_tokens"`},
		{"approve a fraction", p + "/approve", `{"extra_tokens":1.5}`, 422, `"path":"extra_tokens"`},
		{"approve text", p + "/approve", `{"extra_usd":"1"}`, 422, `"path":"extra_usd"`},
		{"approve unknown", p + "/approve", `{"extra_money":1}`, 422, `"path":"extra_money"`},
		{"answer", p + "/input", `{"node_id":"ok","answer":"yes"}`, 202, `"detail":"answer taken"`},
	}
	for _, tt := range tests {
		method := "POST"
		if tt.body == "" {
			method = "GET"
		}
		code, body, _ := s.do(t, method, tt.path, tt.body)
		if code != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
			t.Fatalf("%s: %s %s: %d %s; want %d containing %s", tt.name, method, tt.path, code, body, tt.wantStatus, tt.wantBody)
		}
	}
	end := s.untilEnded(t, events, x.ID)
	if end.Status != workflow.ExecSuccess || end.NodeStates["ok"].Output != "yes" || end.Waiting != nil {
		t.Fatalf("after the answer: %s %v %v", end.Status, end.NodeStates["ok"].Output, end.Waiting)
	}
	for _, path := range []string{p + "/input", p + "/stop", p + "/approve"} {
		body := `{"node_id":"ok","answer":"no"}`
		if strings.HasSuffix(path, "approve") {
			body = `{"extra_tokens":5}`
		}
		if code, b, _ := s.do(t, "POST", path, body); code != 409 || !strings.Contains(string(b), "is success, not waiting") {
			t.Fatalf("%s after the end: %d %s, want 409", path, code, b)
		}
	}
}

// Budget pauses through the API: approve continues (a too small one is
// refused naming extra_tokens), stop ends cancelled.
func TestAPIBudgetApproveAndStop(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	code, body, _ := s.do(t, "POST", "/workflows/", `{"name":"b","metadata":{"token_budget":1,"on_budget":"pause"},"nodes":[
		{"id":"a","type":"ai-processor","config":{"prompt":"Say something long enough"}}]}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	wid := decode[map[string]any](t, body)["id"].(string)
	events, stop := s.exec.SubscribeAll()
	defer stop()

	start := func() string {
		code, body, _ := s.do(t, "POST", "/workflows/"+wid+"/execute", `{"async_execution":true}`)
		if code != 202 {
			t.Fatalf("execute: %d %s", code, body)
		}
		id := decode[map[string]any](t, body)["execution_id"].(string)
		untilStatus(t, events, id, workflow.ExecWaiting)
		return id
	}

	id := start()
	p := "/workflows/executions/" + id
	_, body, _ = s.do(t, "GET", p, "")
	x := decode[workflow.Execution](t, body)
	if x.Status != workflow.ExecWaiting || len(x.Waiting) != 1 || x.Waiting[0].Reason != workflow.WaitBudget || x.Waiting[0].TokenBudget != 1 {
		t.Fatalf("paused record: %s", body)
	}
	if code, b, _ := s.do(t, "POST", p+"/input", `{"node_id":"a","answer":"x"}`); code != 409 {
		t.Fatalf("input to a budget wait: %d %s, want 409", code, b)
	}
	if code, b, _ := s.do(t, "POST", p+"/approve", `{"extra_tokens":0}`); code != 422 || !strings.Contains(string(b), `"path":"extra_tokens"`) {
		t.Fatalf("zero approval: %d %s", code, b)
	}
	if code, b, _ := s.do(t, "POST", p+"/approve", `{"extra_tokens":1,"extra_usd":0.5}`); code != 422 || !strings.Contains(string(b), `"path":"extra_tokens","message":"must be at least`) {
		t.Fatalf("too small an approval: %d %s", code, b)
	}
	if code, b, _ := s.do(t, "POST", p+"/approve", `{"extra_tokens":100000}`); code != 202 {
		t.Fatalf("approve: %d %s", code, b)
	}
	if x := s.untilEnded(t, events, id); x.Status != workflow.ExecSuccess || x.NodeStates["a"].Output == nil {
		t.Fatalf("approved run: %s %q", x.Status, x.Error)
	}

	id = start()
	p = "/workflows/executions/" + id
	if code, b, _ := s.do(t, "POST", p+"/stop", ``); code != 202 {
		t.Fatalf("stop: %d %s", code, b)
	}
	if x := s.untilEnded(t, events, id); x.Status != workflow.ExecCancelled || !strings.Contains(x.Error, "stopped by request while it waited for a budget approval") {
		t.Fatalf("stopped run: %s %q", x.Status, x.Error)
	}
	if code, b, _ := s.do(t, "POST", p+"/stop", ``); code != 409 {
		t.Fatalf("second stop: %d %s, want 409", code, b)
	}
}
