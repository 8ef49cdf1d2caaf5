package store

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// run builds the event sequence of one realistic execution, and the
// record GetExecution must return after storing it.
type run struct {
	id, workflowID string
	t0             time.Time
	seq            int64
	want           *workflow.Execution
}

func newRun(workflowID, id string, t0 time.Time) *run {
	return &run{id: id, workflowID: workflowID, t0: utc(t0)}
}

func (r *run) at(ms int) time.Time { return r.t0.Add(time.Duration(ms) * time.Millisecond) }

func (r *run) ev(kind workflow.EventKind, ms int) workflow.Event {
	r.seq++
	return workflow.Event{ExecutionID: r.id, Seq: r.seq, Time: r.at(ms), Kind: kind}
}

func (r *run) header(h *workflow.Execution, ms int) workflow.Event {
	e := r.ev(workflow.EventExecution, ms)
	e.Execution = h.Header()
	return e
}

func (r *run) node(n workflow.NodeState, ms int) workflow.Event {
	e := r.ev(workflow.EventNode, ms)
	e.Node = &n
	return e
}

// fullSequence is what an executor emits for start → teacher ⇄ student →
// end in pubsub mode, including a delta (not stored), context updates (one
// key set twice), asks and answers, a node error and the final header.
func (r *run) fullSequence() []workflow.Event {
	h := &workflow.Execution{
		ID: r.id, WorkflowID: r.workflowID, WorkflowName: "tutoring", Status: workflow.ExecQueued,
		CreatedAt: r.t0, RequestedMode: workflow.ModePubSub, Mode: workflow.ModePubSub,
		Inputs: map[string]any{"topic": "photosynthesis", "level": 2.0, "tags": []any{"bio"}},
	}
	var evs []workflow.Event
	add := func(e workflow.Event) { evs = append(evs, e) }

	add(r.header(h, 0))
	h.Status, h.StartTime = workflow.ExecRunning, utcp(r.at(1))
	add(r.header(h, 1))

	start := workflow.NodeState{NodeID: "start", Type: workflow.NodeStart, Status: workflow.NodePending}
	student := workflow.NodeState{NodeID: "student", Type: workflow.NodeAIProcessor, Name: "Student", Status: workflow.NodePending}
	teacher := workflow.NodeState{NodeID: "teacher", Type: workflow.NodeAIProcessor, Name: "Teacher", Status: workflow.NodePending}
	end := workflow.NodeState{NodeID: "end", Type: workflow.NodeEnd, Status: workflow.NodePending}
	for _, n := range []workflow.NodeState{start, student, teacher, end} {
		add(r.node(n, 2))
	}
	start.Status, start.StartedAt, start.FinishedAt = workflow.NodeCompleted, utcp(r.at(3)), utcp(r.at(3))
	start.Output = map[string]any{"topic": "photosynthesis", "level": 2.0}
	add(r.node(start, 3))

	l := r.ev(workflow.EventLog, 4)
	l.Log = &workflow.LogEntry{Time: r.at(4), Level: "info", Message: "node student started", NodeID: "student"}
	add(l)
	student.Status, student.StartedAt, student.Model = workflow.NodeRunning, utcp(r.at(4)), "demo"
	add(r.node(student, 4))
	d := r.ev(workflow.EventDelta, 5)
	d.Delta = &workflow.Delta{NodeID: "student", Text: "CALL: ask_"}
	add(d)

	m := r.ev(workflow.EventMessage, 6)
	m.Message = &workflow.CommEntry{Time: r.at(6), From: "student", To: "teacher", Type: workflow.CommAsk,
		Content: "Can you explain photosynthesis?", Metadata: map[string]any{"query_id": "query:student:teacher:1", "depth": 1.0}}
	add(m)
	teacher.Status, teacher.StartedAt = workflow.NodeRunning, utcp(r.at(6))
	add(r.node(teacher, 6))
	c1 := r.ev(workflow.EventContext, 7)
	c1.Context = &workflow.ContextUpdate{Key: "topic", Value: "photo"}
	add(c1)
	c2 := r.ev(workflow.EventContext, 7)
	c2.Context = &workflow.ContextUpdate{Key: "facts", Value: map[string]any{"inputs": []any{"light", "water"}, "ok": true}}
	add(c2)
	m2 := r.ev(workflow.EventMessage, 8)
	m2.Message = &workflow.CommEntry{Time: r.at(8), From: "teacher", To: "student", Type: workflow.CommResponse,
		Content: "Plants turn light into sugar.", Metadata: map[string]any{}}
	add(m2)
	c3 := r.ev(workflow.EventContext, 9)
	c3.Context = &workflow.ContextUpdate{Key: "topic", Value: "photosynthesis"} // overwrites
	add(c3)
	m3 := r.ev(workflow.EventMessage, 9)
	m3.Message = &workflow.CommEntry{Time: r.at(9), From: "student", To: "*", Type: workflow.CommBroadcast, Content: "done"}
	add(m3)
	nul := r.ev(workflow.EventContext, 9)
	nul.Context = &workflow.ContextUpdate{Key: "empty", Value: nil}
	add(nul)

	teacher.Status, teacher.FinishedAt, teacher.Error = workflow.NodeError, utcp(r.at(10)), "model refused"
	add(r.node(teacher, 10))
	e1 := r.ev(workflow.EventError, 10)
	e1.Error = &workflow.ErrorEntry{Time: r.at(10), NodeID: "teacher", Code: "llm_error", Message: "model refused"}
	add(e1)
	student.Status, student.FinishedAt, student.Calls = workflow.NodeCompleted, utcp(r.at(11)), 2
	student.Output = "Photosynthesis turns light into sugar." // a string output stays a string
	student.Usage = workflow.Usage{PromptTokens: 120, CompletionTokens: 30, TotalTokens: 150}
	add(r.node(student, 11))
	l2 := r.ev(workflow.EventLog, 12)
	l2.Log = &workflow.LogEntry{Level: "warn", Message: "no time: the event's is used"}
	add(l2)
	end.Status = workflow.NodeSkipped
	add(r.node(end, 12))

	h.Status, h.EndTime, h.Error = workflow.ExecError, utcp(r.at(13)), "node teacher failed"
	h.Usage = workflow.Usage{PromptTokens: 120, CompletionTokens: 30, TotalTokens: 150}
	add(r.header(h, 13))

	r.want = h.Header()
	r.want.NodeStates = map[string]*workflow.NodeState{"start": &start, "student": &student, "teacher": &teacher, "end": &end}
	r.want.Logs = []workflow.LogEntry{*l.Log, {Time: r.at(12), Level: "warn", Message: "no time: the event's is used"}}
	r.want.Errors = []workflow.ErrorEntry{*e1.Error}
	r.want.CommunicationLog = []workflow.CommEntry{*m.Message, *m2.Message, *m3.Message}
	r.want.SharedContext = map[string]any{"topic": "photosynthesis",
		"facts": map[string]any{"inputs": []any{"light", "water"}, "ok": true}, "empty": nil}
	return evs
}

