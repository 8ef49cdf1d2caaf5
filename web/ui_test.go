package web_test

import (
	"bufio"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// fakeBus is a BusView with fixed answers: the real one needs main's wiring
// (bus.Bus is not imported by web); the browser tests cover that.
type fakeBus struct {
	mu       sync.Mutex
	monitors int
	stopped  chan struct{}
}

func (b *fakeBus) Info(context.Context) map[string]any {
	return map[string]any{"kind": "external", "addr": "10.0.0.5:6379", "url": "redis://app:s3cret-pw@10.0.0.5:6379/0",
		"connected": true, "latency_ms": 0.42, "agents": []string{"agent:messages:node-x-student"}}
}

func (b *fakeBus) Workers(context.Context) ([]web.Worker, error) { return nil, nil }

func (b *fakeBus) Monitor(ctx context.Context, pattern string, fn func(string, []byte)) error {
	b.mu.Lock()
	b.monitors++
	b.mu.Unlock()
	fn("agent:messages:node-x-teacher", []byte(`{"id":"query:a:b:1","type":"query","from_agent":"node-x-student","to_agent":"node-x-teacher","content":"<b>hi</b>"}`))
	<-ctx.Done()
	if b.stopped != nil {
		close(b.stopped)
	}
	return nil
}

// uiClient is a browser-like client: it keeps cookies and does not follow
// redirects, so tests see them.
type uiClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

// newUI is newServer with the dashboard's templates, and a client for it.
func newUI(t *testing.T, cfg web.Config, opts ...serverOption) (*testServer, *uiClient) {
	t.Helper()
	cfg.Assets = os.DirFS(".")
	if cfg.Version == "" {
		cfg.Version = "9.9.9-test"
	}
	s := newServer(t, cfg, opts...)
	jar, _ := cookiejar.New(nil)
	c := &uiClient{t: t, base: s.URL, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	return s, c
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func (c *uiClient) do(method, path string, body io.Reader, hdr map[string]string) (int, string, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindStringSubmatch(string(data)); m != nil {
		c.csrf = m[1]
	}
	return resp.StatusCode, string(data), resp.Header
}

func (c *uiClient) get(path string) (int, string, http.Header) {
	return c.do("GET", path, nil, nil)
}

// post sends a form as htmx does: urlencoded, with HX-Request and the CSRF
// header from the page.
func (c *uiClient) post(path string, form url.Values) (int, string, http.Header) {
	c.t.Helper()
	if c.csrf == "" {
		c.get("/ui/workflows")
	}
	return c.do("POST", path, strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true", "X-CSRF-Token": c.csrf})
}

// uiDoc is a two-agent Q&A with named nodes and a variable.
const uiDoc = `{"name":"qa","metadata":{"communication_mode":"simple"},"nodes":[
 {"id":"start","type":"start"},
 {"id":"student","type":"ai-processor","config":{"name":"Student","can_communicate":true,"prompt":"CALL: ask_node('teacher', 'Can you explain {{question_topic}} in two sentences?')"}},
 {"id":"teacher","type":"ai-processor","config":{"name":"Teacher","can_communicate":true,"system_prompt":"You teach."}},
 {"id":"end","type":"end"}],
 "edges":[{"from":"start","to":"student"},{"from":"student","to":"end"}],
 "variables":[{"name":"question_topic","value":"photosynthesis"}]}`

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, clip(body))
		}
	}
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}

func createWorkflow(t *testing.T, s *testServer, doc string) string {
	t.Helper()
	code, body, _ := s.do(t, "POST", "/workflows/", doc)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	return decode[map[string]any](t, body)["id"].(string)
}

func runAndWait(t *testing.T, s *testServer, id string) string {
	t.Helper()
	code, body, _ := s.do(t, "POST", "/workflows/"+id+"/execute", `{"async_execution":false}`)
	if code != 200 {
		t.Fatalf("execute: %d %s", code, body)
	}
	return decode[workflow.Execution](t, body).ID
}

