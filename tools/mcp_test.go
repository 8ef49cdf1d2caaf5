package tools_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-dev/switchboard/tools"
	"github.com/switchboard-dev/switchboard/workflow"
)

// TestMain runs the test binary as a stdio MCP server when
// SWITCHBOARD_TEST_MCP_SERVER is set: a real server process for the
// command transport.
func TestMain(m *testing.M) {
	if os.Getenv("SWITCHBOARD_TEST_MCP_SERVER") != "" {
		if err := testServer(nil).Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type slowArgs struct {
	MS int `json:"ms"`
}

type echoArgs struct {
	Text string `json:"text" jsonschema:"the text to echo"`
}

// testServer offers echo (its text, upper-cased, with the server's
// GREETING), fail (an error result), mute (one without text), hang (answers when released), pid
// (its process id), slow (answers after a while) and crash (the process
// exits).
func testServer(release <-chan struct{}) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echo the text, upper-cased"},
		func(_ context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: os.Getenv("GREETING") + strings.ToUpper(a.Text)}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "always fails"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "the disk is on fire"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "hang", Description: "answers when the call is cancelled or release is closed"},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			select {
			case <-ctx.Done():
			case <-release:
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "late"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "mute", Description: "fails without a word"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "the server's process id"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strconv.Itoa(os.Getpid())}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "answers after ms milliseconds"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a slowArgs) (*mcp.CallToolResult, any, error) {
			select {
			case <-time.After(time.Duration(a.MS) * time.Millisecond):
			case <-ctx.Done():
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "the server process exits"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			os.Exit(3)
			return nil, nil, nil
		})
	return s
}

// StdioServer is the test binary as a stdio MCP server.
func stdioServer(t *testing.T) workflow.MCPServer {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return workflow.MCPServer{Name: "local", Command: []string{exe}, Env: map[string]string{"SWITCHBOARD_TEST_MCP_SERVER": "1", "GREETING": "hi "}}
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestMCPOverStreamableHTTP(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := testServer(release)
	var auth atomic.Value
	h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		auth.Store(r.Header.Get("Authorization"))
		return srv
	}, nil)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	m := tools.NewMCP(tools.MCPOptions{CallTimeout: 5 * time.Second, Logger: logger(t)})
	t.Cleanup(func() { m.Close() })
	s := workflow.MCPServer{Name: "search", URL: hs.URL, Headers: map[string]string{"Authorization": "Bearer k"}}
	list, err := m.List(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 7 || list[0].Name != "crash" || list[1].Name != "echo" || !strings.Contains(string(list[1].Schema), `"text"`) {
		t.Errorf("List = %+v", list)
	}
	got, err := m.Call(t.Context(), s, "echo", json.RawMessage(`{"text":"abc"}`))
	if err != nil || got != "ABC" {
		t.Errorf("Call echo = %q, %v", got, err)
	}
	if auth.Load() != "Bearer k" {
		t.Errorf("Authorization header = %q", auth)
	}
	if _, err := m.Call(t.Context(), s, "fail", json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), "the disk is on fire") {
		t.Errorf("Call fail = %v", err)
	}
	if _, err := m.Call(t.Context(), s, "mute", json.RawMessage(`{}`)); err == nil || err.Error() != `MCP server "search", tool mute: the tool reported an error without a message` {
		t.Errorf("Call mute = %v", err)
	}
	// A call without an answer ends at the call timeout, with an error
	// saying so.
	short := tools.NewMCP(tools.MCPOptions{CallTimeout: 500 * time.Millisecond, Logger: logger(t)})
	t.Cleanup(func() { short.Close() })
	if _, err := short.List(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if _, err := short.Call(t.Context(), s, "hang", json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), `MCP server "search" did not answer hang within 500ms`) {
		t.Errorf("Call hang = %v", err)
	}
	close(release) // the handler ends, or hs.Close and the session's close would wait for it
}

func TestMCPOverStdio(t *testing.T) {
	t.Parallel()
	m := tools.NewMCP(tools.MCPOptions{CallTimeout: 10 * time.Second, Logger: logger(t)})
	s := stdioServer(t)
	list, err := m.List(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 7 {
		t.Fatalf("List = %+v", list)
	}
	for range 2 { // the second call reuses the process
		got, err := m.Call(t.Context(), s, "echo", json.RawMessage(`{"text":"abc"}`))
		if err != nil || got != "hi ABC" {
			t.Errorf("Call echo = %q, %v", got, err)
		}
	}
	// A crash is an error, then the next call starts the server again.
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
	defer cancel()
	if _, err := m.Call(ctx, s, "crash", json.RawMessage(`{}`)); err == nil || ctx.Err() != nil {
		t.Errorf("Call crash = %v (context: %v), want an error before the deadline", err, ctx.Err())
	}
	var got string
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) { // the crash may not be seen yet: the old session answers with an error until it is
		if got, err = m.Call(t.Context(), s, "echo", json.RawMessage(`{"text":"again"}`)); err == nil {
			break
		}
	}
	if got != "hi AGAIN" {
		t.Errorf("after the crash, Call echo = %q, %v", got, err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := m.Call(t.Context(), s, "echo", json.RawMessage(`{"text":"x"}`)); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("Call after Close = %v", err)
	}
}

func TestMCPServerThatDoesNotStart(t *testing.T) {
	t.Parallel()
	m := tools.NewMCP(tools.MCPOptions{CallTimeout: 5 * time.Second, Logger: logger(t)})
	t.Cleanup(func() { m.Close() })
	_, err := m.List(t.Context(), workflow.MCPServer{Name: "ghost", Command: []string{"/nonexistent/mcp-server"}})
	if err == nil || !strings.Contains(err.Error(), `MCP server "ghost" could not be started`) {
		t.Errorf("List = %v", err)
	}
	// A program that is no MCP server and exits at once.
	_, err = m.List(t.Context(), workflow.MCPServer{Name: "mute", Command: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), `MCP server "mute" could not be started`) {
		t.Errorf("List = %v", err)
	}
	// One that says why it quits: the error quotes it.
	_, err = m.List(t.Context(), workflow.MCPServer{Name: "grumpy", Command: []string{"sh", "-c", "echo 'starting' >&2; echo 'no such directory: /srv/docs' >&2; exit 1"}})
	if err == nil || !strings.Contains(err.Error(), `MCP server "grumpy" could not be started`) ||
		!strings.Contains(err.Error(), "its stderr ended with: starting | no such directory: /srv/docs") {
		t.Errorf("List = %v", err)
	}
	// One that never answers: the timeout ends the wait.
	m2 := tools.NewMCP(tools.MCPOptions{CallTimeout: 300 * time.Millisecond, Logger: logger(t)})
	t.Cleanup(func() { m2.Close() })
	_, err = m2.List(t.Context(), workflow.MCPServer{Name: "sleepy", Command: []string{"sleep", "30"}})
	if err == nil || !strings.Contains(err.Error(), "within 300ms") {
		t.Errorf("List = %v", err)
	}
}
