package web_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// resumeDoc fails in its node "second" on an unknown placeholder unless the
// inputs give "later"; its node "first" completes.
const resumeDoc = `{"name":"r","nodes":[
	{"id":"first","type":"ai-processor","config":{"prompt":"one"}},
	{"id":"second","type":"ai-processor","config":{"prompt":"two {{later}}"}}],
	"edges":[{"from":"first","to":"second"}]}`

// A failed execution can be resumed from the API and from the dashboard's
// button; a successful one cannot.
func TestResume(t *testing.T) {
	t.Parallel()
	s, ui := newUI(t, web.Config{})
	id := createWorkflow(t, s, resumeDoc)
	failed := runAndWait(t, s, id)

	code, body, _ := s.do(t, "POST", "/workflows/executions/"+failed+"/resume", `{"inputs":{"later":"now"}}`)
	x := decode[workflow.Execution](t, body)
	if code != 200 || x.Status != "success" || x.ResumedFrom != failed {
		t.Fatalf("API resume: %d %s", code, body)
	}
	var reused bool
	for _, l := range x.Logs {
		reused = reused || strings.Contains(l.Message, "Node first reused its output from execution "+failed)
	}
	if !reused || x.NodeStates["first"].Calls != 0 {
		t.Fatalf("first should be reused, not run: %+v", x.NodeStates["first"])
	}
	if code, body, _ := s.do(t, "POST", "/workflows/executions/"+x.ID+"/resume", `{}`); code != 409 || !strings.Contains(string(body), "only an interrupted or failed execution can be resumed") {
		t.Fatalf("resume of a success: %d %s", code, body)
	}

	// The dashboard offers the button on a failed one and it starts a run;
	// on the one resumed already it answers why not.
	code, page, _ := ui.post("/ui/executions/"+failed+"/resume", url.Values{})
	if code != 409 || !strings.Contains(page, "already resumed by execution "+x.ID) {
		t.Fatalf("dashboard resume of a resumed execution: %d %s", code, page)
	}
	failed = runAndWait(t, s, id)
	_, page, _ = ui.get("/ui/executions/" + failed)
	mustContain(t, "failed execution page", page, `/ui/executions/`+failed+`/resume`, ">Resume</button>")
	code, _, hdr := ui.post("/ui/executions/"+failed+"/resume", url.Values{})
	if code != 200 || !strings.HasPrefix(hdr.Get("HX-Location"), "/ui/executions/") {
		t.Fatalf("dashboard resume: %d %v", code, hdr)
	}
	_, page, _ = ui.get(hdr.Get("HX-Location"))
	mustContain(t, "resumed execution page", page, "Resumed from")
}

// Resuming the same execution twice, one after the other or at the same
// time, runs it once: every other resume answers 409 naming the execution
// that resumed it.
func TestResumeOnce(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	id := createWorkflow(t, s, resumeDoc)
	for _, async := range []bool{false, true} {
		failed := runAndWait(t, s, id)
		const n = 4
		type answer struct {
			code int
			body []byte
		}
		answers := make(chan answer, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				code, body, _ := s.do(t, "POST", "/workflows/executions/"+failed+"/resume",
					fmt.Sprintf(`{"inputs":{"later":"now"},"async_execution":%t}`, async))
				answers <- answer{code, body}
			})
		}
		wg.Wait()
		close(answers)
		var won string
		var refused []string
		for a := range answers {
			switch a.code {
			case 200, 202:
				if won != "" {
					t.Fatalf("async %t: two resumes of %s ran: %s and %s", async, failed, won, a.body)
				}
				won, _ = decode[map[string]any](t, a.body)["execution_id"].(string)
			case 409:
				refused = append(refused, string(a.body))
			default:
				t.Fatalf("async %t: resume answered %d %s", async, a.code, a.body)
			}
		}
		if won == "" || len(refused) != n-1 {
			t.Fatalf("async %t: %q resumed, %d refused", async, won, len(refused))
		}
		for _, r := range refused {
			if !strings.Contains(r, "execution "+failed+" was already resumed by execution "+won) {
				t.Errorf("async %t: refusal does not name %s: %s", async, won, r)
			}
		}
		// A later resume is refused the same way, and one execution only
		// continues the failed one.
		if code, body, _ := s.do(t, "POST", "/workflows/executions/"+failed+"/resume", `{}`); code != 409 || !strings.Contains(string(body), won) {
			t.Fatalf("async %t: resume after: %d %s", async, code, body)
		}
		_, body, _ := s.do(t, "GET", "/workflows/"+id+"/executions?limit=100", "")
		resumes := 0
		for _, x := range decode[[]workflow.Execution](t, body) {
			if x.ResumedFrom == failed {
				resumes++
			}
		}
		if resumes != 1 {
			t.Fatalf("async %t: %d executions resume %s, want 1", async, resumes, failed)
		}
	}
}