func TestUIPagesRender(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{Bus: &fakeBus{}, DataDir: "/var/lib/switchboard",
		Settings: map[string]any{"llm": map[string]any{"provider": "openai-compatible", "base_url": "http://u:pw@llm.local/v1", "model": "gpt-x", "api_key": "sk-SECRET"}}})
	wid := createWorkflow(t, s, uiDoc)
	xid := runAndWait(t, s, wid)

	for _, tc := range []struct {
		path  string
		wants []string
	}{
		{"/ui/workflows", []string{"<h1>Workflows</h1>", `href="/ui/workflows/` + wid + `"`, ">qa<", `class="pill pill-success"`, `name="_csrf"`, `<label for="import-doc">`}},
		{"/ui/workflows/" + wid, []string{"<h1>qa</h1>", `<svg class="graph graph-cols-`, `class="node-name" x="14" y="44">Student`, `marker-end="url(#g-arrow)"`,
			`name="input.question_topic"`, `value="photosynthesis"`, `value="pubsub"`, `id="editor"`, "&#34;nodes&#34;", "/ui/executions/" + xid}},
		{"/ui/executions", []string{"<h1>Executions</h1>", `<option value="` + wid + `">qa</option>`, "/ui/executions/" + xid, "1 execution "}},
		{"/ui/executions/" + xid, []string{`id="exec-status" class="pill pill-success pill-lg">success`, `<svg class="timeline tl-lanes-2"`, `data-kind="ask"`, `data-kind="response"`,
			`tl-row tl-ask`, "Can you explain photosynthesis", `class="node-card" id="node-1"`, "Tokens"}},
		{"/ui/bus", []string{"<h1>Bus</h1>", "10.0.0.5:6379", "redis://app:xxxxx@10.0.0.5:6379/0", "agent:messages:node-x-student", `sse-connect="/ui/bus/live"`}},
		{"/ui/settings", []string{"openai-compatible", "http://u:xxxxx@llm.local/v1", "gpt-x", "/var/lib/switchboard", "9.9.9-test"}},
	} {
		code, body, hdr := c.get(tc.path)
		if code != 200 {
			t.Errorf("GET %s: %d\n%s", tc.path, code, clip(body))
			continue
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: content type %q", tc.path, ct)
		}
		mustContain(t, tc.path, body, append([]string{"<!doctype html>", `<meta name="htmx-config"`, "/ui/static/vendor/htmx.min.js?v="}, tc.wants...)...)
		for _, bad := range []string{"s3cret-pw", "sk-SECRET", " style=", "<script>", " onclick=", " onerror="} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: page contains %q", tc.path, bad)
			}
		}
	}
}

func TestUIRedirects(t *testing.T) {
	t.Parallel()
	_, c := newUI(t, web.Config{})
	for path, want := range map[string]string{"/": "/ui/", "/ui/": "/ui/workflows", "/ui": "/ui/workflows"} {
		code, _, hdr := c.get(path)
		if code != http.StatusFound || hdr.Get("Location") != want {
			t.Errorf("GET %s: %d → %q, want 302 → %s", path, code, hdr.Get("Location"), want)
		}
	}
}

func TestUINotFound(t *testing.T) {
	t.Parallel()
	_, c := newUI(t, web.Config{})
	for _, p := range []string{"/ui/workflows/nope", "/ui/executions/nope", "/ui/no-such-page"} {
		code, body, _ := c.get(p)
		if code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
		mustContain(t, p, body, "<!doctype html>", "<h1>Not Found</h1>", `role="alert"`, "Go to the workflows")
		// An htmx swap gets the fragment only.
		code, body, hdr := c.do("GET", p, nil, map[string]string{"HX-Request": "true"})
		if code != 404 || strings.Contains(body, "<!doctype") || !strings.Contains(body, `class="alert alert-error"`) || hdr.Get("HX-Reswap") != "innerHTML" {
			t.Errorf("htmx GET %s: %d %q (HX-Reswap %q), want a 404 fragment", p, code, body, hdr.Get("HX-Reswap"))
		}
	}
}

