package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// echoServer answers every request with what it received, as JSON, and
// keeps the last request's headers for the test to read.
type echoServer struct {
	*httptest.Server
	mu   sync.Mutex
	last http.Header
}

func newEchoServer(t *testing.T) *echoServer {
	s := &echoServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.last = r.Header.Clone()
		s.mu.Unlock()
		var parsed any
		_ = json.Unmarshal(body, &parsed)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", "yes")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.Query(), "json": parsed, "text": string(body),
			"auth": r.Header.Get("Authorization"), "content_type": r.Header.Get("Content-Type"),
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *echoServer) header(k string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last.Get(k)
}

// loopbackOK lets action nodes reach the test servers, which listen on
// loopback, as an operator would with --http-allow-private 127.0.0.1.
var loopbackOK = executor.HTTPConfig{AllowPrivate: []string{"127.0.0.1"}}

// TestHTTPNodeTemplatesAuthAndMasking: the url, params, headers and body
// are rendered (a whole-placeholder value keeps its type), the bearer
// token comes from a secret variable and reaches the server but is masked
// in the record, and the JSON response is the output's body.
func TestHTTPNodeTemplatesAuthAndMasking(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{HTTP: loopbackOK})
	w := parse(t, `{"name":"h","nodes":[{"id":"s","type":"start"},
		{"id":"call","type":"webhook","config":{"url":"{{base}}/items/{{id}}","method":"POST",
			"headers":{"X-Run":"{{execution_id}}"},"params":{"q":"{{topic}}","v":1},
			"body":{"topic":"{{topic}}","n":"{{count}}","note":"n={{count}}"},
			"auth":{"type":"bearer","token":"{{api_token}}"},"expected_status":[200,201]}},
		{"id":"e","type":"end"}],
		"edges":[{"from":"s","to":"call"},{"from":"call","to":"e"}],
		"variables":[{"name":"base","value":"`+srv.URL+`"},{"name":"id","value":"42"},{"name":"topic","value":"tides & moons"},
			{"name":"count","value":3,"type":"number"},{"name":"api_token","value":"tok-1234567890","secret":true}]}`)
	x := e.run(t, w, executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	if got := srv.header("Authorization"); got != "Bearer tok-1234567890" {
		t.Errorf("the server got Authorization %q", got)
	}
	if got := srv.header("X-Run"); got != x.ID {
		t.Errorf("X-Run %q, want the execution id %s", got, x.ID)
	}
	out := x.NodeStates["call"].Output.(map[string]any)
	body := out["body"].(map[string]any)
	if out["status"] != float64(200) || out["attempts"] != float64(1) || out["headers"].(map[string]any)["x-echo"] != "yes" {
		t.Errorf("output %v", out)
	}
	if body["method"] != "POST" || body["path"] != "/items/42" || fmt.Sprint(body["query"]) != "map[q:[tides & moons] v:[1]]" {
		t.Errorf("request seen %v", body)
	}
	if j := body["json"].(map[string]any); j["n"] != float64(3) || j["note"] != "n=3" || j["topic"] != "tides & moons" {
		t.Errorf("body sent %v", j)
	}
	if body["content_type"] != "application/json" {
		t.Errorf("content type %v", body["content_type"])
	}
	if body["auth"] != "Bearer "+workflow.Mask {
		t.Errorf("the echoed token is not masked in the record: %v", body["auth"])
	}
	if raw := mustJSON(t, x); strings.Contains(raw, "tok-1234567890") {
		t.Error("the secret token is in the record")
	}
}