// The page of an execution that was resumed names the execution that
// resumed it, with a link, instead of offering a Resume button that could
// only fail; the resume, failed in turn, still offers its own.
func TestUIResumedExecutionLinksItsResume(t *testing.T) {
	t.Parallel()
	s, ui := newUI(t, web.Config{})
	id := createWorkflow(t, s, resumeDoc)
	failed := runAndWait(t, s, id)
	button := `action="/ui/executions/` + failed + `/resume"`
	_, page, _ := ui.get("/ui/executions/" + failed)
	mustContain(t, "failed execution page", page, button, ">Resume</button>")
	if strings.Contains(page, "Resumed by") {
		t.Fatalf("an execution not resumed says it was:\n%s", clip(page))
	}

	// Without "later" the resume fails on the same node.
	code, body, _ := s.do(t, "POST", "/workflows/executions/"+failed+"/resume", `{}`)
	again := decode[workflow.Execution](t, body)
	if code != 200 || again.Status != workflow.ExecError || again.ResumedFrom != failed {
		t.Fatalf("resume: %d %s", code, body)
	}
	_, page, _ = ui.get("/ui/executions/" + failed)
	mustContain(t, "resumed execution page", page, `Resumed by <a href="/ui/executions/`+again.ID+`">`)
	if strings.Contains(page, button) || strings.Contains(page, ">Resume</button>") {
		t.Errorf("the page of a resumed execution offers to resume it again:\n%s", clip(page))
	}
	_, page, _ = ui.get("/ui/executions/" + again.ID)
	mustContain(t, "failed resume's page", page, "Resumed from", `action="/ui/executions/`+again.ID+`/resume"`, ">Resume</button>")
	if strings.Contains(page, "Resumed by") {
		t.Errorf("a resume not resumed says it was:\n%s", clip(page))
	}
}

// A resume that stopped before it recorded the nodes it took over still
// passes them on: resuming it reuses the completed nodes of the execution it
// resumed, which cannot be resumed again itself.
func TestResumeOfAResumeThatRecordedNothing(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	id := createWorkflow(t, s, resumeDoc)
	failed := runAndWait(t, s, id)
	// The resume's header was committed, and then the process died.
	crashed := workflow.NewID()
	now := time.Now().UTC()
	if err := s.db.Record(t.Context(), workflow.Event{ExecutionID: crashed, Kind: workflow.EventExecution, Time: now,
		Execution: &workflow.Execution{ID: crashed, WorkflowID: id, Status: workflow.ExecInterrupted, CreatedAt: now, ResumedFrom: failed}}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := s.do(t, "POST", "/workflows/executions/"+failed+"/resume", `{}`); code != 409 {
		t.Fatalf("resume of the resumed execution: %d %s", code, body)
	}
	code, body, _ := s.do(t, "POST", "/workflows/executions/"+crashed+"/resume", `{"inputs":{"later":"now"}}`)
	x := decode[workflow.Execution](t, body)
	if code != 200 || x.Status != workflow.ExecSuccess || x.ResumedFrom != crashed {
		t.Fatalf("resume of the crashed resume: %d %s", code, body)
	}
	if first := x.NodeStates["first"]; first == nil || first.Status != workflow.NodeCompleted || first.Calls != 0 {
		t.Fatalf("first should be reused from %s, not run again: %+v", failed, first)
	}
}
