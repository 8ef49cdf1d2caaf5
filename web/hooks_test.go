package web_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

const hookAPIToken = "api-token-for-the-hook-tests-0123456789"

// call sends body to path with the API token when bearer is set; the
// hooks themselves are called without it.
func (s *testServer) call(t *testing.T, method, path, body string, bearer bool) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer {
		req.Header.Set("Authorization", "Bearer "+hookAPIToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, []byte(b.String()), resp.Header
}

// promptLog is a chat model that answers "ok" and keeps the user
// messages it was sent.
type promptLog struct {
	mu      sync.Mutex
	prompts []string
}

func (p *promptLog) handler(req openai.ChatCompletionRequest) llmtest.Reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range req.Messages {
		if m.Role == openai.ChatMessageRoleUser {
			p.prompts = append(p.prompts, m.Content)
		}
	}
	return llmtest.Reply{Content: "ok"}
}

func (p *promptLog) all() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.prompts, "\n")
}

const hookDoc = `{"name":"orders","nodes":[{"id":"start","type":"start"},
 {"id":"clerk","type":"ai-processor","config":{"prompt":"Order for {{trigger.body.customer.name}} from {{trigger.query.source}}"}}],
 "edges":[{"from":"start","to":"clerk"}]}`

func hookOf(t *testing.T, s *testServer, id string) string {
	t.Helper()
	code, body, _ := s.call(t, "GET", "/workflows/"+id+"/webhook", "", true)
	if code != 200 {
		t.Fatalf("GET webhook: %d %s", code, body)
	}
	info := decode[map[string]any](t, body)
	if !strings.HasSuffix(info["url"].(string), info["path"].(string)) || !strings.HasPrefix(info["url"].(string), "http://127.0.0.1") {
		t.Fatalf("webhook info = %v", info)
	}
	return info["path"].(string)
}

func createWith(t *testing.T, s *testServer, doc string) string {
	t.Helper()
	code, body, _ := s.call(t, "POST", "/workflows/", doc, true)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	return decode[map[string]any](t, body)["id"].(string)
}

// TestWebhookRunsWithTheBodyInThePrompt goes through the HTTP server with
// the API token on: the hook needs no token of the API, its body and query
// reach the model's prompt, and ?wait=true answers with the finished
// record saying it was a webhook.
func TestWebhookRunsWithTheBodyInThePrompt(t *testing.T) {
	t.Parallel()
	prompts := &promptLog{}
	model := llmtest.NewServer(t, prompts.handler)
	s := newServer(t, web.Config{Token: hookAPIToken, BodyLimit: 4096},
		withModel(llm.NewOpenAI(llm.Config{BaseURL: model.URL(), MaxRetries: -1}, testLogger(t))))
	id := createWith(t, s, hookDoc)
	path := hookOf(t, s, id)

	code, body, _ := s.call(t, "POST", path+"?wait=true&source=shop", `{"customer":{"name":"Ada"}}`, false)
	if code != 200 {
		t.Fatalf("hook with wait: %d %s", code, body)
	}
	x := decode[workflow.Execution](t, body)
	if x.Status != workflow.ExecSuccess || x.Trigger == nil || x.Trigger.Kind != workflow.TriggerWebhook || x.Trigger.RemoteAddr == "" {
		t.Fatalf("record = %s / trigger %+v", x.Status, x.Trigger)
	}
	if got := prompts.all(); !strings.Contains(got, "Order for Ada from shop") {
		t.Fatalf("the model was sent %q", got)
	}
	// The stored record and the list say so too.
	code, body, _ = s.call(t, "GET", "/workflows/executions/"+x.ID, "", true)
	if stored := decode[workflow.Execution](t, body); code != 200 || stored.Trigger == nil || stored.Trigger.Kind != "webhook" {
		t.Fatalf("stored execution: %d %s", code, body)
	}
	code, body, _ = s.call(t, "GET", "/workflows/"+id+"/executions", "", true)
	if list := decode[[]workflow.Execution](t, body); code != 200 || len(list) != 1 || list[0].Trigger == nil || list[0].Trigger.Kind != "webhook" {
		t.Fatalf("execution list: %d %s", code, body)
	}

	// Without wait: 202 and the id.
	code, body, _ = s.call(t, "POST", path+"?source=x", `{"customer":{"name":"Bo"}}`, false)
	if code != 202 || decode[map[string]any](t, body)["execution_id"] == "" {
		t.Fatalf("hook without wait: %d %s", code, body)
	}

	// A wrong token and a missing workflow read the same: 404, no hint.
	bad := []struct{ name, path string }{
		{"wrong token", "/hooks/" + id + "/" + strings.Repeat("0", 64)},
		{"short token", "/hooks/" + id + "/x"},
		{"no such workflow", "/hooks/nope/" + strings.Repeat("0", 64)},
		{"other workflow's token", strings.Replace(path, id, createWith(t, s, hookDoc), 1)},
	}
	var first string
	for _, b := range bad {
		code, body, _ := s.call(t, "POST", b.path, `{}`, false)
		if code != 404 {
			t.Errorf("%s: %d %s, want 404", b.name, code, body)
		}
		if first == "" {
			first = string(body)
		} else if string(body) != first {
			t.Errorf("%s answers %s, unlike %s", b.name, body, first)
		}
	}
	// The API itself still wants its token.
	if code, _, _ := s.call(t, "GET", "/workflows/"+id+"/webhook", "", false); code != 401 {
		t.Errorf("GET webhook without the API token: %d, want 401", code)
	}

	for _, tt := range []struct {
		name, query, body string
		want              int
		contains          string
	}{
		{"not JSON", "", `customer=Ada`, 400, "must be JSON"},
		{"two values", "", `{} {}`, 400, "one JSON value"},
		{"bad wait", "?wait=soon", `{}`, 400, "wait"},
		{"too large", "", `{"x":"` + strings.Repeat("a", 5000) + `"}`, 413, "limit"},
	} {
		code, body, _ := s.call(t, "POST", path+tt.query, tt.body, false)
		if code != tt.want || !strings.Contains(string(body), tt.contains) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, code, body, tt.want, tt.contains)
		}
	}

	// Rotation through the API: the old path stops working.
	code, body, _ = s.call(t, "POST", "/workflows/"+id+"/webhook/rotate", "", true)
	if code != 200 {
		t.Fatalf("rotate: %d %s", code, body)
	}
	newPath := decode[map[string]any](t, body)["path"].(string)
	if code, _, _ := s.call(t, "POST", path, `{"customer":{"name":"Cy"}}`, false); code != 404 {
		t.Errorf("old hook after rotation: %d, want 404", code)
	}
	if code, body, _ := s.call(t, "POST", newPath+"?source=y", `{"customer":{"name":"Cy"}}`, false); code != 202 {
		t.Errorf("new hook after rotation: %d %s", code, body)
	}
}