func TestUIImport(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	c.get("/ui/workflows")

	// Invalid: 422, every problem next to its JSON path, as a fragment.
	bad := `{"name":"bad","nodes":[{"id":"a","type":"ai-processor","config":{"temperature":"hot"}}],"edges":[{"from":"a","to":"ghost"}]}`
	code, body, hdr := c.post("/ui/workflows", url.Values{"document": {bad}, "_csrf": {c.csrf}})
	if code != 422 {
		t.Fatalf("invalid import: %d %s", code, body)
	}
	mustContain(t, "422 fragment", body, `<code class="path">nodes[0].config.temperature</code>`, `must be a number, not &#34;hot&#34;`,
		`<code class="path">edges[0].to</code>`, "workflow is invalid")
	if strings.Contains(body, "<!doctype") || hdr.Get("HX-Reswap") != "innerHTML" {
		t.Errorf("want a fragment swapped innerHTML, got HX-Reswap %q", hdr.Get("HX-Reswap"))
	}
	// Malformed JSON and an empty form are errors in place too.
	code, body, _ = c.post("/ui/workflows", url.Values{"document": {`{"name": `}})
	if code != 400 || !strings.Contains(body, "malformed JSON") {
		t.Errorf("malformed import: %d %s", code, body)
	}
	code, body, _ = c.post("/ui/workflows", url.Values{"document": {"  "}})
	if code != 422 || !strings.Contains(body, "paste a workflow") {
		t.Errorf("empty import: %d %s", code, body)
	}

	// Valid, pasted: the browser is sent to the new workflow's page.
	code, body, hdr = c.post("/ui/workflows", url.Values{"document": {uiDoc}})
	loc := hdr.Get("HX-Location")
	if code != 200 || !strings.HasPrefix(loc, "/ui/workflows/") {
		t.Fatalf("import: %d HX-Location %q %s", code, loc, body)
	}
	if code, _, _ := c.get(loc); code != 200 {
		t.Errorf("GET %s: %d", loc, code)
	}

	// Valid, uploaded as a file in a multipart form, without htmx: a redirect.
	var buf strings.Builder
	mw := multipart.NewWriter(&buf)
	mw.WriteField("_csrf", c.csrf)
	mw.WriteField("document", "")
	fw, _ := mw.CreateFormFile("file", "qa.json")
	io.WriteString(fw, strings.Replace(uiDoc, `"name":"qa"`, `"name":"from a file"`, 1))
	mw.Close()
	code, _, hdr = c.do("POST", "/ui/workflows", strings.NewReader(buf.String()), map[string]string{"Content-Type": mw.FormDataContentType()})
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/ui/workflows/") {
		t.Fatalf("file import: %d %v", code, hdr)
	}
	_, list, _ := c.get("/ui/workflows")
	mustContain(t, "list after imports", list, ">from a file<", ">qa<")
	_ = s
}