func checkExecution(t *testing.T, db *DB, want *workflow.Execution) {
	t.Helper()
	got, err := db.GetExecution(t.Context(), want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetExecution(%s) =\n%s\nwant\n%s", want.ID, asJSON(got), asJSON(want))
	}
}

func TestRecordFullExecution(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	r := newRun("wf1", "exec1", time.Now())
	for _, ev := range r.fullSequence() {
		if err := db.Record(ctx, ev); err != nil {
			t.Fatalf("Record %s seq %d: %v", ev.Kind, ev.Seq, err)
		}
	}
	checkExecution(t, db, r.want)

	got, _ := db.GetExecution(ctx, "exec1")
	if s, ok := got.NodeStates["student"].Output.(string); !ok || s != "Photosynthesis turns light into sugar." {
		t.Fatalf("string output read back as %T %v", got.NodeStates["student"].Output, got.NodeStates["student"].Output)
	}
	if _, ok := got.NodeStates["start"].Output.(map[string]any); !ok {
		t.Fatalf("object output read back as %T", got.NodeStates["start"].Output)
	}

	// The order nodes were first seen survives later updates in another order.
	states, err := db.NodeStates(ctx, "exec1")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, s := range states {
		order = append(order, s.NodeID)
	}
	if want := []string{"start", "student", "teacher", "end"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("node order = %v, want %v", order, want)
	}
	_, err = db.NodeStates(ctx, "nope")
	wantCode(t, err, workflow.CodeNotFound)
}