// TestHTTPNodeAuthKinds: basic and api_key reach the server as headers.
func TestHTTPNodeAuthKinds(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{HTTP: loopbackOK})
	for _, tc := range []struct{ auth, header, want string }{
		{`{"type":"basic","username":"ann","password":"{{pw}}"}`, "Authorization", "Basic YW5uOnMzY3JldA=="},
		{`{"type":"api_key","key":"{{pw}}"}`, "X-API-Key", "s3cret"},
		{`{"type":"api_key","key":"k-{{pw}}","header":"X-Token"}`, "X-Token", "k-s3cret"},
	} {
		w := parse(t, `{"name":"a","nodes":[{"id":"s","type":"start"},{"id":"call","type":"http","config":{"url":"`+srv.URL+`","auth":`+tc.auth+`}}],
			"edges":[{"from":"s","to":"call"}],"variables":[{"name":"pw","value":"s3cret"}]}`)
		x := e.run(t, w, executor.Options{})
		if x.Status != workflow.ExecSuccess {
			t.Fatalf("%s: status %s: %s", tc.auth, x.Status, x.Error)
		}
		if got := srv.header(tc.header); got != tc.want {
			t.Errorf("%s: %s = %q, want %q", tc.auth, tc.header, got, tc.want)
		}
		if m := x.NodeStates["call"].Output.(map[string]any)["body"].(map[string]any)["method"]; m != "GET" {
			t.Errorf("method %v, want GET for a node without body", m)
		}
	}
}

// TestHTTPNodeRetriesAndExpectedStatus: a 503 is tried again up to
// retries times; a status outside expected_status that retrying will not
// change (a 202 when 200 is expected, a 404) fails at once; a text body is
// the output as text.
func TestHTTPNodeRetriesAndExpectedStatus(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/flaky":
			if n%3 != 0 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "finally")
		case "/accepted":
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{HTTP: loopbackOK})
	node := func(path, extra string) *workflow.Workflow {
		return parse(t, `{"name":"r","nodes":[{"id":"s","type":"start"},{"id":"call","type":"http","config":{"url":"`+srv.URL+path+`","retry_delay":0`+extra+`}}],
			"edges":[{"from":"s","to":"call"}]}`)
	}
	cases := []struct {
		name, path, extra string
		ok                bool
		calls             int64
		errPart           string
	}{
		{"two retries reach the third answer", "/flaky", `,"retries":2`, true, 3, ""},
		{"one retry is not enough", "/flaky", `,"retries":1`, false, 2, "503 Service Unavailable, not a 2xx status: busy (after 2 attempts)"},
		{"an unexpected 202 is not retried", "/accepted", `,"retries":5,"expected_status":200`, false, 1, "202 Accepted, not one of [200]"},
		{"an expected 202 passes", "/accepted", `,"expected_status":[200,202]`, true, 1, ""},
		{"a 404 is not retried", "/missing", `,"retries":5`, false, 1, "404 Not Found"},
	}
	for _, tc := range cases {
		calls.Store(0)
		x := e.run(t, node(tc.path, tc.extra), executor.Options{})
		if got := calls.Load(); got != tc.calls {
			t.Errorf("%s: %d requests, want %d", tc.name, got, tc.calls)
		}
		st := x.NodeStates["call"]
		if tc.ok != (x.Status == workflow.ExecSuccess) || !strings.Contains(st.Error, tc.errPart) {
			t.Errorf("%s: status %s, node error %q, want ok=%v and %q", tc.name, x.Status, st.Error, tc.ok, tc.errPart)
		}
		if tc.name == "two retries reach the third answer" {
			if out := st.Output.(map[string]any); out["body"] != "finally" || out["attempts"] != float64(3) {
				t.Errorf("output %v", out)
			}
		}
	}
}

// TestHTTPNodeRefusesLoopbackAndHostsNotAllowed: the http node keeps the
// http_request tool's rules: a loopback address needs the operator's
// --http-allow-private, and a host must be allowed by the workflow or the
// operator.
func TestHTTPNodeRefusesLoopbackAndHostsNotAllowed(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{HTTP: executor.HTTPConfig{Allow: []string{"127.0.0.1"}}})
	doc := func(url string) *workflow.Workflow {
		return parse(t, `{"name":"ssrf","nodes":[{"id":"s","type":"start"},{"id":"call","type":"http","config":{"url":"`+url+`","retries":3,"retry_delay":0}}],
			"edges":[{"from":"s","to":"call"}]}`)
	}
	x := e.run(t, doc(srv.URL), executor.Options{})
	if st := x.NodeStates["call"]; x.Status != workflow.ExecError || !strings.Contains(st.Error, "a loopback address") || strings.Contains(st.Error, "attempts") {
		t.Errorf("loopback: status %s, error %q (want refused once, not retried)", x.Status, st.Error)
	}
	bad := parse(t, `{"name":"crlf","nodes":[{"id":"s","type":"start"},{"id":"call","type":"http","config":{"url":"`+srv.URL+`","headers":{"X-A":"{{v}}"},"retries":3}}],
		"edges":[{"from":"s","to":"call"}],"variables":[{"name":"v","value":"a\r\nHost: evil"}]}`)
	if x := e.run(t, bad, executor.Options{}); !strings.Contains(x.NodeStates["call"].Error, "header X-A holds a line break") {
		t.Errorf("a header with a line break: %q", x.NodeStates["call"].Error)
	}
	x = e.run(t, doc("http://api.example.invalid/x"), executor.Options{})
	if st := x.NodeStates["call"]; !strings.Contains(st.Error, `host "api.example.invalid" is not allowed`) {
		t.Errorf("not allowed: %q", st.Error)
	}
}