func TestUICSRF(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	form := url.Values{"document": {uiDoc}}.Encode()
	// No token at all (and no cookie): refused.
	code, body, _ := c.do("POST", "/ui/workflows", strings.NewReader(form), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if code != 400 && code != 403 {
		t.Errorf("POST without token: %d %s", code, body)
	}
	// A cookie but a wrong token: refused, as an error page.
	c.get("/ui/workflows")
	code, body, _ = c.do("POST", "/ui/workflows", strings.NewReader(form+"&_csrf=forged"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if code != 403 || !strings.Contains(body, "invalid csrf token") {
		t.Errorf("POST with a forged token: %d %s", code, clip(body))
	}
	// A same-origin fetch mark does not stand in for the token.
	code, _, _ = c.do("POST", "/ui/workflows", strings.NewReader(form), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"})
	if code != 400 && code != 403 {
		t.Errorf("POST with Sec-Fetch-Site only: %d", code)
	}
	// The form field works, and so does the header (htmx).
	code, _, _ = c.do("POST", "/ui/workflows", strings.NewReader(form+"&_csrf="+c.csrf), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if code != http.StatusSeeOther {
		t.Errorf("POST with the form token: %d", code)
	}
	// The JSON API needs no CSRF token.
	if code, body, _ := s.do(t, "POST", "/workflows/", uiDoc); code != 201 {
		t.Errorf("API POST: %d %s", code, body)
	}
}

func TestUIRunSaveDeleteCancel(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	wid := createWorkflow(t, s, uiDoc)
	c.get("/ui/workflows/" + wid)
	all, stopAll := s.exec.SubscribeAll()
	defer stopAll()

	// Run with an input and a mode from the form.
	code, body, hdr := c.post("/ui/workflows/"+wid+"/run", url.Values{"input.question_topic": {"tides"}, "mode": {"simple"}})
	loc := hdr.Get("HX-Location")
	if code != 200 || !strings.HasPrefix(loc, "/ui/executions/") {
		t.Fatalf("run: %d %q %s", code, loc, body)
	}
	xid := strings.TrimPrefix(loc, "/ui/executions/")
	if st := waitEnd(t, s, all, xid); st != workflow.ExecSuccess {
		t.Fatalf("status %s", st)
	}
	_, page, _ := c.get(loc)
	mustContain(t, "execution page", page, "Can you explain tides in two sentences?", "pill-success")
	code, body, _ = c.post("/ui/workflows/"+wid+"/run", url.Values{"mode": {"carrier-pigeon"}})
	if code != 422 || !strings.Contains(body, "communication_mode") {
		t.Errorf("run with a bad mode: %d %s", code, body)
	}

	// Cancelling a finished execution says why not, in place.
	code, body, _ = c.post("/ui/executions/"+xid+"/cancel", nil)
	if code != 409 || !strings.Contains(body, "already ended") {
		t.Errorf("cancel finished: %d %s", code, body)
	}

	// Save: invalid keeps nothing and lists the problem; valid updates the
	// graph, header and run form out of band.
	code, body, _ = c.post("/ui/workflows/"+wid+"/save", url.Values{"document": {`{"name":"qa","nodes":[{"id":"a","type":"robot"}]}`}})
	if code != 422 || !strings.Contains(body, `<code class="path">nodes[0].type</code>`) {
		t.Errorf("invalid save: %d %s", code, body)
	}
	renamed := strings.Replace(uiDoc, `"name":"qa"`, `"name":"qa, renamed"`, 1)
	code, body, _ = c.post("/ui/workflows/"+wid+"/save", url.Values{"document": {renamed}})
	if code != 200 {
		t.Fatalf("save: %d %s", code, body)
	}
	mustContain(t, "save fragment", body, "Saved.", `id="wf-graph" hx-swap-oob="innerHTML"`, `id="run-box" hx-swap-oob="innerHTML"`, "<h1>qa, renamed</h1>")

	// Delete from the list: the row is swapped for nothing.
	code, body, _ = c.post("/ui/workflows/"+wid+"/delete?from=list", nil)
	if code != 200 || body != "" {
		t.Errorf("delete: %d %q", code, body)
	}
	if code, _, _ := s.do(t, "GET", "/workflows/"+wid, ""); code != 404 {
		t.Errorf("workflow still there: %d", code)
	}
	// Its execution page still works, from the node states.
	if code, page, _ := c.get(loc); code != 200 || !strings.Contains(page, "Student") {
		t.Errorf("execution of a deleted workflow: %d", code)
	}
}

// waitEnd waits for the execution's final header event on a subscription
// taken before the run started, then for the store to hold everything
// recorded so far (the event is enqueued before it is published).
func waitEnd(t *testing.T, s *testServer, all <-chan workflow.Event, xid string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-all:
			if ev.ExecutionID == xid && ev.Kind == workflow.EventExecution && ev.Execution != nil && workflow.Terminal(ev.Execution.Status) {
				if err := s.db.Flush(t.Context()); err != nil {
					t.Fatal(err)
				}
				return ev.Execution.Status
			}
		case <-timeout:
			t.Fatalf("execution %s did not end", xid)
		}
	}
}

func TestUIExecutionsFilterFragment(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	wid := createWorkflow(t, s, uiDoc)
	other := createWorkflow(t, s, strings.Replace(uiDoc, `"name":"qa"`, `"name":"other"`, 1))
	x1 := runAndWait(t, s, wid)
	x2 := runAndWait(t, s, other)
	code, body, _ := c.do("GET", "/ui/executions?workflow="+wid, nil, map[string]string{"HX-Request": "true", "HX-Target": "exec-list"})
	if code != 200 || strings.Contains(body, "<!doctype") {
		t.Fatalf("fragment: %d %s", code, clip(body))
	}
	if !strings.Contains(body, x1) || strings.Contains(body, x2) {
		t.Errorf("filter by workflow: want %s only\n%s", x1, clip(body))
	}
	_, body, _ = c.do("GET", "/ui/executions?status=error", nil, map[string]string{"HX-Request": "true", "HX-Target": "exec-list"})
	mustContain(t, "status filter", body, "No executions match these filters.")
	// Paging: page 2 of one page is empty but still has the pager.
	_, body, _ = c.get("/ui/executions?page=2")
	mustContain(t, "page 2", body, "page 2 of 1", "← Newer")
}

func TestUIEscapesUserText(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	doc := `{"name":"<script>alert(1)</script>","metadata":{"description":"<img src=x onerror=alert(2)>"},
		"nodes":[{"id":"n1","type":"ai-processor","config":{"name":"<svg onload=alert(3)>","prompt":"<img src=x onerror=alert(4)>"}}],"edges":[]}`
	wid := createWorkflow(t, s, doc)
	xid := runAndWait(t, s, wid)
	for _, p := range []string{"/ui/workflows", "/ui/workflows/" + wid, "/ui/executions", "/ui/executions/" + xid} {
		_, body, _ := c.get(p)
		for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains unescaped %q", p, bad)
			}
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the name as text", p)
		}
	}
}

func TestUIStaticAssets(t *testing.T) {
	t.Parallel()
	_, c := newUI(t, web.Config{})
	_, page, _ := c.get("/ui/workflows")
	m := regexp.MustCompile(`/ui/static/app\.css\?v=([0-9a-f]{12})`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no checksummed stylesheet URL in the page")
	}
	code, body, hdr := c.get(m[0])
	if code != 200 || !strings.Contains(hdr.Get("Cache-Control"), "immutable") || !strings.HasPrefix(hdr.Get("Content-Type"), "text/css") || !strings.Contains(body, "prefers-color-scheme: dark") {
		t.Errorf("stylesheet: %d %v", code, hdr)
	}
	// Without the checksum it is revalidated instead.
	if _, _, hdr := c.get("/ui/static/app.css"); hdr.Get("Cache-Control") != "no-cache" {
		t.Errorf("unversioned: %q", hdr.Get("Cache-Control"))
	}
	if code, _, _ := c.do("GET", "/ui/static/app.css", nil, map[string]string{"If-None-Match": `"` + m[1] + `"`}); code != 304 {
		t.Errorf("conditional GET: %d", code)
	}
	// Compressed when asked (Go's client asks on its own).
	req, _ := http.NewRequest("GET", c.base+"/ui/static/vendor/htmx.min.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("htmx.min.js not gzipped: %v", resp.Header)
	}
	if code, _, _ := c.get("/ui/static/nope.js"); code != 404 {
		t.Errorf("missing static file: %d", code)
	}
}

// sseEvents reads a text/event-stream into (event, data) pairs until the
// stream ends or stop says so.
func sseEvents(t *testing.T, body io.Reader, stop func(event string) bool) [][2]string {
	t.Helper()
	var out [][2]string
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		case line == "" && event != "":
			out = append(out, [2]string{event, strings.Join(data, "\n")})
			if stop(event) {
				return out
			}
			event, data = "", nil
		}
	}
	return out
}

