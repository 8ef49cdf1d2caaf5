package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

type lookupArgs struct {
	City string `json:"city" jsonschema:"the city"`
}

// testMCPServer offers weather.lookup (a dotted name, as MCP allows: the
// model calls it by another), fail (an error result) and crash (the
// process exits).
func testMCPServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "weather.lookup", Description: "the weather in a city"},
		func(_ context.Context, _ *mcp.CallToolRequest, a lookupArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: os.Getenv("PREFIX") + "sunny in " + a.City}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "always fails"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no weather today"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "the server process exits"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			os.Exit(3)
			return nil, nil, nil
		})
	return s
}

// httpMCPServer is testMCPServer over streamable HTTP on loopback.
func httpMCPServer(t *testing.T) string {
	srv := testMCPServer()
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(hs.Close)
	return hs.URL + "/mcp"
}

// stdioCommand is the test binary as a stdio MCP server, as a
// metadata.mcp_servers entry's command and env.
func stdioCommand(t *testing.T) (string, string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, _ := json.Marshal([]string{exe})
	return string(cmd), `{"SWITCHBOARD_TEST_MCP_SERVER":"1","PREFIX":"stdio: "}`
}

// mcpFlow is a workflow with one node that may use tools (config.tools)
// of the servers (metadata.mcp_servers, a JSON list) and is told to call
// one: "call NAME ARGS".
func mcpFlow(t *testing.T, servers string, tools []string, call string) *workflow.Workflow {
	tl, _ := json.Marshal(tools)
	prompt, _ := json.Marshal("call " + call)
	return parse(t, `{"name":"mcp","metadata":{"mcp_servers":`+servers+`},"nodes":[
		{"id":"start","type":"start"},
		{"id":"w","type":"ai-processor","config":{"prompt":`+string(prompt)+`,"tools":`+string(tl)+`,"tool_mode":"native"}},
		{"id":"end","type":"end"}],
		"edges":[{"from":"start","to":"w"},{"from":"w","to":"end"}]}`)
}

// mcpModel calls the tool its prompt names with the arguments it gives
// ("call NAME ARGS"), and answers with its result; when the tool is not
// offered it says which are.
func mcpModel(req openai.ChatCompletionRequest) llmtest.Reply {
	if res, ok := toolResults(req); ok {
		return llmtest.Reply{Content: "Result: " + res}
	}
	var names []string
	for _, tl := range req.Tools {
		names = append(names, tl.Function.Name)
	}
	slices.Sort(names)
	call := strings.TrimPrefix(req.Messages[len(req.Messages)-1].Content, "call ")
	name, args, _ := strings.Cut(call, " ")
	if !slices.Contains(names, name) {
		return llmtest.Reply{Content: fmt.Sprintf("tools offered: %s", strings.Join(names, ","))}
	}
	return llmtest.Reply{Content: "Calling.", ToolCalls: []llmtest.ToolCall{{ID: "m1", Name: name, Arguments: args}}}
}

func outputOf(t *testing.T, x *workflow.Execution) string {
	t.Helper()
	out, _ := x.NodeStates["w"].Output.(string)
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s (%s), output %q\nlogs %+v", x.Status, x.Error, out, x.Logs)
	}
	return out
}

