package store

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/workflow"
)

// A database written before exec_events (schema version 3) keeps every
// execution's node states, logs, errors, communication log and shared
// context, in the order they were read before.
func TestExecEventsMigrationKeepsRecords(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, conn := oldDB(t, path, 3)
	t0 := time.Date(2026, 11, 27, 6, 0, 0, 123456789, time.UTC)
	n := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO executions (id, workflow_id, status, created_at, start_time) VALUES ('x1', 'w1', 'running', ?, ?)`, []any{n(0), n(0)}},
		{`INSERT INTO executions (id, workflow_id, status, created_at) VALUES ('x2', 'w1', 'queued', ?)`, []any{n(time.Second)}},
		// b was seen first (seq 2), a later (seq 3); a's row was inserted first.
		{`INSERT INTO node_states (execution_id, node_id, seq, type, name, status, output, started_at, finished_at, model,
			prompt_tokens, completion_tokens, total_tokens, calls, error)
			VALUES ('x1', 'a', 3, 'ai-processor', 'A', 'completed', '{"answer":42}', ?, ?, 'm', 1, 2, 3, 1, '')`, []any{n(1), n(2)}},
		{`INSERT INTO node_states (execution_id, node_id, seq, type, status) VALUES ('x1', 'b', 2, 'ai-processor', 'running')`, nil},
		{`INSERT INTO node_states (execution_id, node_id, seq, type, status, error) VALUES ('x1', 'c', 4, 'ai-processor', 'error', 'boom')`, nil},
		{`INSERT INTO exec_logs (execution_id, seq, time, level, message, node_id) VALUES ('x1', 5, ?, 'info', 'second', 'a')`, []any{n(5)}},
		{`INSERT INTO exec_logs (execution_id, seq, time, level, message) VALUES ('x1', 1, ?, 'info', 'first')`, []any{n(1)}},
		{`INSERT INTO exec_logs (execution_id, seq, time, level, message) VALUES ('x1', 5, NULL, 'warning', 'third, same seq, later row')`, nil},
		{`INSERT INTO exec_errors (execution_id, seq, time, node_id, code, message) VALUES ('x1', 6, ?, 'c', 'llm_error', 'boom')`, []any{n(6)}},
		{`INSERT INTO exec_messages (execution_id, seq, time, from_node, to_node, type, content, metadata)
			VALUES ('x1', 7, ?, 'a', 'b', 'ask', 'why?', '{"depth":1,"mode":"inprocess"}')`, []any{n(7)}},
		{`INSERT INTO exec_messages (execution_id, seq, time, from_node, to_node, type, content, metadata)
			VALUES ('x1', 8, ?, 'b', '*', 'broadcast', 'hi', NULL)`, []any{n(8)}},
		{`INSERT INTO exec_messages (execution_id, seq, time, from_node, to_node, type, content, metadata)
			VALUES ('x1', 9, ?, 'b', 'a', 'response', 'because', '{}')`, []any{n(9)}},
		{`INSERT INTO shared_context (execution_id, key, value, seq, updated_at) VALUES ('x1', 'k', '["x",1]', 10, ?)`, []any{n(10)}},
		{`INSERT INTO shared_context (execution_id, key, value, seq, updated_at) VALUES ('x1', 'nil', NULL, 11, ?)`, []any{n(11)}},
	} {
		if _, err := conn.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	conn.Close()
	raw.Close()

	db := openAt(t, path)
	x, err := db.GetExecution(ctx, "x1")
	if err != nil {
		t.Fatal(err)
	}
	tp := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	states, err := db.NodeStates(ctx, "x1")
	if err != nil {
		t.Fatal(err)
	}
	wantStates := []*workflow.NodeState{
		{NodeID: "b", Type: "ai-processor", Status: "running"},
		{NodeID: "a", Type: "ai-processor", Name: "A", Status: "completed", Output: map[string]any{"answer": 42.0},
			StartedAt: tp(1), FinishedAt: tp(2), Model: "m", Usage: workflow.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}, Calls: 1},
		{NodeID: "c", Type: "ai-processor", Status: "error", Error: "boom"},
	}
	if !reflect.DeepEqual(states, wantStates) {
		t.Errorf("node states\n got %s\nwant %s", asJSON(states), asJSON(wantStates))
	}
	wantLogs := []workflow.LogEntry{
		{Time: *tp(1), Level: "info", Message: "first"},
		{Time: *tp(5), Level: "info", Message: "second", NodeID: "a"},
		{Level: "warning", Message: "third, same seq, later row"},
	}
	if !reflect.DeepEqual(x.Logs, wantLogs) {
		t.Errorf("logs\n got %s\nwant %s", asJSON(x.Logs), asJSON(wantLogs))
	}
	wantErrors := []workflow.ErrorEntry{{Time: *tp(6), NodeID: "c", Code: "llm_error", Message: "boom"}}
	if !reflect.DeepEqual(x.Errors, wantErrors) {
		t.Errorf("errors\n got %s\nwant %s", asJSON(x.Errors), asJSON(wantErrors))
	}
	wantMsgs := []workflow.CommEntry{
		{Time: *tp(7), From: "a", To: "b", Type: "ask", Content: "why?", Metadata: map[string]any{"depth": 1.0, "mode": "inprocess"}},
		{Time: *tp(8), From: "b", To: "*", Type: "broadcast", Content: "hi"},
		{Time: *tp(9), From: "b", To: "a", Type: "response", Content: "because", Metadata: map[string]any{}},
	}
	if !reflect.DeepEqual(x.CommunicationLog, wantMsgs) {
		t.Errorf("communication log\n got %s\nwant %s", asJSON(x.CommunicationLog), asJSON(wantMsgs))
	}
	wantCtx := map[string]any{"k": []any{"x", 1.0}, "nil": nil}
	if !reflect.DeepEqual(x.SharedContext, wantCtx) {
		t.Errorf("shared context %s, want %s", asJSON(x.SharedContext), asJSON(wantCtx))
	}

	if n, err := db.CountExecutions(ctx, ExecutionFilter{WorkflowID: "w1"}); err != nil || n != 2 {
		t.Errorf("count of w1 after the migration = %d, %v; want 2", n, err)
	}
	checkCounts(t, db)

	// An execution with nothing but its header reads back empty, and events
	// recorded after the migration follow the migrated ones.
	x2, err := db.GetExecution(ctx, "x2")
	if err != nil || len(x2.NodeStates) != 0 || len(x2.Logs) != 0 {
		t.Fatalf("x2 = %+v, %v; want an empty record", x2, err)
	}
	if err := db.Record(ctx, workflow.Event{ExecutionID: "x1", Seq: 12, Time: t0, Kind: workflow.EventNode,
		Node: &workflow.NodeState{NodeID: "b", Type: "ai-processor", Status: "completed", Output: "done"}}); err != nil {
		t.Fatal(err)
	}
	states, err = db.NodeStates(ctx, "x1")
	if err != nil || len(states) != 3 || states[0].NodeID != "b" || states[0].Output != "done" {
		t.Fatalf("after a new event: %s, %v; want b first, completed", asJSON(states), err)
	}

	// Interrupting the migrated execution cancels its running node.
	if n, err := db.MarkInterrupted(ctx, "restarted"); err != nil || n != 2 {
		t.Fatalf("MarkInterrupted = %d, %v; want 2", n, err)
	}
}

// Events of one execution that arrive out of seq order read back in seq
// order, ties in arrival order, across chunks.
func TestFoldOrdersBySeqThenArrival(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openAt(t, filepath.Join(t.TempDir(), "f.db"))
	t0 := time.Now().UTC()
	if err := db.Record(ctx, workflow.Event{ExecutionID: "x", Seq: 1, Time: t0, Kind: workflow.EventExecution,
		Execution: &workflow.Execution{ID: "x", WorkflowID: "w", Status: workflow.ExecRunning, CreatedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	log := func(seq int64, msg string) workflow.Event {
		return workflow.Event{ExecutionID: "x", Seq: seq, Time: t0, Kind: workflow.EventLog, Log: &workflow.LogEntry{Level: "info", Message: msg}}
	}
	db.Enqueue(log(5, "c"))
	db.Enqueue(log(3, "a"))
	if err := db.Flush(ctx); err != nil { // a second chunk after this
		t.Fatal(err)
	}
	db.Enqueue(log(5, "d"))
	db.Enqueue(log(4, "b"))
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	x, err := db.GetExecution(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range x.Logs {
		got = append(got, l.Message)
	}
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("logs %v, want %v", got, want)
	}
}

// RecordAsync's channel gets what Record would have returned, once the
// event is committed; the event shares the transaction of what follows it.
func TestRecordAsync(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openAt(t, filepath.Join(t.TempDir(), "a.db"))
	t0 := time.Now().UTC()
	header := workflow.Event{ExecutionID: "x", Seq: 1, Time: t0, Kind: workflow.EventExecution,
		Execution: &workflow.Execution{ID: "x", WorkflowID: "w", Status: workflow.ExecQueued, CreatedAt: t0}}
	done := db.RecordAsync(header)
	db.Enqueue(workflow.Event{ExecutionID: "x", Seq: 2, Time: t0, Kind: workflow.EventLog, Log: &workflow.LogEntry{Level: "info", Message: "m"}})
	if err := <-done; err != nil {
		t.Fatalf("RecordAsync = %v", err)
	}
	if x, err := db.GetExecution(ctx, "x"); err != nil || x.Status != workflow.ExecQueued {
		t.Fatalf("after RecordAsync: %+v, %v", x, err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	bad := header
	bad.Execution = &workflow.Execution{ID: "y", WorkflowID: "w", CreatedAt: t0} // no status
	bad.ExecutionID = "y"
	if err := <-db.RecordAsync(bad); workflow.ErrorCode(err) != workflow.CodeInvalid {
		t.Fatalf("malformed header: %v, want invalid", err)
	}
	if err := db.Flush(ctx); workflow.ErrorCode(err) != workflow.CodeInvalid {
		t.Fatalf("Flush after a failed RecordAsync = %v, want the same invalid error", err)
	}
	db.Close()
	if err := <-db.RecordAsync(header); workflow.ErrorCode(err) != workflow.CodeUnavailable {
		t.Fatalf("after Close: %v, want unavailable", err)
	}
}

// What encodeEvent writes, fold reads back as the events it was given, for
// every kind of stored event and every field, with strings holding quotes,
// escapes, control characters, HTML, the JavaScript line separators and
// invalid UTF-8 (each invalid byte reads back as U+FFFD), in open values
// and map keys too, and nil metadata apart from empty metadata.
func FuzzStoredEventEncoding(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote\back`, "tab\tnl\ncr\r\x00\x1f", "bad \xff utf8 \xc3", "ls\u2028ps\u2029", "é 日本 🎉", "<&>"} {
		f.Add(s, int64(7))
	}
	f.Add("x", int64(0))
	f.Add("x", int64(-1))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		chunk := []byte{'['}
		for i, ev := range storedEventsOf(s, n) {
			data, err := encodeEvent(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				chunk = append(chunk, ',')
			}
			chunk = append(chunk, data...)
		}
		chunk = append(chunk, ']')
		got, err := fold([][]byte{chunk})
		if err != nil {
			t.Fatalf("%s does not decode: %v", chunk, err)
		}
		want := workflow.Fold(storedEventsOf(asJSONString(s), n))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back differently from %s:\n got  %s\n want %s", chunk, asJSON(got), asJSON(want))
		}
	})
}

