package workflow_test

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

func TestMCPServersAreValidated(t *testing.T) {
	t.Parallel()
	v := `{"name":"n","value":1}`
	tests := []struct{ name, meta, path, msg string }{
		{"not a list", `"mcp_servers":{"fs":{}}`, "metadata.mcp_servers", "must be a list of servers"},
		{"not an object", `"mcp_servers":["fs"]`, "metadata.mcp_servers[0]", "must be an object"},
		{"bad name", `"mcp_servers":[{"name":"my fs","url":"http://x/mcp"}]`, "metadata.mcp_servers[0].name", "1 to 64 letters"},
		{"name with a dot", `"mcp_servers":[{"name":"f.s","url":"http://x/mcp"}]`, "metadata.mcp_servers[0].name", "1 to 64 letters"},
		{"both", `"mcp_servers":[{"name":"fs","url":"http://x/mcp","command":["fs"]}]`, "metadata.mcp_servers[0]", "has both command and url"},
		{"neither", `"mcp_servers":[{"name":"fs"}]`, "metadata.mcp_servers[0]", "needs a command"},
		{"command a string", `"mcp_servers":[{"name":"fs","command":"prog arg"}]`, "metadata.mcp_servers[0].command", "non-empty list"},
		{"command empty", `"mcp_servers":[{"name":"fs","command":[]}]`, "metadata.mcp_servers[0].command", "non-empty list"},
		{"arg a number", `"mcp_servers":[{"name":"fs","command":["prog",1]}]`, "metadata.mcp_servers[0].command[1]", "must be a non-empty string"},
		{"env a number", `"mcp_servers":[{"name":"fs","command":["prog"],"env":{"A":1}}]`, "metadata.mcp_servers[0].env.A", "must be a string"},
		{"bad url", `"mcp_servers":[{"name":"s","url":"ftp://x/mcp"}]`, "metadata.mcp_servers[0].url", "http:// or https://"},
		{"headers on a command", `"mcp_servers":[{"name":"fs","command":["p"],"headers":{}}]`, "metadata.mcp_servers[0].headers", "goes with a url"},
		{"unknown key", `"mcp_servers":[{"name":"fs","command":["p"],"args":[]}]`, "metadata.mcp_servers[0].args", "unknown key"},
		{"duplicate", `"mcp_servers":[{"name":"fs","command":["p"]},{"name":"fs","url":"http://x/mcp"}]`, "metadata.mcp_servers[1].name", "also the name of metadata.mcp_servers[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantProblem(t, refuse(tt.meta, ``, v), tt.path, tt.msg) })
	}
	w := wantValid(t, refuse(`"mcp_servers":[{"name":"fs","command":["prog","-x"],"env":{"A":"b"}},{"name":"search","url":"https://s.example.com/mcp","headers":{"Authorization":"Bearer t"}}]`,
		`"tools":["fs.read_file","search.*"]`, v))
	got := w.MCPServers()
	if len(got) != 2 || got[0].Name != "fs" || strings.Join(got[0].Command, " ") != "prog -x" || got[0].Env["A"] != "b" ||
		got[1].URL != "https://s.example.com/mcp" || got[1].Headers["Authorization"] != "Bearer t" || got[0].Global {
		t.Errorf("MCPServers = %+v", got)
	}
}

func TestParseMCPConfig(t *testing.T) {
	t.Parallel()
	got, err := workflow.ParseMCPConfig([]byte(`{"mcpServers": {
		"search": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "k"}},
		"fs": {"type": "stdio", "command": "npx", "args": ["-y", "server-filesystem", "/tmp"], "env": {"A": "b"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "fs" || strings.Join(got[0].Command, " ") != "npx -y server-filesystem /tmp" || !got[0].Global ||
		got[1].Name != "search" || got[1].Headers["X-Key"] != "k" {
		t.Errorf("ParseMCPConfig = %+v", got)
	}
	for file, want := range map[string]string{
		`{"servers": {}}`: "mcpServers: missing",
		`{"mcpServers": {"f s": {"command": "x"}}}`:                      `mcpServers.f s: a server name`,
		`{"mcpServers": {"fs": {}}}`:                                     "mcpServers.fs: needs a command or a url",
		`{"mcpServers": {"fs": {"command": "x", "url": "http://a"}}}`:    "mcpServers.fs: has both",
		`{"mcpServers": {"fs": {"url": "file:///x"}}}`:                   "mcpServers.fs.url: must be an http",
		`{"mcpServers": {"fs": {"command": " "}}}`:                       "mcpServers.fs.command: must not be empty",
		`{"mcpServers": {"fs": {"type": "sse", "url": "http://a/sse"}}}`: `mcpServers.fs.type: "sse" (the older HTTP+SSE transport) is not supported`,
		`{"mcpServers": {"fs": {"type": "ws", "url": "http://a"}}}`:      `mcpServers.fs.type: "ws" is not a transport`,
		`{"mcpServers": {"fs": {"type": "stdio", "url": "http://a"}}}`:   `mcpServers.fs.type: "stdio" goes with a command`,
		`{"mcpServers": {"fs": {"type": "http", "command": "x"}}}`:       `mcpServers.fs.type: "http" goes with a url`,
	} {
		if _, err := workflow.ParseMCPConfig([]byte(file)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMCPConfig(%s) = %v, want %q", file, err, want)
		}
	}
}