// TestMCPToolInWorkflow: a node allowed search.* is offered the server's
// tools natively, under names the chat-completions rules accept, and its
// output uses the result of a real call over streamable HTTP, recorded as
// a tool_call entry naming the server and the tool. The workflow's server
// is on loopback, which the operator allows by name, as for http_request;
// without that it is refused.
func TestMCPToolInWorkflow(t *testing.T) {
	t.Parallel()
	url := httpMCPServer(t)
	model, _ := openAIModel(t, mcpModel)
	servers := `[{"name":"search","url":"` + url + `"}]`

	refused := newEnv(t, model, nil, executor.Config{})
	x := refused.run(t, mcpFlow(t, servers, []string{"search.*"}, "search {}"), executor.Options{})
	if out := outputOf(t, x); !strings.Contains(out, "Result: m1: error: ") || !strings.Contains(out, "a loopback address") || !strings.Contains(out, "--http-allow-private") {
		t.Fatalf("output %q", out)
	}

	e := newEnv(t, model, nil, executor.Config{HTTP: executor.HTTPConfig{AllowPrivate: []string{"127.0.0.1"}}})

	x = e.run(t, mcpFlow(t, servers, []string{"search.*"}, "none {}"), executor.Options{})
	if out := outputOf(t, x); out != "tools offered: search__crash,search__fail,search__weather_lookup" {
		t.Fatalf("output %q", out)
	}
	x = e.run(t, mcpFlow(t, servers, []string{"search.weather.lookup"}, `search__weather_lookup {"city":"Oslo"}`), executor.Options{})
	if out := outputOf(t, x); out != "Result: m1: sunny in Oslo" {
		t.Fatalf("output %q", out)
	}
	calls := commOf(x, workflow.CommToolCall)
	if len(calls) != 1 || calls[0].Metadata["mcp_server"] != "search" || calls[0].Metadata["mcp_tool"] != "weather.lookup" ||
		calls[0].Metadata["tool"] != "search__weather_lookup" || calls[0].Metadata["success"] != true || calls[0].Content != "sunny in Oslo" {
		t.Fatalf("tool_call entries %+v", calls)
	}
	// An error result goes back to the model, and the node succeeds.
	x = e.run(t, mcpFlow(t, servers, []string{"search.fail"}, `search__fail {}`), executor.Options{})
	if out := outputOf(t, x); !strings.Contains(out, "Result: m1: error: ") || !strings.Contains(out, "no weather today") {
		t.Fatalf("output %q", out)
	}
}

// TestMCPWorkflowCommandsNeedLeave: a stdio server a workflow declares
// does not start without AllowWorkflowCommands (--allow-workflow-commands),
// and the model reads why; with it, or declared in the operator's file, it
// starts and answers.
func TestMCPWorkflowCommandsNeedLeave(t *testing.T) {
	t.Parallel()
	cmd, env := stdioCommand(t)
	model, _ := openAIModel(t, mcpModel)
	servers := `[{"name":"local","command":` + cmd + `,"env":` + env + `}]`
	call := `local__weather_lookup {"city":"Rome"}`

	refused := newEnv(t, model, nil, executor.Config{})
	x := refused.run(t, mcpFlow(t, servers, []string{"local.weather.lookup"}, call), executor.Options{})
	if out := outputOf(t, x); !strings.Contains(out, "Result: m1: error: ") || !strings.Contains(out, "--allow-workflow-commands") {
		t.Fatalf("output %q", out)
	}
	if calls := commOf(x, workflow.CommToolCall); len(calls) != 1 || calls[0].Metadata["success"] != false {
		t.Fatalf("tool_call entries %+v", calls)
	}

	allowed := newEnv(t, model, nil, executor.Config{MCP: executor.MCPConfig{AllowWorkflowCommands: true}})
	x = allowed.run(t, mcpFlow(t, servers, []string{"local.weather.lookup"}, call), executor.Options{})
	if out := outputOf(t, x); out != "Result: m1: stdio: sunny in Rome" {
		t.Fatalf("output %q", out)
	}

	exe, _ := os.Executable()
	global := newEnv(t, model, nil, executor.Config{MCP: executor.MCPConfig{Servers: []workflow.MCPServer{{
		Name: "local", Command: []string{exe}, Env: map[string]string{"SWITCHBOARD_TEST_MCP_SERVER": "1", "PREFIX": "global: "}, Global: true}}}})
	x = global.run(t, mcpFlow(t, `[]`, []string{"local.*"}, call), executor.Options{})
	if out := outputOf(t, x); out != "Result: m1: global: sunny in Rome" {
		t.Fatalf("output %q", out)
	}
	// A server nobody declared is an error the model reads too.
	x = global.run(t, mcpFlow(t, `[]`, []string{"nowhere.*"}, `nowhere {}`), executor.Options{})
	if out := outputOf(t, x); !strings.Contains(out, `there is no MCP server \"nowhere\"`) && !strings.Contains(out, `there is no MCP server "nowhere"`) {
		t.Fatalf("output %q", out)
	}
}