// storedEventsOf is one event of each stored kind with s in every string
// and n in every number.
func storedEventsOf(s string, n int64) []workflow.Event {
	var at time.Time // n == 0 is "not set", stored as 0
	if n != 0 {
		at = time.Unix(0, n).UTC()
	}
	ptr := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return []workflow.Event{
		{Kind: workflow.EventNode, Seq: n, Node: &workflow.NodeState{NodeID: s, Type: s, Name: s, Status: s, Output: s,
			StartedAt: ptr(at), FinishedAt: ptr(at), Model: s, Usage: workflow.Usage{PromptTokens: int(n), CompletionTokens: 1, TotalTokens: 2}, Calls: 3, Error: s}},
		{Kind: workflow.EventNode, Seq: 1, Node: &workflow.NodeState{NodeID: s + "2", Output: map[string]any{s: s, "n": float64(n), "list": []any{s, nil, true, 1.5}}}},
		{Kind: workflow.EventNode, Seq: 2, Node: &workflow.NodeState{NodeID: s + "3"}}, // no output
		{Kind: workflow.EventMessage, Seq: n, Time: at, Message: &workflow.CommEntry{From: s, To: s, Type: s, Content: s, Metadata: map[string]any{s: s, "n": float64(n)}}},
		{Kind: workflow.EventMessage, Seq: n, Time: at, Message: &workflow.CommEntry{Time: at, Metadata: map[string]any{}}},
		{Kind: workflow.EventMessage, Seq: n, Time: at, Message: &workflow.CommEntry{Content: s}}, // nil metadata
		{Kind: workflow.EventLog, Seq: n, Time: at, Log: &workflow.LogEntry{Level: s, Message: s, NodeID: s}},
		{Kind: workflow.EventError, Seq: n, Time: at, Error: &workflow.ErrorEntry{Time: at, NodeID: s, Code: workflow.Code(s), Message: s}},
		{Kind: workflow.EventContext, Seq: n, Time: at, Context: &workflow.ContextUpdate{Key: s + "k", Value: []any{s, nil, true}}},
		{Kind: workflow.EventContext, Seq: n, Time: at, Context: &workflow.ContextUpdate{Key: s + "e", Value: ""}},
	}
}

