package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm/llmtest"
)

// TestDashboardToolLane: after a run whose agent calls an MCP tool, the
// execution page's timeline has a Tools lane, the tool call is an arrow
// from the agent's lane to it, and the message list names the tool and
// shows its arguments.
func TestDashboardToolLane(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "weather", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "lookup", Description: "the weather in a city"},
		func(_ context.Context, _ *mcp.CallToolRequest, a cityArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sunny in " + a.City}}}, nil, nil
		})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(hs.Close)
	model := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if last := req.Messages[len(req.Messages)-1]; last.Role == openai.ChatMessageRoleTool {
			return llmtest.Reply{Content: "The forecast: " + last.Content}
		}
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "weather__lookup", Arguments: `{"city":"Oslo"}`}}}
	})
	cfg := filepath.Join(t.TempDir(), "mcp.json")
	if err := os.WriteFile(cfg, []byte(`{"mcpServers": {"weather": {"url": "`+hs.URL+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, 1280, 900)
	base := startServer(t, map[string]string{"OPENAI_BASE_URL": model.URL(), "OPENAI_API_KEY": "test"}, "--mcp-config", cfg)
	id := importAPI(t, base, `{"name":"Forecast","nodes":[{"id":"start","type":"start"},
		{"id":"f","type":"ai-processor","config":{"name":"Forecaster","prompt":"The weather in Oslo?","tools":["weather.lookup"],"tool_mode":"native"}},
		{"id":"end","type":"end"}],"edges":[{"from":"start","to":"f"},{"from":"f","to":"end"}]}`)
	b.do("open the workflow", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows/"+id),
		chromedp.WaitVisible(chromedp.ID("run-form")),
	)
	b.do("run it", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("exec-status")),
	)
	b.waitJS("the run ends with the tool call on the timeline", `document.querySelector('#exec-status').textContent === 'success' && !!document.querySelector('#timeline .tl-tool_call')`, 30*time.Second)
	lanes := evalJS[[]string](b, `[...document.querySelectorAll('#timeline .lane')].map(l => l.getAttribute('class') + ':' + l.querySelector('.lane-name').textContent)`)
	if len(lanes) != 2 || lanes[0] != "lane:Forecaster" || lanes[1] != "lane lane-tools:Tools" {
		t.Fatalf("lanes %q, want the agent's and the tools'", lanes)
	}
	// The arrow goes from the agent's lane to the tools' lane.
	arrow := evalJS[[]float64](b, `(() => {
		const a = document.querySelector('#timeline .tl-tool_call .tl-arrow');
		const x = l => +document.querySelectorAll('#timeline .lane-line')[l].getAttribute('x1');
		return [+a.getAttribute('x1'), +a.getAttribute('x2'), x(0), x(1)];
	})()`)
	if arrow[0] != arrow[2] || arrow[1] != arrow[3] || arrow[0] == arrow[1] {
		t.Errorf("the tool call's arrow runs from x %v to %v; the lanes are at %v and %v", arrow[0], arrow[1], arrow[2], arrow[3])
	}
	if label := evalJS[string](b, `document.querySelector('#timeline .tl-tool_call .tl-label').textContent`); label != "weather.lookup (MCP): sunny in Oslo" {
		t.Errorf("the tool call's label %q", label)
	}
	msg := evalJS[string](b, `(() => { const li = document.querySelector('#msglist li[data-kind=tool_call]'); li.querySelector('details').open = true; return li.innerText; })()`)
	if !strings.Contains(msg, "Forecaster → weather.lookup (MCP)") || !strings.Contains(msg, "tool call") || !strings.Contains(msg, `{"city":"Oslo"}`) {
		t.Errorf("the message list's entry:\n%s", msg)
	}
	b.shot("execution-tool-lane")
}