// TestWebhookRateLimit: past its burst a workflow's hook answers 429 with
// a Retry-After, while another workflow's hook still runs.
func TestWebhookRateLimit(t *testing.T) {
	t.Parallel()
	// One run an hour after a burst of two: the third call is refused for
	// about an hour, however slow the machine.
	s := newServer(t, web.Config{Token: hookAPIToken, HookRate: 1.0 / 60, HookBurst: 2})
	doc := `{"name":"limited","nodes":[{"id":"start","type":"start"}]}`
	a, b := createWith(t, s, doc), createWith(t, s, doc)
	pa, pb := hookOf(t, s, a), hookOf(t, s, b)
	for i := range 2 {
		if code, body, _ := s.call(t, "POST", pa, `{}`, false); code != 202 {
			t.Fatalf("call %d: %d %s", i+1, code, body)
		}
	}
	code, body, hdr := s.call(t, "POST", pa, `{}`, false)
	if code != 429 {
		t.Fatalf("third call: %d %s, want 429", code, body)
	}
	if n, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || n < 60 || n > 3600 {
		t.Errorf("Retry-After = %q, want about an hour in seconds", hdr.Get("Retry-After"))
	}
	if got := decode[map[string]any](t, body)["code"]; got != "rate_limited" {
		t.Errorf("code = %v", got)
	}
	if code, body, _ := s.call(t, "POST", pb, `{}`, false); code != 202 {
		t.Errorf("the other workflow's hook: %d %s", code, body)
	}
}

// TestWebhookWaitTimesOut: a run longer than the wait is answered 202
// with its id, and goes on.
func TestWebhookWaitTimesOut(t *testing.T) {
	t.Parallel()
	release, quit := make(chan struct{}), make(chan struct{})
	model := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply {
		select {
		case <-release:
		case <-quit:
		}
		return llmtest.Reply{Content: "late"}
	})
	t.Cleanup(func() { close(quit) })
	s := newServer(t, web.Config{Token: hookAPIToken, HookWait: 50 * time.Millisecond},
		withModel(llm.NewOpenAI(llm.Config{BaseURL: model.URL(), MaxRetries: -1}, testLogger(t))))
	id := createWith(t, s, `{"name":"slow","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"take your time"}}]}`)
	events, stop := s.exec.SubscribeAll()
	defer stop()
	code, body, _ := s.call(t, "POST", hookOf(t, s, id)+"?wait=true", ``, false)
	out := decode[map[string]any](t, body)
	if code != 202 || !strings.Contains(out["detail"].(string), "still running") {
		t.Fatalf("hook past its wait: %d %s", code, body)
	}
	close(release)
	if st := waitEnd(t, s, events, out["execution_id"].(string)); st != workflow.ExecSuccess {
		t.Fatalf("the run ended %s, want it to go on to success", st)
	}
}