// asJSONString is s as a JSON string reads back: each byte that is not
// part of valid UTF-8 becomes U+FFFD.
func asJSONString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Chunks written by earlier versions still read back: their encoder left
// HTML characters alone and escaped U+2028 and invalid UTF-8 by hand, and
// migration 0004 wrote its chunks with SQLite's json_object.
func TestChunksOfEarlierVersionsDecode(t *testing.T) {
	t.Parallel()
	const at = 1700000000000000000
	chunk := `[{"k":"node","s":2,"node":"n1","type":"ai-processor","name":"N","status":"completed","v":"a<b>&c","start":1700000000000000000,"finish":1700000000000000000,"model":"m","pt":1,"ct":2,"tt":3,"calls":1},` +
		`{"k":"log","s":3,"t":1700000000000000000,"node":"n1","level":"info","msg":"q\"\\ \n\t\u0001 \ufffd \u2028 <&>"},` +
		`{"k":"message","s":4,"t":1700000000000000000,"from":"a","to":"b","type":"ask","msg":"hi","meta":null},` +
		`{"k":"message","s":5,"t":1700000000000000000,"from":"b","to":"a","type":"response","msg":"yo","meta":{"depth":1}},` +
		`{"k":"error","s":6,"t":1700000000000000000,"node":"n1","code":"x","msg":"bad"},` +
		`{"k":"context","s":7,"t":1700000000000000000,"key":"k","v":{"a":[1,"x",null]}}]`
	// As migration 0004 wrote them: every key present, NULL for what was unset.
	migrated := `[{"k":"node","s":8,"node":"n2","type":"","name":"","status":"pending","v":null,"start":null,"finish":null,"model":"","pt":0,"ct":0,"tt":0,"calls":0,"err":""},` +
		`{"k":"log","s":9,"t":null,"level":"","msg":"m","node":""}]`
	got, err := fold([][]byte{[]byte(chunk), []byte(migrated)})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(0, at).UTC()
	want := workflow.Folded{
		Nodes: []*workflow.NodeState{
			{NodeID: "n1", Type: "ai-processor", Name: "N", Status: "completed", Output: "a<b>&c", StartedAt: &ts, FinishedAt: &ts,
				Model: "m", Usage: workflow.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}, Calls: 1},
			{NodeID: "n2", Status: "pending"},
		},
		Logs: []workflow.LogEntry{
			{Time: ts, Level: "info", Message: "q\"\\ \n\t\x01 \ufffd \u2028 <&>", NodeID: "n1"},
			{Message: "m"},
		},
		Errors: []workflow.ErrorEntry{{Time: ts, NodeID: "n1", Code: "x", Message: "bad"}},
		Messages: []workflow.CommEntry{
			{Time: ts, From: "a", To: "b", Type: "ask", Content: "hi"},
			{Time: ts, From: "b", To: "a", Type: "response", Content: "yo", Metadata: map[string]any{"depth": 1.0}},
		},
		Context: map[string]any{"k": map[string]any{"a": []any{1.0, "x", nil}}},
		MaxSeq:  9,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back:\n got  %s\n want %s", asJSON(got), asJSON(want))
	}
}

// Reading an execution back finds its row by primary key and its chunks
// through their index, in order, without sorting or scanning.
func TestGetExecutionQueryPlan(t *testing.T) {
	t.Parallel()
	db := openAt(t, filepath.Join(t.TempDir(), "p.db"))
	p := queryPlan(t, db, getExecutionQuery, "x")
	if !strings.Contains(p, "PRIMARY KEY") || !strings.Contains(p, "exec_events_execution") ||
		strings.Contains(p, "TEMP B-TREE") || strings.Contains(p, "SCAN") {
		t.Errorf("plan = %q, want the primary key and exec_events_execution, no scan or sort", p)
	}
}