func TestEnqueueFlushSameRecord(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	r := newRun("wf1", "exec1", time.Now())
	for _, ev := range r.fullSequence() {
		db.Enqueue(ev)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	checkExecution(t, db, r.want)
}

func TestCloseFlushesPendingWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := t.TempDir() + "/sb.db"
	db, err := Open(ctx, path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r := newRun("wf1", "exec1", time.Now())
	evs := r.fullSequence()
	for _, ev := range evs {
		db.Enqueue(ev)
	}
	for i := range 2000 {
		db.Enqueue(workflow.Event{ExecutionID: "exec1", Seq: int64(1000 + i), Kind: workflow.EventLog,
			Log: &workflow.LogEntry{Time: r.at(20), Level: "debug", Message: fmt.Sprint("line ", i)}})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path)
	got, err := db.GetExecution(ctx, "exec1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Logs) != len(r.want.Logs)+2000 || got.Logs[len(got.Logs)-1].Message != "line 1999" {
		t.Fatalf("after Close and reopen: %d logs, last %q", len(got.Logs), got.Logs[len(got.Logs)-1].Message)
	}
}

func TestGetExecutionNotFound(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	e, err := db.GetExecution(t.Context(), "missing")
	if e != nil {
		t.Fatal("GetExecution of a missing id returned a value")
	}
	wantCode(t, err, workflow.CodeNotFound)
}

func TestEmptyExecution(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	h := &workflow.Execution{ID: "e", WorkflowID: "w", Status: workflow.ExecQueued, CreatedAt: utc(time.Now())}
	// ExecutionID may be left to the header's id.
	if err := db.Record(ctx, workflow.Event{Kind: workflow.EventExecution, Execution: h}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetExecution(ctx, "e")
	if err != nil {
		t.Fatal(err)
	}
	want := *h
	want.NodeStates = map[string]*workflow.NodeState{}
	want.Logs, want.Errors, want.CommunicationLog = []workflow.LogEntry{}, []workflow.ErrorEntry{}, []workflow.CommEntry{}
	want.SharedContext = map[string]any{}
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("GetExecution =\n%s\nwant\n%s", asJSON(got), asJSON(&want))
	}
	if j := asJSON(got); !strings.Contains(j, `"logs": []`) || !strings.Contains(j, `"node_states": {}`) {
		t.Fatalf("empty collections do not encode as [] and {}:\n%s", j)
	}
}

func TestConcurrentRecord(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	const goroutines, lines = 50, 20
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*(lines+1))
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("exec-%02d", g)
			h := &workflow.Execution{ID: id, WorkflowID: fmt.Sprintf("wf-%d", g%5), Status: workflow.ExecRunning,
				CreatedAt: t0.Add(time.Duration(g) * time.Millisecond)}
			if err := db.Record(ctx, workflow.Event{ExecutionID: id, Seq: 1, Kind: workflow.EventExecution, Execution: h}); err != nil {
				errs <- err
				return
			}
			for i := range lines {
				err := db.Record(ctx, workflow.Event{ExecutionID: id, Seq: int64(i + 2), Time: t0, Kind: workflow.EventLog,
					Log: &workflow.LogEntry{Level: "info", Message: fmt.Sprintf("%s line %d", id, i)}})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, err := db.CountExecutions(ctx, ExecutionFilter{}); err != nil || n != goroutines {
		t.Fatalf("CountExecutions = %d, %v; want %d", n, err, goroutines)
	}
	for g := range goroutines {
		id := fmt.Sprintf("exec-%02d", g)
		e, err := db.GetExecution(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Logs) != lines {
			t.Fatalf("%s has %d logs, want %d", id, len(e.Logs), lines)
		}
		for i, l := range e.Logs {
			if want := fmt.Sprintf("%s line %d", id, i); l.Message != want {
				t.Fatalf("%s log %d = %q, want %q", id, i, l.Message, want)
			}
		}
	}
}

func TestWriteErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	h := &workflow.Execution{ID: "good", WorkflowID: "w", Status: workflow.ExecRunning, CreatedAt: utc(time.Now())}
	good := workflow.Event{ExecutionID: "good", Seq: 1, Kind: workflow.EventExecution, Execution: h}
	log := func(exec string, seq int64) workflow.Event {
		return workflow.Event{ExecutionID: exec, Seq: seq, Time: h.CreatedAt, Kind: workflow.EventLog,
			Log: &workflow.LogEntry{Level: "info", Message: fmt.Sprint(exec, " ", seq)}}
	}

	for _, tc := range []struct {
		name string
		ev   workflow.Event
		code workflow.Code
	}{
		{"unknown kind", workflow.Event{ExecutionID: "good", Kind: "telepathy"}, workflow.CodeInvalid},
		{"no execution id", workflow.Event{Kind: workflow.EventLog, Log: &workflow.LogEntry{}}, workflow.CodeInvalid},
		{"no payload", workflow.Event{ExecutionID: "good", Kind: workflow.EventNode}, workflow.CodeInvalid},
		{"no node id", workflow.Event{ExecutionID: "good", Kind: workflow.EventNode, Node: &workflow.NodeState{}}, workflow.CodeInvalid},
		{"header of another execution", workflow.Event{ExecutionID: "good", Kind: workflow.EventExecution,
			Execution: &workflow.Execution{ID: "other", Status: "running", CreatedAt: h.CreatedAt}}, workflow.CodeInvalid},
		{"unencodable output", workflow.Event{ExecutionID: "good", Kind: workflow.EventNode,
			Node: &workflow.NodeState{NodeID: "n", Output: make(chan int)}}, workflow.CodeInvalid},
		{"unencodable context", workflow.Event{ExecutionID: "good", Kind: workflow.EventContext,
			Context: &workflow.ContextUpdate{Key: "k", Value: func() {}}}, workflow.CodeInvalid},
		{"execution never recorded", log("ghost", 1), workflow.CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := db.Record(ctx, good); err != nil {
				t.Fatal(err)
			}
			wantCode(t, db.Record(ctx, tc.ev), tc.code)
			// Flush reports every write error since the last Flush once,
			// even one a Record caller already got.
			wantCode(t, db.Flush(ctx), tc.code)
			if err := db.Flush(ctx); err != nil {
				t.Fatalf("second Flush = %v", err)
			}
		})
	}

	// A bad event fails alone: the good events of its batch are committed.
	// Enqueue puts them in the queue back to back, so they share batches.
	var want []string
	for i := range 200 {
		if i == 100 {
			db.Enqueue(log("ghost", int64(i)))
			continue
		}
		db.Enqueue(log("good", int64(i)))
		want = append(want, fmt.Sprint("good ", i))
	}
	wantCode(t, db.Flush(ctx), workflow.CodeNotFound)
	e, err := db.GetExecution(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range e.Logs {
		got = append(got, l.Message)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("logs of the good execution: %d, want %d (first %v)", len(got), len(want), got[:min(3, len(got))])
	}
	if err := db.Record(ctx, log("good", 500)); err != nil {
		t.Fatalf("Record after a failed batch: %v", err)
	}
	// Deltas are not stored and never fail.
	if err := db.Record(ctx, workflow.Event{Kind: workflow.EventDelta}); err != nil {
		t.Fatal(err)
	}
}

