package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// seedDashboard stores 10 workflows and 1,000 finished executions of them
// (with node states and a short conversation each) through the store's
// batch writer, as the executor records them, and returns a server over it
// and one execution id.
func seedDashboard(b *testing.B) (http.Handler, string, string) {
	b.Helper()
	ctx := b.Context()
	logger := testLogger(b)
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var wids []string
	for i := range 10 {
		w, err := workflow.Parse([]byte(strings.Replace(uiDoc, `"name":"qa"`, fmt.Sprintf(`"name":"workflow %d"`, i), 1)))
		if err != nil {
			b.Fatal(err)
		}
		if err := db.CreateWorkflow(ctx, w); err != nil {
			b.Fatal(err)
		}
		wids = append(wids, w.ID)
	}
	t0 := time.Now().UTC().Add(-time.Hour)
	statuses := []string{workflow.ExecSuccess, workflow.ExecSuccess, workflow.ExecSuccess, workflow.ExecError, workflow.ExecCancelled}
	var last string
	for i := range 1000 {
		id := fmt.Sprintf("%024x", i+1)
		last = id
		start := t0.Add(time.Duration(i) * time.Second)
		end := start.Add(1500 * time.Millisecond)
		seq := int64(0)
		ev := func(kind workflow.EventKind, fill func(*workflow.Event)) {
			seq++
			e := workflow.Event{ExecutionID: id, Seq: seq, Time: start.Add(time.Duration(seq) * time.Millisecond), Kind: kind}
			fill(&e)
			db.Enqueue(e)
		}
		x := &workflow.Execution{ID: id, WorkflowID: wids[i%len(wids)], WorkflowName: fmt.Sprintf("workflow %d", i%len(wids)),
			Status: workflow.ExecRunning, CreatedAt: start, StartTime: &start, RequestedMode: workflow.ModePubSub, Mode: workflow.ModePubSub, Inputs: map[string]any{}}
		ev(workflow.EventExecution, func(e *workflow.Event) { e.Execution = x.Header() })
		for _, n := range []string{"start", "student", "teacher", "end"} {
			ev(workflow.EventNode, func(e *workflow.Event) {
				e.Node = &workflow.NodeState{NodeID: n, Type: workflow.NodeAIProcessor, Name: n, Status: workflow.NodeCompleted,
					Output: "An answer of a few words from " + n + ".", StartedAt: &start, FinishedAt: &end,
					Usage: workflow.Usage{PromptTokens: 40, CompletionTokens: 20, TotalTokens: 60}}
			})
		}
		ev(workflow.EventMessage, func(e *workflow.Event) {
			e.Message = &workflow.CommEntry{Time: e.Time, From: "student", To: "teacher", Type: workflow.CommAsk, Content: "Can you explain tides?",
				Metadata: map[string]any{"message_id": "query:node-" + id + "-student:node-" + id + "-teacher:1"}}
		})
		ev(workflow.EventMessage, func(e *workflow.Event) {
			e.Message = &workflow.CommEntry{Time: e.Time, From: "teacher", To: "student", Type: workflow.CommResponse, Content: "The moon pulls the sea.",
				Metadata: map[string]any{"latency_ms": 412.5, "success": true}}
		})
		done := *x
		done.Status, done.EndTime = statuses[i%len(statuses)], &end
		done.Usage = workflow.Usage{PromptTokens: 160, CompletionTokens: 80, TotalTokens: 240}
		ev(workflow.EventExecution, func(e *workflow.Event) { e.Execution = done.Header() })
	}
	if err := db.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	ex := executor.New(db, llm.NewDemo(), nil, logger, executor.Config{})
	srv, err := web.New(web.Config{Assets: os.DirFS("."), Version: "bench"}, db, ex, logger)
	if err != nil {
		b.Fatal(err)
	}
	return srv, last, wids[0]
}

func benchPage(b *testing.B, h http.Handler, path, want string) {
	b.Helper()
	req := httptest.NewRequest("GET", path, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
		b.Fatalf("GET %s: %d, want 200 with %q", path, rec.Code, want)
	}
	b.SetBytes(int64(rec.Body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			b.Fatalf("GET %s: %d", path, rec.Code)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
}

// BenchmarkWorkflowsPage measures the workflow list (last run of each from
// 1,000 executions).
func BenchmarkWorkflowsPage(b *testing.B) {
	h, _, _ := seedDashboard(b)
	benchPage(b, h, "/ui/workflows", "workflow 9")
}

// BenchmarkExecutionsPage measures page 1 of all executions, newest first,
// of 1,000.
func BenchmarkExecutionsPage(b *testing.B) {
	h, last, _ := seedDashboard(b)
	benchPage(b, h, "/ui/executions", last)
}

// BenchmarkExecutionsPageFiltered measures one workflow's successful
// executions, page 1.
func BenchmarkExecutionsPageFiltered(b *testing.B) {
	h, _, wid := seedDashboard(b)
	benchPage(b, h, "/ui/executions?workflow="+wid+"&status=success", "pill-success")
}

// BenchmarkWorkflowPage measures a workflow's page: graph, editor, run form
// and its recent executions.
func BenchmarkWorkflowPage(b *testing.B) {
	h, _, wid := seedDashboard(b)
	benchPage(b, h, "/ui/workflows/"+wid, "graph-cols-")
}

// BenchmarkExecutionPage measures a finished execution's page: graph,
// timeline, messages and node outputs.
func BenchmarkExecutionPage(b *testing.B) {
	h, last, _ := seedDashboard(b)
	benchPage(b, h, "/ui/executions/"+last, "tl-ask")
}
