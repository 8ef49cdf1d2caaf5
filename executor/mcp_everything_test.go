package executor_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// everythingVersion is the version of the npm package
// @modelcontextprotocol/server-everything that .ci/run installs: the MCP
// project's own reference server, a client's test of another
// implementation than the SDK we use.
const everythingVersion = "2026.8.31"

// everythingServer returns the command of the reference server: the one
// $SWITCHBOARD_MCP_EVERYTHING names (.ci/run sets it), or the one .ci/run
// installs into .ci/node_modules. It must be the pinned version. Without
// it the test is skipped, and fails under CI=true.
func everythingServer(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		hint := " (install it with: npm install --prefix .ci --no-save @modelcontextprotocol/server-everything@" + everythingVersion +
			", or point SWITCHBOARD_MCP_EVERYTHING at its mcp-server-everything)"
		if os.Getenv("CI") == "true" {
			t.Fatalf(format+hint, args...)
		}
		t.Skipf(format+hint, args...)
	}
	bin := os.Getenv("SWITCHBOARD_MCP_EVERYTHING")
	if bin == "" {
		bin = filepath.Join("..", ".ci", "node_modules", ".bin", "mcp-server-everything")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.EvalSymlinks(bin)
	if err != nil {
		missing("the MCP reference server is not installed: %v", err)
	}
	// The bin is a link to dist/index.js of the package.
	data, err := os.ReadFile(filepath.Join(filepath.Dir(script), "..", "package.json"))
	if err != nil {
		missing("the package of %s cannot be read: %v", bin, err)
	}
	var pkg struct{ Name, Version string }
	if err := json.Unmarshal(data, &pkg); err != nil || pkg.Name != "@modelcontextprotocol/server-everything" || pkg.Version != everythingVersion {
		missing("%s is %s %s, not @modelcontextprotocol/server-everything %s (%v)", bin, pkg.Name, pkg.Version, everythingVersion, err)
	}
	return bin
}

// TestMCPReferenceServer: the MCP project's reference server (the npm
// package, over stdio) is listed and called by a scripted model through
// the real executor: its tools' schemas reach the model, the calls run in
// the model's order, and their results come back to the model, into the
// node's output and into the record as tool_call entries.
func TestMCPReferenceServer(t *testing.T) {
	t.Parallel()
	bin := everythingServer(t)
	var offered []string
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if res, ok := toolResults(req); ok {
			return llmtest.Reply{Content: "Results:\n" + res}
		}
		offered = offered[:0]
		var sum string
		for _, tl := range req.Tools {
			offered = append(offered, tl.Function.Name)
			if tl.Function.Name == "everything__get-sum" {
				b, _ := json.Marshal(tl.Function.Parameters)
				sum = string(b)
			}
		}
		if !strings.Contains(sum, `"a"`) || !strings.Contains(sum, `"b"`) {
			return llmtest.Reply{Content: "no get-sum with a and b among " + strings.Join(offered, ",") + ": " + sum}
		}
		return llmtest.Reply{Content: "Calling.", ToolCalls: []llmtest.ToolCall{
			{ID: "c1", Name: "everything__echo", Arguments: `{"message":"hello from switchboard"}`},
			{ID: "c2", Name: "everything__get-sum", Arguments: `{"a":2,"b":40}`},
			{ID: "c3", Name: "everything__get-tiny-image", Arguments: `{}`},
		}}
	})
	servers, _ := json.Marshal([]workflow.MCPServer{{Name: "everything", Command: []string{bin, "stdio"}}})
	e := newEnv(t, model, nil, executor.Config{MCP: executor.MCPConfig{AllowWorkflowCommands: true}})
	x := e.run(t, mcpFlow(t, string(servers), []string{"everything.echo", "everything.get-sum", "everything.get-tiny-image"}, "the tools"), executor.Options{})
	out := outputOf(t, x)
	slices.Sort(offered)
	if !slices.Equal(offered, []string{"everything__echo", "everything__get-sum", "everything__get-tiny-image"}) {
		t.Errorf("tools offered %v, want the three config.tools allows", offered)
	}
	for _, want := range []string{"c1: Echo: hello from switchboard", "c2: The sum of 2 and 40 is 42", "c3: ", "an image, image/png"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	calls := commOf(x, workflow.CommToolCall)
	if len(calls) != 3 {
		t.Fatalf("tool_call entries %+v", calls)
	}
	for i, want := range []string{"echo", "get-sum", "get-tiny-image"} {
		if c := calls[i]; c.Metadata["mcp_server"] != "everything" || c.Metadata["mcp_tool"] != want || c.Metadata["success"] != true {
			t.Errorf("tool_call %d: %+v", i, c)
		}
	}
	if !strings.Contains(calls[1].Content, "42") {
		t.Errorf("get-sum's entry: %q", calls[1].Content)
	}
}