func TestMarkInterrupted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	t0 := utc(time.Now().Add(-time.Hour))
	header := func(id, status string) workflow.Event {
		return workflow.Event{ExecutionID: id, Seq: 1, Time: t0, Kind: workflow.EventExecution,
			Execution: &workflow.Execution{ID: id, WorkflowID: "w", Status: status, CreatedAt: t0, StartTime: &t0}}
	}
	node := func(exec, id, status string, seq int64) workflow.Event {
		return workflow.Event{ExecutionID: exec, Seq: seq, Time: t0, Kind: workflow.EventNode,
			Node: &workflow.NodeState{NodeID: id, Status: status, StartedAt: &t0}}
	}
	used := func(ev workflow.Event, u workflow.Usage) workflow.Event {
		ev.Node.Usage = u
		return ev
	}
	for _, ev := range []workflow.Event{
		header("running", workflow.ExecRunning),
		used(node("running", "a", workflow.NodeRunning, 2), workflow.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}),
		used(node("running", "a", workflow.NodeCompleted, 2), workflow.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}),
		used(node("running", "b", workflow.NodeRunning, 3), workflow.Usage{PromptTokens: 7, CompletionTokens: 0, TotalTokens: 7}),
		node("running", "c", workflow.NodePending, 4),
		{ExecutionID: "running", Seq: 7, Time: t0, Kind: workflow.EventLog, Log: &workflow.LogEntry{Message: "before"}},
		header("queued", workflow.ExecQueued),
		header("done", workflow.ExecSuccess),
		node("done", "a", workflow.NodeCompleted, 2),
	} {
		db.Enqueue(ev)
	}
	// MarkInterrupted is queued behind the events: no Flush needed.
	before := time.Now()
	n, err := db.MarkInterrupted(ctx, "switchboard stopped before the execution finished")
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("MarkInterrupted = %d, want 2", n)
	}

	e, err := db.GetExecution(ctx, "running")
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != workflow.ExecInterrupted || e.Error != "switchboard stopped before the execution finished" ||
		e.EndTime == nil || e.EndTime.Before(before.Add(-time.Second)) {
		t.Fatalf("interrupted header = %s", asJSON(e.Header()))
	}
	// The header's total comes only at the end of a run; interrupted, it is
	// the sum of what the nodes recorded (a's last state, and b's).
	if want := (workflow.Usage{PromptTokens: 17, CompletionTokens: 5, TotalTokens: 22}); e.Usage != want {
		t.Errorf("usage = %+v, want %+v", e.Usage, want)
	}
	if l, err := db.ListExecutions(ctx, ExecutionFilter{Status: workflow.ExecInterrupted}); err != nil || len(l) != 2 {
		t.Fatalf("list: %v %v", l, err)
	} else if u := l[0].Usage.TotalTokens + l[1].Usage.TotalTokens; u != 22 {
		t.Errorf("listed usage = %d, want 22", u)
	}
	for id, want := range map[string]string{"a": workflow.NodeCompleted, "b": workflow.NodeCancelled, "c": workflow.NodeCancelled} {
		if got := e.NodeStates[id].Status; got != want {
			t.Errorf("node %s status = %s, want %s", id, got, want)
		}
	}
	if e.NodeStates["b"].FinishedAt == nil || e.NodeStates["c"].FinishedAt != nil {
		t.Errorf("finished_at: running node %v, pending node %v", e.NodeStates["b"].FinishedAt, e.NodeStates["c"].FinishedAt)
	}
	if len(e.Errors) != 1 || e.Errors[0].Code != "interrupted" {
		t.Fatalf("errors = %s", asJSON(e.Errors))
	}
	if len(e.Logs) != 2 || e.Logs[0].Message != "before" || !strings.Contains(e.Logs[1].Message, "interrupted") {
		t.Fatalf("logs = %s", asJSON(e.Logs))
	}

	q, err := db.GetExecution(ctx, "queued")
	if err != nil {
		t.Fatal(err)
	}
	if q.Status != workflow.ExecInterrupted {
		t.Fatalf("queued execution status = %s", q.Status)
	}
	d, err := db.GetExecution(ctx, "done")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != workflow.ExecSuccess || d.EndTime != nil || len(d.Errors) != 0 || len(d.Logs) != 0 {
		t.Fatalf("finished execution changed: %s", asJSON(d))
	}

	if n, err := db.MarkInterrupted(ctx, "again"); err != nil || n != 0 {
		t.Fatalf("second MarkInterrupted = %d, %v; want 0", n, err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestListExecutions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	t0 := utc(time.Now().Add(-time.Hour))
	statuses := []string{workflow.ExecSuccess, workflow.ExecError, workflow.ExecRunning}
	type row struct{ id, wf, status string }
	var all []row // newest first, as listed
	for i := range 30 {
		// Pairs of executions share a created_at, so ties are broken by id.
		created := t0.Add(time.Duration(i/2) * time.Second)
		r := row{fmt.Sprintf("e%02d", i), fmt.Sprintf("w%d", i%3), statuses[i%len(statuses)]}
		db.Enqueue(workflow.Event{ExecutionID: r.id, Seq: 1, Kind: workflow.EventExecution, Execution: &workflow.Execution{
			ID: r.id, WorkflowID: r.wf, WorkflowName: "name " + r.wf, Status: r.status, CreatedAt: created,
			Inputs: map[string]any{"i": float64(i)}, Usage: workflow.Usage{TotalTokens: i}}})
		db.Enqueue(workflow.Event{ExecutionID: r.id, Seq: 2, Kind: workflow.EventLog, Log: &workflow.LogEntry{Time: created, Message: "x"}})
		all = append([]row{r}, all...)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	for _, f := range []ExecutionFilter{
		{},
		{WorkflowID: "w1"},
		{Status: workflow.ExecError},
		{WorkflowID: "w2", Status: workflow.ExecRunning},
		{WorkflowID: "w2", Status: workflow.ExecSuccess}, // none: i%3==2 and i%3==0 never meet
		{WorkflowID: "nope"},
	} {
		t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
			var want []string
			for _, r := range all {
				if (f.WorkflowID == "" || r.wf == f.WorkflowID) && (f.Status == "" || r.status == f.Status) {
					want = append(want, r.id)
				}
			}
			n, err := db.CountExecutions(ctx, f)
			if err != nil || n != len(want) {
				t.Fatalf("CountExecutions = %d, %v; want %d", n, err, len(want))
			}
			// Page through with a page size that does not divide the total.
			var got []string
			for off := 0; ; off += 4 {
				f.Limit, f.Offset = 4, off
				page, err := db.ListExecutions(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if page == nil {
					t.Fatal("ListExecutions returned a nil slice")
				}
				for _, e := range page {
					got = append(got, e.ID)
					if e.NodeStates != nil || e.Logs != nil || e.Errors != nil || e.CommunicationLog != nil || e.SharedContext != nil {
						t.Fatalf("%s: a listed header carries collections", e.ID)
					}
					var i int
					fmt.Sscanf(e.ID, "e%d", &i)
					if e.Usage.TotalTokens != i || e.Inputs["i"] != float64(i) || e.WorkflowName != "name "+e.WorkflowID {
						t.Fatalf("%s: header = %s", e.ID, asJSON(e))
					}
				}
				if len(page) < 4 {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("paged ids = %v\nwant %v", got, want)
			}
			f.Limit, f.Offset = 0, 0 // no limit
			unpaged, err := db.ListExecutions(ctx, f)
			if err != nil || len(unpaged) != len(want) {
				t.Fatalf("unlimited ListExecutions = %d, %v; want %d", len(unpaged), err, len(want))
			}
		})
	}

	sums, err := db.WorkflowSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 {
		t.Fatalf("summaries for %d workflows, want 3", len(sums))
	}
	for _, wf := range []string{"w0", "w1", "w2"} {
		var last row
		for _, r := range all {
			if r.wf == wf {
				last = r
				break
			}
		}
		s := sums[wf]
		if s.Count != 10 || s.LastID != last.id || s.LastStatus != last.status || s.LastAt.IsZero() {
			t.Errorf("summary %s = %+v, want count 10, last %+v", wf, s, last)
		}
	}
}

// TestListExecutionsUsesIndexes guards the 100,000-row promise without
// timing anything: every listing must walk an index in order (no full scan,
// no sort), so a page costs the same however many rows there are.
func TestListExecutionsUsesIndexes(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	for _, tc := range []struct {
		f     ExecutionFilter
		index string
	}{
		{ExecutionFilter{Limit: 50}, "executions_created"},
		{ExecutionFilter{WorkflowID: "w", Limit: 50}, "executions_workflow_created"},
		{ExecutionFilter{Status: "running", Limit: 50, Offset: 50}, "executions_status"},
	} {
		q, args := listExecutionsQuery(tc.f)
		p := queryPlan(t, db, q, args...)
		if !strings.Contains(p, tc.index) || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("plan for %+v = %q, want it to use %s without a sort", tc.f, p, tc.index)
		}
	}
}

// queryPlan returns SQLite's plan for q, its steps joined by "; ".
func queryPlan(t *testing.T, db *DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.rdb.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// TestWriterSurvivesDatabaseFailure breaks the writer's pool under the
// running writer: every waiter gets the error, the writer keeps serving
// (no panic, no hang), and Close reports the unflushed failure.
func TestWriterSurvivesDatabaseFailure(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := Open(ctx, t.TempDir()+"/sb.db", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &workflow.Execution{ID: "e", WorkflowID: "w", Status: workflow.ExecRunning, CreatedAt: utc(time.Now())}
	ev := workflow.Event{ExecutionID: "e", Kind: workflow.EventExecution, Execution: h}
	if err := db.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := db.wdb.Close(); err != nil { // the fault
		t.Fatal(err)
	}
	for range 3 {
		if err := db.Record(ctx, ev); err == nil {
			t.Fatal("Record on a broken database succeeded")
		}
	}
	db.Enqueue(ev)
	if err := db.CreateWorkflow(ctx, sampleWorkflow("x")); err == nil {
		t.Fatal("CreateWorkflow on a broken database succeeded")
	}
	if err := db.Flush(ctx); err == nil {
		t.Fatal("Flush after failed writes returned nil")
	}
	db.Enqueue(ev)
	if err := db.Close(); err == nil || !strings.Contains(err.Error(), "begin write") {
		t.Fatalf("Close = %v, want the unflushed write error", err)
	}
}

func TestHeaderUpdateKeepsCreatedAt(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	t0 := utc(time.Now().Add(-time.Minute))
	h := &workflow.Execution{ID: "e", WorkflowID: "w", Status: workflow.ExecQueued, CreatedAt: t0}
	if err := db.Record(ctx, workflow.Event{ExecutionID: "e", Time: t0, Kind: workflow.EventExecution, Execution: h}); err != nil {
		t.Fatal(err)
	}
	later := &workflow.Execution{ID: "e", WorkflowID: "w", Status: workflow.ExecSuccess} // CreatedAt left zero
	if err := db.Record(ctx, workflow.Event{ExecutionID: "e", Time: t0.Add(time.Minute), Kind: workflow.EventExecution, Execution: later}); err != nil {
		t.Fatal(err)
	}
	e, err := db.GetExecution(ctx, "e")
	if err != nil {
		t.Fatal(err)
	}
	if !e.CreatedAt.Equal(t0) || e.Status != workflow.ExecSuccess {
		t.Fatalf("after a second header: created_at %v (want %v), status %s", e.CreatedAt, t0, e.Status)
	}
}
