package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm/llmtest"
)

type cityArgs struct {
	City string `json:"city"`
}

// TestRunWithMCPConfig: switchboard run with --mcp-config reaches the
// file's streamable HTTP server, with its headers; a workflow's own stdio
// server is refused without --allow-workflow-commands, and the model
// reads why; a bad file is refused naming its path.
func TestRunWithMCPConfig(t *testing.T) {
	t.Parallel()
	s := mcp.NewServer(&mcp.Implementation{Name: "weather", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "lookup", Description: "the weather in a city"},
		func(_ context.Context, _ *mcp.CallToolRequest, a cityArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sunny in " + a.City}}}, nil, nil
		})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		if r.Header.Get("X-Key") != "k1" {
			return nil // refused: 400
		}
		return s
	}, nil))
	t.Cleanup(hs.Close)
	model := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if last := req.Messages[len(req.Messages)-1]; last.Role == openai.ChatMessageRoleTool {
			return llmtest.Reply{Content: "Result: " + last.Content}
		}
		if len(req.Tools) != 1 {
			return llmtest.Reply{Content: "no tool"}
		}
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: req.Tools[0].Function.Name, Arguments: `{"city":"Oslo"}`}}}
	})
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("mcp.json", `{"mcpServers": {"weather": {"url": "`+hs.URL+`", "headers": {"X-Key": "k1"}}}}`)
	flow := func(name, servers, tool string) string {
		return write(name, `{"name":"w","metadata":{"mcp_servers":`+servers+`},"nodes":[
			{"id":"start","type":"start"},
			{"id":"w","type":"ai-processor","config":{"prompt":"weather?","tools":["`+tool+`"],"tool_mode":"native"}},
			{"id":"end","type":"end"}],"edges":[{"from":"start","to":"w"},{"from":"w","to":"end"}]}`)
	}
	env := func(k string) string {
		switch k {
		case "OPENAI_BASE_URL":
			return model.URL()
		case "OPENAI_API_KEY":
			return "test"
		}
		return testEnv(k)
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"run", flow("a.json", `[]`, "weather.lookup"), "--mcp-config", cfg}, env, &out, t.Output()); err != nil ||
		!strings.Contains(out.String(), "w calls the tool weather__lookup") || !strings.Contains(out.String(), "Result: sunny in Oslo") {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"run", flow("b.json", `[{"name":"local","command":["true"]}]`, "local.*"), "--mcp-config", cfg}, env, &out, t.Output()); err != nil ||
		!strings.Contains(out.String(), "Result: error: ") || !strings.Contains(out.String(), "--allow-workflow-commands") {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	bad := write("bad.json", `{"mcpServers": {"weather": {"url": "ftp://x"}}}`)
	err := run(t.Context(), []string{"run", flow("c.json", `[]`, "weather.*"), "--mcp-config", bad}, env, &out, t.Output())
	if err == nil || !strings.Contains(err.Error(), "mcpServers.weather.url: must be an http") {
		t.Fatalf("run with a bad file: %v", err)
	}
}
