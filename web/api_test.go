package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

type testServer struct {
	*httptest.Server
	db   *store.DB
	exec *executor.Executor
}

// testLogger writes a test's logs to its output, shown when it fails or
// runs with -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serverOption changes what newServer builds beyond its web.Config.
type serverOption func(*serverParts)

type serverParts struct {
	model  executor.LLM
	logger *slog.Logger
	runner func(web.Runner) web.Runner // wraps the executor, when set
}

// withRunner serves through wrap(executor), so a test can see what the
// handlers ask of the runner.
func withRunner(wrap func(web.Runner) web.Runner) serverOption {
	return func(p *serverParts) { p.runner = wrap }
}

// withModel runs the server's executions on model instead of the demo
// model.
func withModel(model executor.LLM) serverOption {
	return func(p *serverParts) { p.model = model }
}

// withLogger sends the server's logs to logger instead of the test's
// output.
func withLogger(logger *slog.Logger) serverOption {
	return func(p *serverParts) { p.logger = logger }
}

// newServer serves cfg over a database of its own in t.TempDir(), with the
// demo model unless an option says otherwise, and stops both when the test
// ends.
func newServer(t *testing.T, cfg web.Config, opts ...serverOption) *testServer {
	t.Helper()
	p := serverParts{model: llm.NewDemo(), logger: testLogger(t)}
	for _, o := range opts {
		o(&p)
	}
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "web.db"), p.logger)
	if err != nil {
		t.Fatal(err)
	}
	ex := executor.New(db, p.model, nil, p.logger, executor.Config{})
	var runner web.Runner = ex
	if p.runner != nil {
		runner = p.runner(ex)
	}
	srv, err := web.New(cfg, db, runner, p.logger)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		// t.Context() is done by now: the shutdown gets its own deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ex.Shutdown(ctx)
		db.Close()
	})
	return &testServer{Server: ts, db: db, exec: ex}
}

