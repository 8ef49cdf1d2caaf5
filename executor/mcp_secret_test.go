package executor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// lockedBuffer is a log destination several goroutines write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// authMCPServer is testMCPServer over streamable HTTP, answering only
// requests with the header Authorization: Bearer token.
func authMCPServer(t *testing.T, token string) string {
	srv := testMCPServer()
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		if r.Header.Get("Authorization") != "Bearer "+token {
			return nil // 400
		}
		return srv
	}, nil))
	t.Cleanup(hs.Close)
	return hs.URL + "/mcp"
}

// TestMCPSecretsInHeadersAndEnv: a secret variable named in an MCP
// server's headers ({{token}}) reaches the HTTP server, and one named in a
// stdio server's env reaches its process; the secret, which the tool's
// result and the server's stderr then hold, is masked in the record (the
// output, the tool_call entries), the execution's log and the process log.
// A placeholder naming no variable is an error the model reads, naming the
// server and the header.
func TestMCPSecretsInHeadersAndEnv(t *testing.T) {
	t.Parallel()
	const secret = "tok-5ecret-7781"
	url := authMCPServer(t, secret)
	cmd, _ := stdioCommand(t)
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if res, ok := toolResults(req); ok {
			return llmtest.Reply{Content: "Result: " + res}
		}
		return llmtest.Reply{Content: "Calling.", ToolCalls: []llmtest.ToolCall{
			{ID: "m1", Name: "search__weather_lookup", Arguments: `{"city":"Oslo"}`},
			{ID: "m2", Name: "local__weather_lookup", Arguments: `{"city":"Rome"}`},
		}}
	})
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewMultiHandler(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}), testLogger(t).Handler()))
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ex := executor.New(db, model, nil, logger, executor.Config{
		MCP:  executor.MCPConfig{AllowWorkflowCommands: true},
		HTTP: executor.HTTPConfig{AllowPrivate: []string{"127.0.0.1"}}})
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ex.Shutdown(sctx)
		db.Close()
	})
	e := &env{db: db, exec: ex}
	flow := func(header string) *workflow.Workflow {
		servers, _ := json.Marshal([]map[string]any{
			{"name": "search", "url": url, "headers": map[string]string{"Authorization": header}},
			{"name": "local", "command": json.RawMessage(cmd), "env": map[string]string{"SWITCHBOARD_TEST_MCP_SERVER": "1", "PREFIX": "{{token}} says: "}},
		})
		return parse(t, `{"name":"secrets","metadata":{"mcp_servers":`+string(servers)+`},
			"variables":[{"name":"token","value":"`+secret+`","type":"string","secret":true}],
			"nodes":[{"id":"start","type":"start"},
			{"id":"w","type":"ai-processor","config":{"prompt":"weather?","tools":["search.weather.lookup","local.weather.lookup"],"tool_mode":"native"}},
			{"id":"end","type":"end"}],
			"edges":[{"from":"start","to":"w"},{"from":"w","to":"end"}]}`)
	}

	x := e.run(t, flow("Bearer {{token}}"), executor.Options{})
	want := "Result: m1: sunny in Oslo\nm2: " + workflow.Mask + " says: sunny in Rome"
	if out := outputOf(t, x); out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	calls := commOf(x, workflow.CommToolCall)
	if len(calls) != 2 || calls[0].Metadata["success"] != true || calls[1].Metadata["success"] != true ||
		calls[1].Content != workflow.Mask+" says: sunny in Rome" {
		t.Fatalf("tool_call entries %+v", calls)
	}
	if rec := mustJSON(t, x); strings.Contains(rec, secret) {
		t.Errorf("the record shows the secret:\n%s", rec)
	}
	if l := logs.String(); strings.Contains(l, secret) || !strings.Contains(l, `PREFIX \"`+workflow.Mask+` says: \"`) {
		t.Errorf("the process log shows the secret, or not the server's masked stderr:\n%s", l)
	}

	x = e.run(t, flow("Bearer {{nope}}"), executor.Options{})
	if out := outputOf(t, x); !strings.Contains(out, `m1: error: `) || !strings.Contains(out, `MCP server "search": headers.Authorization uses {{nope}}, which names no variable`) ||
		!strings.Contains(out, "m2: "+workflow.Mask+" says: sunny in Rome") {
		t.Fatalf("output %q", out)
	}
}
