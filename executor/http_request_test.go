package executor_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

const reportToken = "tok-secret-REPORT-4711"

// reportServer answers GET /report with a report when the bearer token is
// reportToken, echoing the header, so the token is in the tool's result
// as much as in its arguments.
func reportServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/report" || r.Header.Get("Authorization") != "Bearer "+reportToken {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "sales are up 12%% (seen with %s)", r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fetchFlow is a workflow whose one node fetches the report with the
// secret api_key; it cannot communicate, and has http_request.
func fetchFlow(t *testing.T, mode string) *workflow.Workflow {
	return parse(t, `{"name":"fetch","metadata":{"communication_mode":"`+mode+`","http_allow":["127.0.0.1"]},"nodes":[
		{"id":"start","type":"start"},
		{"id":"fetch","type":"ai-processor","config":{"prompt":"Fetch the report with token {{api_key}}","tools":["http_request"],"tool_mode":"native"}},
		{"id":"end","type":"end"}],
		"edges":[{"from":"start","to":"fetch"},{"from":"fetch","to":"end"}],
		"variables":[{"name":"api_key","value":"placeholder","secret":true}]}`)
}

// fetchModel calls http_request for the report, with the token of its
// prompt in a header, and then answers with what it got.
func fetchModel(url string) llmtest.Handler {
	return func(req openai.ChatCompletionRequest) llmtest.Reply {
		if res, ok := toolResults(req); ok {
			return llmtest.Reply{Content: "Fetched: " + res}
		}
		var names []string
		for _, tl := range req.Tools {
			names = append(names, tl.Function.Name)
		}
		if len(names) != 1 || names[0] != "http_request" || !strings.Contains(req.Tools[0].Function.Description, "127.0.0.1") {
			return llmtest.Reply{Content: fmt.Sprintf("tools offered: %q", names)}
		}
		_, token, _ := strings.Cut(req.Messages[len(req.Messages)-1].Content, "with token ")
		args, _ := json.Marshal(map[string]any{"method": "GET", "url": url + "/report", "headers": map[string]string{"Authorization": "Bearer " + token}})
		return llmtest.Reply{Content: "Fetching.", ToolCalls: []llmtest.ToolCall{{ID: "h1", Name: "http_request", Arguments: string(args)}}}
	}
}

// checkFetch checks a run of fetchFlow: the output uses the fetched body,
// the call is a tool_call entry, and the token is masked everywhere.
func checkFetch(t *testing.T, x *workflow.Execution) {
	t.Helper()
	out, _ := x.NodeStates["fetch"].Output.(string)
	if x.Status != workflow.ExecSuccess || !strings.Contains(out, "Fetched: h1: HTTP 200 OK\nContent-Type: text/plain\n\nsales are up 12%") {
		t.Fatalf("status %s (%s), output %q\nlogs %+v", x.Status, x.Error, out, x.Logs)
	}
	tools := commOf(x, workflow.CommToolCall)
	if len(tools) != 1 {
		t.Fatalf("tool_call entries %+v", tools)
	}
	tc := tools[0]
	args, _ := tc.Metadata["arguments"].(map[string]any)
	headers, _ := args["headers"].(map[string]any)
	if tc.From != "fetch" || tc.Metadata["tool"] != "http_request" || tc.Metadata["success"] != true ||
		headers["Authorization"] != "Bearer "+workflow.Mask || !strings.Contains(tc.Content, "sales are up 12% (seen with Bearer "+workflow.Mask+")") {
		t.Fatalf("tool_call entry %+v", tc)
	}
	record, _ := json.Marshal(x)
	if strings.Contains(string(record), reportToken) {
		t.Fatalf("the record leaks the token: %s", record)
	}
}

// TestHTTPRequestInWorkflow: a node that cannot communicate fetches a
// page with http_request, natively, in simple mode, and its output uses
// the body; the loopback test server is reached because the operator
// names it in AllowPrivate, which TestHTTPRequestRefusals shows is needed.
func TestHTTPRequestInWorkflow(t *testing.T) {
	t.Parallel()
	srv := reportServer(t)
	model, _ := openAIModel(t, fetchModel(srv.URL))
	e := newEnv(t, model, nil, executor.Config{HTTP: executor.HTTPConfig{AllowPrivate: []string{"127.0.0.1"}}})
	checkFetch(t, e.run(t, fetchFlow(t, workflow.ModeSimple), executor.Options{Inputs: map[string]any{"api_key": reportToken}}))
}

// TestHTTPRequestOnWorkers: the same with the agent hosted by a worker,
// which has the HTTP settings (the server has none).
func TestHTTPRequestOnWorkers(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		srv := reportServer(t)
		server, _ := openAIModel(t, func(openai.ChatCompletionRequest) llmtest.Reply {
			return llmtest.Reply{Content: "the server's model was called"}
		})
		worker, _ := openAIModel(t, fetchModel(srv.URL))
		we := newWorkerEnv(t, url, server, 5*time.Second)
		we.http = executor.HTTPConfig{AllowPrivate: []string{"127.0.0.1"}}
		we.startWorker(t, "w1", worker, 5*time.Second)
		we.waitWorkers(t, "w1")
		x := we.run(t, fetchFlow(t, workflow.ModePubSub), executor.Options{Mode: workflow.ModePubSub, Inputs: map[string]any{"api_key": reportToken}})
		if x.Placement != workflow.PlacementWorkers || x.NodeStates["fetch"].Worker != "w1" {
			t.Fatalf("placement %s (%s), fetch ran on %q", x.Placement, x.PlacementFallbackReason, x.NodeStates["fetch"].Worker)
		}
		checkFetch(t, x)
	})
}

// TestToolsOnlyWhereAllowed: a node without http_request in config.tools
// is offered no tool, and a node in text mode goes without its tools,
// with a warning in the log.
func TestToolsOnlyWhereAllowed(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		offered = map[string][]string{}
	)
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		var names []string
		for _, tl := range req.Tools {
			names = append(names, tl.Function.Name)
		}
		last := req.Messages[len(req.Messages)-1].Content
		mu.Lock()
		offered[last] = names
		mu.Unlock()
		return llmtest.Reply{Content: "done"}
	})
	e := newEnv(t, model, nil, executor.Config{ToolMode: workflow.ToolModeNative})
	x := e.run(t, parse(t, `{"name":"none","nodes":[
		{"id":"plain","type":"ai-processor","config":{"prompt":"plain"}},
		{"id":"talker","type":"ai-processor","config":{"prompt":"talker","can_communicate":true}},
		{"id":"both","type":"ai-processor","config":{"prompt":"both","can_communicate":true,"tools":["http_request"]}},
		{"id":"texty","type":"ai-processor","config":{"prompt":"texty","tools":["http_request"],"tool_mode":"text"}}]}`), executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{"plain": "", "talker": "ask_node broadcast_message set_shared_context get_shared_context",
		"both": "ask_node broadcast_message set_shared_context get_shared_context http_request", "texty": ""}
	for prompt, w := range want {
		if got := strings.Join(offered[prompt], " "); got != w {
			t.Errorf("%s was offered %q, want %q", prompt, got, w)
		}
	}
	if !hasLog(x, "Node texty: config.tools are offered as native tools only") {
		t.Errorf("no warning for texty: %+v", x.Logs)
	}
}