// TestMCPServerCrash: a stdio server that exits during a call gives the
// node an error result, not a hang; the next execution starts it again.
func TestMCPServerCrash(t *testing.T) {
	t.Parallel()
	cmd, env := stdioCommand(t)
	model, _ := openAIModel(t, mcpModel)
	e := newEnv(t, model, nil, executor.Config{MCP: executor.MCPConfig{AllowWorkflowCommands: true, CallTimeout: 20 * time.Second}})
	servers := `[{"name":"local","command":` + cmd + `,"env":` + env + `}]`
	started := time.Now()
	x := e.run(t, mcpFlow(t, servers, []string{"local.*"}, `local__crash {}`), executor.Options{})
	if out := outputOf(t, x); !strings.Contains(out, "Result: m1: error: ") || !strings.Contains(out, `MCP server "local"`) {
		t.Fatalf("output %q", out)
	}
	if d := time.Since(started); d > 15*time.Second {
		t.Errorf("the crash took %s to be seen", d)
	}
	x = e.run(t, mcpFlow(t, servers, []string{"local.*"}, `local__weather_lookup {"city":"Lima"}`), executor.Options{})
	if out := outputOf(t, x); out != "Result: m1: stdio: sunny in Lima" {
		t.Fatalf("output %q", out)
	}
}

// TestMCPToolOnWorkers: an agent hosted by a worker calls a workflow's
// stdio server with the worker's leave (the server has none), and the
// worker stops the server when it stops.
func TestMCPToolOnWorkers(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		cmd, env := stdioCommand(t)
		server, _ := openAIModel(t, func(openai.ChatCompletionRequest) llmtest.Reply {
			return llmtest.Reply{Content: "the server's model was called"}
		})
		worker, _ := openAIModel(t, mcpModel)
		we := newWorkerEnv(t, url, server, 5*time.Second)
		we.mcp = executor.MCPConfig{AllowWorkflowCommands: true}
		we.startWorker(t, "w1", worker, 5*time.Second)
		we.waitWorkers(t, "w1")
		wf := mcpFlow(t, `[{"name":"local","command":`+cmd+`,"env":`+env+`}]`, []string{"local.*"}, `local__weather_lookup {"city":"Quito"}`)
		wf.Metadata["communication_mode"] = workflow.ModePubSub
		x := we.run(t, wf, executor.Options{Mode: workflow.ModePubSub})
		if x.Placement != workflow.PlacementWorkers || x.NodeStates["w"].Worker != "w1" {
			t.Fatalf("placement %s (%s), w ran on %q", x.Placement, x.PlacementFallbackReason, x.NodeStates["w"].Worker)
		}
		if out := outputOf(t, x); out != "Result: m1: stdio: sunny in Quito" {
			t.Fatalf("output %q", out)
		}
		if calls := commOf(x, workflow.CommToolCall); len(calls) != 1 || calls[0].Metadata["mcp_server"] != "local" {
			t.Fatalf("tool_call entries %+v", calls)
		}
	})
}

// TestMCPToolNotOnServer: a config.tools entry naming a tool the server
// does not have is logged as a warning naming the entry and the tools the
// server has; the tools that do match are still offered.
func TestMCPToolNotOnServer(t *testing.T) {
	t.Parallel()
	url := httpMCPServer(t)
	model, _ := openAIModel(t, mcpModel)
	e := newEnv(t, model, nil, executor.Config{HTTP: executor.HTTPConfig{AllowPrivate: []string{"127.0.0.1"}}})
	x := e.run(t, mcpFlow(t, `[{"name":"search","url":"`+url+`"}]`, []string{"search.weather.lokup", "search.fail"}, "none {}"), executor.Options{})
	if out := outputOf(t, x); out != "tools offered: search__fail" {
		t.Fatalf("output %q", out)
	}
	if !hasLog(x, `config.tools names search.weather.lokup, and MCP server search has no tool "weather.lokup", so it is not offered; its tools are: crash, fail, weather.lookup`) {
		t.Errorf("no warning names the entry and the server's tools: %+v", x.Logs)
	}
}