// TestTriggerOfAPIAndResume: an API run says api; a resume of a failed
// webhook run says resume, names the run it resumes, and renders the
// webhook's body in the nodes it runs.
func TestTriggerOfAPIAndResume(t *testing.T) {
	t.Parallel()
	prompts := &promptLog{}
	model := llmtest.NewServer(t, prompts.handler)
	s := newServer(t, web.Config{Token: hookAPIToken},
		withModel(llm.NewOpenAI(llm.Config{BaseURL: model.URL(), MaxRetries: -1}, testLogger(t))))
	// {{missing}} fails the node until the resume gives it as an input.
	id := createWith(t, s, `{"name":"r","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"{{trigger.body.who}} {{missing}}"}}]}`)
	code, body, _ := s.call(t, "POST", "/workflows/"+id+"/execute", `{}`, true)
	if x := decode[workflow.Execution](t, body); code != 200 || x.Trigger == nil || x.Trigger.Kind != workflow.TriggerAPI {
		t.Fatalf("API execute: %d %s", code, body)
	}
	code, body, _ = s.call(t, "POST", hookOf(t, s, id)+"?wait=true", `{"who":"Grace"}`, false)
	failed := decode[workflow.Execution](t, body)
	if code != 200 || failed.Status != workflow.ExecError {
		t.Fatalf("hook run: %d %s", code, body)
	}
	code, body, _ = s.call(t, "POST", "/workflows/executions/"+failed.ID+"/resume", `{"inputs":{"missing":"again"}}`, true)
	x := decode[workflow.Execution](t, body)
	if code != 200 || x.Status != workflow.ExecSuccess || x.Trigger == nil || x.Trigger.Kind != workflow.TriggerResume || x.Trigger.Execution != failed.ID {
		t.Fatalf("resume: %d %s", code, body)
	}
	if got := prompts.all(); !strings.Contains(got, "Grace again") {
		t.Fatalf("the resumed node was sent %q", got)
	}
}

// TestUIRotateHookNeedsCSRF: the dashboard's rotate form is refused
// without its CSRF token and leaves the token as it was; with it, the
// card shows a new URL. Execution lists tag each run with its trigger.
func TestUIRotateHookNeedsCSRF(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	id := createWorkflow(t, s, `{"name":"h","nodes":[{"id":"start","type":"start"}]}`)
	code, page, _ := c.get("/ui/workflows/" + id)
	if code != 200 {
		t.Fatalf("workflow page: %d", code)
	}
	before, err := s.db.HookToken(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "workflow page", page, `/hooks/`+id+`/`+before, `id="hook-rotate"`, "No schedule.")

	code, _, _ = c.do("POST", "/ui/workflows/"+id+"/webhook/rotate", strings.NewReader(""),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true"})
	if code != http.StatusForbidden && code != http.StatusBadRequest {
		t.Errorf("rotate without CSRF: %d, want 403 or 400", code)
	}
	if now, _ := s.db.HookToken(t.Context(), id); now != before {
		t.Fatal("a rotate without CSRF changed the token")
	}
	code, frag, _ := c.post("/ui/workflows/"+id+"/webhook/rotate", nil)
	after, _ := s.db.HookToken(t.Context(), id)
	if code != 200 || after == before {
		t.Fatalf("rotate: %d, token changed %v", code, after != before)
	}
	mustContain(t, "rotate fragment", frag, `/hooks/`+id+`/`+after, "the old one no longer works")

	if code, _, _ := s.do(t, "POST", "/hooks/"+id+"/"+after+"?wait=true", `{}`); code != 200 {
		t.Fatalf("hook: %d", code)
	}
	runAndWait(t, s, id)
	_, list, _ := c.get("/ui/executions")
	mustContain(t, "executions list", list, `<span class="tag tag-trigger" title="Started by">webhook</span>`,
		`<span class="tag tag-trigger" title="Started by">api</span>`)
}