func (s *testServer) do(t *testing.T, method, path, body string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

const qaDoc = `{"name":"qa","metadata":{"team":"blue"},"nodes":[
 {"id":"start","type":"start"},
 {"id":"student","type":"ai-processor","config":{"can_communicate":true,"prompt":"CALL: ask_node('teacher', 'What is {{topic}}?')"}},
 {"id":"teacher","type":"ai-processor","config":{"can_communicate":true,"system_prompt":"You teach."}},
 {"id":"end","type":"end"}],
 "edges":[{"from":"start","to":"student"},{"from":"student","to":"end"}],
 "variables":[{"name":"topic","value":"rain"}]}`

func TestAPIScenarios(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{BodyLimit: 64 << 10})
	code, body, _ := s.do(t, "POST", "/workflows/", qaDoc)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	created := decode[map[string]any](t, body)
	id, _ := created["id"].(string)
	if id == "" || created["_id"] != id || created["status"] != "draft" {
		t.Fatalf("created %v", created)
	}
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string // substring
	}{
		{"get", "GET", "/workflows/" + id, "", 200, `"team":"blue"`},
		{"list", "GET", "/workflows/", "", 200, `"_id":"` + id + `"`},
		{"list without slash", "GET", "/workflows", "", 200, id},
		{"get unknown", "GET", "/workflows/nope", "", 404, `"code":"not_found"`},
		{"malformed create", "POST", "/workflows/", `{"name":`, 400, `"code":"malformed"`},
		{"invalid create", "POST", "/workflows/", `{"name":"x","nodes":[{"id":"a","type":"warp"}]}`, 422, `"path":"nodes[0].type"`},
		{"too large", "POST", "/workflows/", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, 413, `"code":"too_large"`},
		{"partial update", "PUT", "/workflows/" + id, `{"name":"renamed","status":"active"}`, 200, `"name":"renamed"`},
		{"update keeps nodes", "GET", "/workflows/" + id, "", 200, `"id":"teacher"`},
		{"invalid update", "PUT", "/workflows/" + id, `{"edges":[{"from":"start","to":"ghost"}]}`, 422, `edge to \"ghost\": no node has that id`},
		{"invalid update stored nothing", "GET", "/workflows/" + id, "", 200, `"name":"renamed"`},
		{"update unknown", "PUT", "/workflows/nope", `{"name":"x"}`, 404, "not_found"},
		{"execute bad inputs", "POST", "/workflows/" + id + "/execute", `{"inputs":[1]}`, 422, `"path":"inputs"`},
		{"execute bad mode", "POST", "/workflows/" + id + "/execute", `{"communication_mode":"smoke"}`, 422, `"path":"communication_mode"`},
		{"execute unknown", "POST", "/workflows/nope/execute", `{}`, 404, "not_found"},
		{"execution unknown", "GET", "/workflows/executions/nope", "", 404, "not_found"},
		{"executions of unknown", "GET", "/workflows/nope/executions", "", 404, "not_found"},
		{"bad paging", "GET", "/workflows/" + id + "/executions?limit=0", "", 400, `"path":"limit"`},
		{"healthz", "GET", "/healthz", "", 200, `"status":"ok"`},
		{"readyz", "GET", "/readyz", "", 200, `"database":{"status":"ok"}`},
		{"unknown route", "GET", "/nowhere", "", 404, `"detail":"Not Found"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := s.do(t, tt.method, tt.path, tt.body)
			if code != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("%s %s: %d %s; want %d containing %s", tt.method, tt.path, code, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestExecuteSyncAsyncAndList(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	_, body, _ := s.do(t, "POST", "/workflows/", qaDoc)
	id := decode[map[string]any](t, body)["id"].(string)

	code, body, _ := s.do(t, "POST", "/workflows/"+id+"/execute", `{"inputs":{"topic":"snow"},"async_execution":false}`)
	if code != 200 {
		t.Fatalf("sync execute: %d %s", code, body)
	}
	x := decode[workflow.Execution](t, body)
	if x.Status != "success" || x.ID == "" || len(x.CommunicationLog) < 2 || x.CommunicationLog[0].Content != "What is snow?" {
		t.Fatalf("sync record: %s", body)
	}

	code, body, _ = s.do(t, "POST", "/workflows/"+id+"/execute", `{"async_execution":true}`)
	if code != 202 {
		t.Fatalf("async execute: %d %s", code, body)
	}
	acc := decode[map[string]any](t, body)
	eid, _ := acc["execution_id"].(string)
	if eid == "" || acc["workflow_id"] != id || acc["started_at"] == nil {
		t.Fatalf("async answer %s", body)
	}
	// Follow it on the event stream until it ends.
	resp, err := http.Get(s.URL + "/workflows/executions/" + eid + "/events")
	if err != nil {
		t.Fatal(err)
	}
	stream, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(stream), "event: snapshot") || !strings.Contains(string(stream), "event: end") {
		t.Fatalf("event stream: %s", stream)
	}
	code, body, _ = s.do(t, "GET", "/workflows/executions/"+eid, "")
	if code != 200 || decode[workflow.Execution](t, body).Status != "success" {
		t.Fatalf("async record: %d %s", code, body)
	}
	code, body, hdr := s.do(t, "GET", "/workflows/"+id+"/executions?limit=1", "")
	list := decode[[]workflow.Execution](t, body)
	if code != 200 || len(list) != 1 || list[0].ID != eid || hdr.Get("X-Total-Count") != "2" {
		t.Fatalf("list: %d %s total %s", code, body, hdr.Get("X-Total-Count"))
	}
	code, body, _ = s.do(t, "POST", "/workflows/executions/"+eid+"/cancel", "")
	if code != 409 {
		t.Fatalf("cancel finished: %d %s", code, body)
	}
	// Deleting the workflow keeps its executions.
	if code, _, _ := s.do(t, "DELETE", "/workflows/"+id, ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := s.do(t, "GET", "/workflows/executions/"+eid, ""); code != 200 {
		t.Fatalf("execution lost with its workflow: %d", code)
	}
	if code, _, _ := s.do(t, "DELETE", "/workflows/"+id, ""); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
}

func TestFiftyConcurrentExecutionsNoCrossTalk(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	doc := `{"name":"iso","nodes":[
		{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"CALL: set_shared_context('me', '{{n}}') CALL: ask_node('b', 'are you {{n}}?')"}},
		{"id":"b","type":"ai-processor","config":{"can_communicate":true}}]}`
	_, body, _ := s.do(t, "POST", "/workflows/", doc)
	id := decode[map[string]any](t, body)["id"].(string)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := fmt.Sprintf("caller-%d", i)
			resp, err := http.Post(s.URL+"/workflows/"+id+"/execute", "application/json",
				bytes.NewBufferString(`{"inputs":{"n":"`+me+`"}}`))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var x workflow.Execution
			if err := json.NewDecoder(resp.Body).Decode(&x); err != nil {
				errs <- err
				return
			}
			if x.Status != "success" || x.SharedContext["me"] != me {
				errs <- fmt.Errorf("%s: status %s shared %v", me, x.Status, x.SharedContext)
				return
			}
			for _, c := range x.CommunicationLog {
				if strings.Contains(c.Content, "caller-") && !strings.Contains(c.Content, me) {
					errs <- fmt.Errorf("%s saw %q", me, c.Content)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestOriginalExamplesImportAndRun(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "shared", "compat", "original-examples")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing", dir)
		}
		t.Skipf("skipping: %s not present", dir)
	}
	s := newServer(t, web.Config{})
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		code, body, _ := s.do(t, "POST", "/workflows/", string(data))
		if code != 201 {
			t.Fatalf("%s: %d %s", f, code, body)
		}
		id := decode[map[string]any](t, body)["id"].(string)
		code, body, _ = s.do(t, "POST", "/workflows/"+id+"/execute", `{}`)
		x := decode[workflow.Execution](t, body)
		if code != 200 || x.Status != "success" {
			t.Fatalf("%s: %d status %s: %s", f, code, x.Status, x.Error)
		}
	}
}

func TestSecretVariablesMaskedInAPI(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	doc := `{"name":"s","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"key {{key}}"}}],
		"variables":[{"name":"key","value":"sk-very-secret-1","secret":true},{"name":"plain","value":"visible"}]}`
	code, body, _ := s.do(t, "POST", "/workflows/", doc)
	if code != 201 || strings.Contains(string(body), "sk-very-secret-1") || !strings.Contains(string(body), "visible") {
		t.Fatalf("create: %d %s", code, body)
	}
	id := decode[map[string]any](t, body)["id"].(string)
	for _, path := range []string{"/workflows/" + id, "/workflows/"} {
		_, body, _ = s.do(t, "GET", path, "")
		if strings.Contains(string(body), "sk-very-secret-1") || !strings.Contains(string(body), "••••") {
			t.Fatalf("GET %s leaks or does not mask: %s", path, body)
		}
	}
	// Sending the masked document back keeps the stored secret.
	_, body, _ = s.do(t, "GET", "/workflows/"+id, "")
	if code, body, _ := s.do(t, "PUT", "/workflows/"+id, string(body)); code != 200 {
		t.Fatalf("put back: %d %s", code, body)
	}
	stored, err := s.db.GetWorkflow(t.Context(), id)
	if err != nil || stored.Variables[0].Value != "sk-very-secret-1" {
		t.Fatalf("stored secret lost: %+v %v", stored.Variables, err)
	}
	// The execution record shows the mask where the demo model echoed the prompt.
	_, body, _ = s.do(t, "POST", "/workflows/"+id+"/execute", `{}`)
	if strings.Contains(string(body), "sk-very-secret-1") || !strings.Contains(string(body), "key ••••") {
		t.Fatalf("execution record: %s", body)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{Limits: workflow.Limits{MaxNodes: 2, MaxPromptBytes: 10, MaxVariables: 1, MaxValueBytes: 5}})
	tests := []struct{ name, path, body, want string }{
		{"nodes", "/workflows/", `{"name":"x","nodes":[{"id":"a","type":"start"},{"id":"b","type":"end"},{"id":"c","type":"end"}]}`, `{"path":"nodes","message":"has 3 nodes; the limit is 2"}`},
		{"prompt", "/workflows/", `{"name":"x","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"far too long a prompt"}}]}`, `"path":"nodes[0].config.prompt"`},
		{"value", "/workflows/", `{"name":"x","nodes":[{"id":"a","type":"start"}],"variables":[{"name":"v","value":"toolong"}]}`, `"path":"variables[0].value"`},
	}
	for _, tt := range tests {
		code, body, _ := s.do(t, "POST", tt.path, tt.body)
		if code != 422 || !strings.Contains(string(body), tt.want) {
			t.Errorf("%s: %d %s", tt.name, code, body)
		}
	}
	_, body, _ := s.do(t, "POST", "/workflows/", `{"name":"x","nodes":[{"id":"a","type":"start"}]}`)
	id := decode[map[string]any](t, body)["id"].(string)
	code, body, _ := s.do(t, "POST", "/workflows/"+id+"/execute", `{"inputs":{"a":"1","b":"2"}}`)
	if code != 422 || !strings.Contains(string(body), "has 2 inputs; the limit is 1") {
		t.Errorf("inputs: %d %s", code, body)
	}
}