// TestTransformerAndFilterOutputs: a transformer's template keeps the
// types of whole placeholders; its expression builds a value; a filter
// that passes hands its input on.
func TestTransformerAndFilterOutputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	w := parse(t, `{"name":"t","nodes":[{"id":"s","type":"start"},
		{"id":"shape","type":"transformer","config":{"template":{"who":"{{name}}","n":"{{n}}","list":["{{n}}","x{{n}}"],"fixed":true}}},
		{"id":"calc","type":"transformer","config":{"expression":"{'double': outputs.shape.n * 2, 'upper': upper(inputs.name)}"}},
		{"id":"keep","type":"filter","config":{"condition":"input.double > 10"}},
		{"id":"e","type":"end"}],
		"edges":[{"from":"s","to":"shape"},{"from":"shape","to":"calc"},{"from":"calc","to":"keep"},{"from":"keep","to":"e"}],
		"variables":[{"name":"name","value":"ada"},{"name":"n","value":7}]}`)
	x := e.run(t, w, executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	if got := mustJSON(t, x.NodeStates["shape"].Output); !strings.Contains(strings.Join(strings.Fields(got), ""), `{"fixed":true,"list":[7,"x7"],"n":7,"who":"ada"}`) {
		t.Errorf("shape %s", got)
	}
	calc := x.NodeStates["calc"].Output.(map[string]any)
	if calc["double"] != float64(14) || calc["upper"] != "ADA" {
		t.Errorf("calc %v", calc)
	}
	if keep := x.NodeStates["keep"].Output; fmt.Sprint(keep) != fmt.Sprint(calc) {
		t.Errorf("the filter's output %v, want its input %v", keep, calc)
	}
}

// TestDelayEndsOnCancelAndShutdown: a long delay ends at once when the
// execution is cancelled (cancelled) or the server shuts down
// (interrupted), as any other node.
func TestDelayEndsOnCancelAndShutdown(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"cancel", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
			w := parse(t, `{"name":"d","nodes":[{"id":"s","type":"start"},{"id":"wait","type":"delay","config":{"seconds":86400}},{"id":"e","type":"end"}],
				"edges":[{"from":"s","to":"wait"},{"from":"wait","to":"e"}]}`)
			ctx := t.Context()
			if err := e.db.CreateWorkflow(ctx, w); err != nil {
				t.Fatal(err)
			}
			events, stop := e.exec.SubscribeAll()
			defer stop()
			r, err := e.exec.Start(w, executor.Options{})
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, events, func(ev workflow.Event) bool {
				return ev.Kind == workflow.EventNode && ev.Node.NodeID == "wait" && ev.Node.Status == workflow.NodeRunning
			})
			want := workflow.ExecCancelled
			if how == "cancel" {
				e.exec.Cancel(r.ID)
			} else {
				want = workflow.ExecInterrupted
				done, cancel := context.WithCancel(ctx)
				cancel() // no grace: the running executions are stopped at once
				_ = e.exec.Shutdown(done)
			}
			status, err := r.Wait(ctx)
			if err != nil || status != want {
				t.Fatalf("status %s err %v, want %s", status, err, want)
			}
			x, err := e.db.GetExecution(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st := x.NodeStates["wait"]; st.Status != workflow.NodeCancelled {
				t.Errorf("delay node %s (%s)", st.Status, st.Error)
			}
		})
	}
}