func TestUIExecutionLiveStream(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	wid := createWorkflow(t, s, uiDoc)
	c.get("/ui/workflows/" + wid)

	// Subscribe to everything first, so the test knows when the run ends.
	all, stopAll := s.exec.SubscribeAll()
	defer stopAll()
	wf, err := s.db.GetWorkflow(t.Context(), wid)
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.exec.Start(wf, executor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Stored(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := c.c.Get(c.base + "/ui/executions/" + run.ID + "/live")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := sseEvents(t, resp.Body, func(e string) bool { return e == "end" })
	go func() {
		for range all {
		}
	}()
	got := map[string]string{}
	for _, e := range events {
		got[e[0]] += e[1]
	}
	if _, ok := got["end"]; !ok {
		t.Fatalf("stream did not end; events: %v", keys(got))
	}
	mustContain(t, "header events", got["header"], `pill-success`)
	mustContain(t, "graph events", got["graph"], `st-completed`)
	mustContain(t, "timeline events", got["timeline"], "tl-ask", "tl-response")
	mustContain(t, "message list", got["messages"]+got["message"], `data-kind="ask"`, `data-kind="response"`)
	if _, ok := got["node-1"]; !ok {
		t.Errorf("no node-1 event; events: %v", keys(got))
	}
	// A finished execution: everything at once, then end.
	resp2, err := c.c.Get(c.base + "/ui/executions/" + run.ID + "/live")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	events = sseEvents(t, resp2.Body, func(e string) bool { return e == "end" })
	if len(events) == 0 || events[len(events)-1][0] != "end" {
		t.Errorf("finished execution stream: %v", events)
	}
	if code, _, _ := c.get("/ui/executions/nope/live"); code != 404 {
		t.Errorf("live of unknown execution: %d", code)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestUIBusLiveStopsMonitor(t *testing.T) {
	t.Parallel()
	bus := &fakeBus{stopped: make(chan struct{})}
	_, c := newUI(t, web.Config{Bus: bus})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/ui/bus/live", nil)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := sseEvents(t, resp.Body, func(e string) bool { return e == "traffic" })
	if len(events) == 0 || events[len(events)-1][0] != "traffic" {
		t.Fatalf("no traffic event: %v", events)
	}
	row := events[len(events)-1][1]
	mustContain(t, "traffic row", row, "agent:messages:node-x-teacher", "node-x-student", "&lt;b&gt;hi&lt;/b&gt;", `tag-query`)
	cancel()
	resp.Body.Close()
	select {
	case <-bus.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the monitor did not stop when the page went away")
	}
	_, frag, _ := c.do("GET", "/ui/bus/info", nil, map[string]string{"HX-Request": "true"})
	mustContain(t, "bus info fragment", frag, "connected", "0.42 ms")
}

func TestUISecretsStayHidden(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	doc := strings.Replace(uiDoc, `"variables":[{"name":"question_topic","value":"photosynthesis"}]`,
		`"variables":[{"name":"question_topic","value":"photosynthesis"},{"name":"api_token","value":"hunter2-secret","secret":true}]`, 1)
	wid := createWorkflow(t, s, doc)
	code, page, _ := c.get("/ui/workflows/" + wid)
	if code != 200 || strings.Contains(page, "hunter2-secret") || !strings.Contains(page, workflow.Mask) {
		t.Fatalf("workflow page shows the secret, or no mask (%d)", code)
	}
	mustContain(t, "run form", page, `name="input.api_token" type="password" value=""`)
	// Saving the editor's text (with the mask) keeps the stored secret.
	m := regexp.MustCompile(`(?s)<textarea id="editor"[^>]*>(.*?)</textarea>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no editor")
	}
	text := strings.NewReplacer("&#34;", `"`, "&lt;", "<", "&gt;", ">", "&amp;", "&", "&#39;", "'").Replace(m[1])
	if code, body, _ := c.post("/ui/workflows/"+wid+"/save", url.Values{"document": {text}}); code != 200 {
		t.Fatalf("save: %d %s", code, body)
	}
	stored, err := s.db.GetWorkflow(t.Context(), wid)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range stored.Variables {
		if v.Name == "api_token" && v.Value != "hunter2-secret" {
			t.Errorf("the secret became %v", v.Value)
		}
	}
	// Running with the secret field left empty uses the stored value.
	code, body, hdr := c.post("/ui/workflows/"+wid+"/run", url.Values{"input.question_topic": {"tides"}, "input.api_token": {""}})
	if code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	x, err := s.db.GetExecution(t.Context(), strings.TrimPrefix(hdr.Get("HX-Location"), "/ui/executions/"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Inputs["api_token"]; ok {
		t.Errorf("an empty secret field overrode the stored value: %v", x.Inputs)
	}
}

// The live execution page must not put an SSE listener inside what another
// event replaces: htmx registers the listeners of swapped-in content only
// when it settles (20 ms later), so an event in that window found no
// listener and was lost (a message missing from the list for good, the
// first streamed words of a node). Every listener stays in the page; those
// that add to a list or an output box name it with hx-target.
func TestUILivePageListenersAreNeverReplaced(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	wid := createWorkflow(t, s, uiDoc)
	wf, err := s.db.GetWorkflow(t.Context(), wid)
	if err != nil {
		t.Fatal(err)
	}
	// A running execution: its page is the live one.
	xid := workflow.NewID()
	now := time.Now().UTC()
	if err := s.db.Record(t.Context(), workflow.Event{ExecutionID: xid, Seq: 1, Time: now, Kind: workflow.EventExecution,
		Execution: &workflow.Execution{ID: xid, WorkflowID: wf.ID, WorkflowName: wf.Name, Status: workflow.ExecRunning,
			CreatedAt: now, StartTime: &now, RequestedMode: workflow.ModeSimple, Mode: workflow.ModeSimple}}); err != nil {
		t.Fatal(err)
	}
	code, page, _ := c.get("/ui/executions/" + xid)
	if code != 200 || !strings.Contains(page, "sse-connect=") {
		t.Fatalf("live page: %d, sse-connect present: %v", code, strings.Contains(page, "sse-connect="))
	}

	tag := regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>`)
	attr := func(attrs, name string) (string, bool) {
		m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(attrs)
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	void := map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true,
		"img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}
	type open struct{ name, swap string }
	var stack []open
	listeners := map[string]bool{}
	for _, m := range tag.FindAllStringSubmatch(page, -1) {
		closing, name, attrs := m[1] == "/", strings.ToLower(m[2]), m[3]
		if closing {
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].name == name {
					stack = stack[:i]
					break
				}
			}
			continue
		}
		swap, isListener := attr(attrs, "sse-swap")
		if isListener {
			listeners[swap] = true
			for _, o := range stack {
				if o.swap != "" {
					t.Errorf("listener for %q is inside the %q listener's content, which that event replaces", swap, o.swap)
				}
			}
			if target, ok := attr(attrs, "hx-target"); ok {
				id := strings.TrimPrefix(strings.Fields(target)[0], "#")
				if !strings.Contains(page, `id="`+id+`"`) {
					t.Errorf("listener for %q targets %q, which is not in the page", swap, target)
				}
			}
		}
		if void[name] || strings.HasSuffix(strings.TrimSpace(attrs), "/") {
			continue
		}
		stack = append(stack, open{name, swap})
	}
	// The events the live stream sends (ui_live_execution.go) all have a listener.
	for _, ev := range []string{"header", "graph", "timeline", "messages", "message", "context", "logs", "log", "node-1", "out-1", "delta-1"} {
		if !listeners[ev] {
			t.Errorf("no listener for the %q event", ev)
		}
	}
}

// TestUIFallbackBanner checks the execution page's fallback banner: for a run that fell back to
// simple mode at start, for one that lost Redis in the middle (still pubsub, the rest
// in-process), and none for a run that kept Redis.
func TestUIFallbackBanner(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	wid := createWorkflow(t, s, uiDoc)
	now := time.Now().UTC()
	for _, tc := range []struct {
		name, mode, reason string
		wants, unwanted    []string
	}{
		{"at start", workflow.ModeSimple, "redis is unreachable: dial tcp 127.0.0.1:1: connect: connection refused",
			[]string{"banner-fallback", "Pub/Sub was not available, so this run fell back to simple mode.", "Reason: redis is unreachable"},
			[]string{"Redis was lost during this run"}},
		{"mid-run", workflow.ModePubSub, "Redis connection lost at 2026-12-03T08:01:02Z: bus: redis pub/sub connection lost; the rest of the run went in-process",
			[]string{"banner-fallback", "Redis was lost during this run, so the rest of it went in-process.", "Reason: Redis connection lost at 2026-12-03T08:01:02Z"},
			[]string{"Pub/Sub was not available"}},
		{"kept redis", workflow.ModePubSub, "", nil, []string{"banner-fallback"}},
	} {
		xid := workflow.NewID()
		if err := s.db.Record(t.Context(), workflow.Event{ExecutionID: xid, Seq: 1, Time: now, Kind: workflow.EventExecution,
			Execution: &workflow.Execution{ID: xid, WorkflowID: wid, WorkflowName: "qa", Status: workflow.ExecSuccess,
				CreatedAt: now, StartTime: &now, EndTime: &now, RequestedMode: workflow.ModePubSub, Mode: tc.mode,
				FallbackReason: tc.reason}}); err != nil {
			t.Fatal(err)
		}
		code, page, _ := c.get("/ui/executions/" + xid)
		if code != 200 {
			t.Fatalf("%s: GET execution page: %d", tc.name, code)
		}
		mustContain(t, tc.name+" page", page, tc.wants...)
		for _, u := range tc.unwanted {
			if strings.Contains(page, u) {
				t.Errorf("%s page contains %q", tc.name, u)
			}
		}
	}
}