func TestDatabaseFailureReachesTheCaller(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	_, body, _ := s.do(t, "POST", "/workflows/", `{"name":"x","nodes":[{"id":"a","type":"start"}]}`)
	id := decode[map[string]any](t, body)["id"].(string)
	s.db.Close()
	code, body, _ := s.do(t, "POST", "/workflows/"+id+"/execute", `{}`)
	if code < 500 || !strings.Contains(string(body), `"detail"`) || strings.Contains(string(body), "sql") {
		t.Fatalf("execute with the database closed: %d %s", code, body)
	}
	code, body, _ = s.do(t, "GET", "/readyz", "")
	if code != 503 || !strings.Contains(string(body), `"database":{"error"`) {
		t.Fatalf("readyz with the database closed: %d %s", code, body)
	}
}

// TestAPIJSONNotHTMLEscaped: the API writes "&", "<" and ">" as they are,
// in every answer: a workflow, the list, an execution record, an error and
// the event stream (a README command greps for "Q&A" in the list).
func TestAPIJSONNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	doc := `{"name":"Q&A <b>","nodes":[{"id":"start","type":"start"},{"id":"end","type":"end"}],"edges":[{"from":"start","to":"end"}],
	 "variables":[{"name":"q","value":"salt & pepper <3"}]}`
	code, body, _ := s.do(t, "POST", "/workflows/", doc)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	id := decode[map[string]any](t, body)["id"].(string)
	want := func(what string, body []byte, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(string(body), p) {
				t.Errorf("%s lacks %s:\n%s", what, p, body)
			}
		}
		for _, esc := range []string{`\u0026`, `\u003c`, `\u003e`} {
			if strings.Contains(string(body), esc) {
				t.Errorf("%s holds %s:\n%s", what, esc, body)
			}
		}
	}
	want("create", body, `"name":"Q&A <b>"`)
	_, body, _ = s.do(t, "GET", "/workflows/", "")
	want("list", body, `"name":"Q&A <b>"`)
	_, body, _ = s.do(t, "GET", "/workflows/"+id, "")
	want("get", body, `"value":"salt & pepper <3"`)
	code, body, _ = s.do(t, "POST", "/workflows/"+id+"/execute", `{"inputs":{"q":"a & b"}}`)
	if code != 200 {
		t.Fatalf("execute: %d %s", code, body)
	}
	x := decode[workflow.Execution](t, body)
	want("execution", body, `"workflow_name":"Q&A <b>"`, `"a & b"`)
	_, body, _ = s.do(t, "GET", "/workflows/nope&<x>", "")
	want("error", body, `nope&<x>`)
	resp, err := http.Get(s.URL + "/workflows/executions/" + x.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	stream, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want("event stream", stream, `"workflow_name":"Q&A <b>"`)
}

