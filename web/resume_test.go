package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// A failed execution can be resumed from the API and from the dashboard's
// button; a successful one cannot.
func TestResume(t *testing.T) {
	s, ui := newUI(t, web.Config{})
	// "second" fails on an unknown placeholder; "first" completes.
	id := createWorkflow(t, s, `{"name":"r","nodes":[
		{"id":"first","type":"ai-processor","config":{"prompt":"one"}},
		{"id":"second","type":"ai-processor","config":{"prompt":"two {{later}}"}}],
		"edges":[{"from":"first","to":"second"}]}`)
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

	// The dashboard offers the button on the failed one and it starts a run.
	_, page, _ := ui.get("/ui/executions/" + failed)
	mustContain(t, "failed execution page", page, `/ui/executions/`+failed+`/resume`, ">Resume</button>")
	code, _, hdr := ui.post("/ui/executions/"+failed+"/resume", url.Values{})
	if code != 200 || !strings.HasPrefix(hdr.Get("HX-Location"), "/ui/executions/") {
		t.Fatalf("dashboard resume: %d %v", code, hdr)
	}
	_, page, _ = ui.get(hdr.Get("HX-Location"))
	mustContain(t, "resumed execution page", page, "Resumed from")
}