// TestQueryNeverIgnored: a query parameter that does not parse or holds a
// value the endpoint does not know is a 400 naming it, in the API and the
// dashboard alike, never a list with the filter silently dropped.
func TestQueryNeverIgnored(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	code, body, _ := s.do(t, "POST", "/workflows/", `{"name":"q","nodes":[{"id":"start","type":"start"},{"id":"end","type":"end"}],"edges":[{"from":"start","to":"end"}]}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	id := decode[map[string]any](t, body)["id"].(string)
	if code, body, _ := s.do(t, "POST", "/workflows/"+id+"/execute", `{}`); code != 200 {
		t.Fatalf("execute: %d %s", code, body)
	}
	execs := "/workflows/" + id + "/executions"
	tests := []struct {
		path, param string
	}{
		{execs + "?status=error;", "status"},
		{execs + "?status=error;x=1", "status"},
		{execs + "?limit=1&status=error;", "status"},
		{execs + "?status=%zz", "status"},
		{execs + "?status=nonsense", "status"},
		{execs + "?status=ERROR", "status"},
		{execs + "?limit=abc", "limit"},
		{execs + "?limit=0", "limit"},
		{execs + "?limit=100000", "limit"},
		{execs + "?limit=1;", "limit"},
		{execs + "?offset=-1", "offset"},
		{execs + "?offset=x", "offset"},
		{execs + "?skip=-3", "skip"},
		{"/workflows/?limit=-1", "limit"},
		{"/workflows/?offset=1;", "offset"},
		{"/workflows/?a%3Bb;=1", "a;b"},
		{"/ui/executions?status=error;", "status"},
		{"/ui/executions?status=bogus", "status"},
		{"/ui/executions?page=0", "page"},
		{"/ui/executions?page=two", "page"},
		{"/ui/executions?workflow=" + id + ";", "workflow"},
		{"/ui/workflows?page=-1", "page"},
		{"/ui/workflows?page=1;", "page"},
		{"/ui/login?next=%2Fui%2F;", "next"},
	}
	for _, tt := range tests {
		code, body, _ := c.get(tt.path)
		want := `"` + tt.param + `"`
		if strings.HasPrefix(body, "<!doctype") {
			want = "&#34;" + tt.param + "&#34;" // the error page escapes the quotes
		}
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 400 naming %s:\n%s", tt.path, code, want, clip(body))
		}
	}
	// The good forms still work: an empty value is no filter.
	for _, p := range []string{execs + "?status=success&limit=5&offset=0", execs + "?status=", "/ui/executions?status=&workflow=", "/ui/executions?status=success&page=1", "/ui/workflows?page=1"} {
		if code, body, _ := c.get(p); code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", p, code, clip(body))
		}
	}
}
