package workflow_test

import (
	"slices"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

func TestToolSettingsAreValidated(t *testing.T) {
	t.Parallel()
	v := `{"name":"n","value":1}`
	tests := []struct{ name, meta, config, path, msg string }{
		{"tools not a list", ``, `"tools":"http_request"`, "nodes[1].config.tools", `must be a list of tool names, not "http_request"`},
		{"tools null", ``, `"tools":null`, "nodes[1].config.tools", "must not be null"},
		{"tool not a string", ``, `"tools":["http_request",3]`, "nodes[1].config.tools[1]", "must be a string, not 3"},
		{"unknown built-in", ``, `"tools":["curl"]`, "nodes[1].config.tools[0]", `unknown built-in tool "curl"`},
		{"empty name", ``, `"tools":[""]`, "nodes[1].config.tools[0]", "must not be empty"},
		{"bad server", ``, `"tools":["my fs.read"]`, "nodes[1].config.tools[0]", "server name before the dot"},
		{"empty tool", ``, `"tools":["fs."]`, "nodes[1].config.tools[0]", "tool name after the dot"},
		{"glob inside a name", ``, `"tools":["fs.read_*"]`, "nodes[1].config.tools[0]", "tool name after the dot"},
		{"http_allow not a list", `"http_allow":"api.example.com"`, ``, "metadata.http_allow", "must be a list of host names"},
		{"http_allow a URL", `"http_allow":["https://api.example.com/v1"]`, ``, "metadata.http_allow[0]", "without scheme, path or port"},
		{"http_allow a port", `"http_allow":["ok.example.com","api.example.com:8080"]`, ``, "metadata.http_allow[1]", "without a port"},
		{"http_allow a bare wildcard", `"http_allow":["*.com"]`, ``, "metadata.http_allow[0]", "two labels or more"},
		{"http_allow a number", `"http_allow":[1]`, ``, "metadata.http_allow[0]", "must be a string, not 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantProblem(t, refuse(tt.meta, tt.config, v), tt.path, tt.msg) })
	}
	w := wantValid(t, refuse(`"http_allow":["API.example.com","*.example.org","10.1.2.3","::1"]`,
		`"tools":["http_request","fs.read_file","search.*","s-1.tool.with.dots"]`, v))
	if got := w.Graph().AI[1].Tools; !slices.Equal(got, []string{"http_request", "fs.read_file", "search.*", "s-1.tool.with.dots"}) {
		t.Errorf("AIConfig.Tools = %q", got)
	}
	if got := w.HTTPAllow(); !slices.Equal(got, []string{"api.example.com", "*.example.org", "10.1.2.3", "::1"}) {
		t.Errorf("HTTPAllow = %q", got)
	}
}

func TestToolPatternsMatch(t *testing.T) {
	t.Parallel()
	patterns := []string{"http_request", "fs.read_file", "search.*"}
	for name, want := range map[string]bool{
		"http_request": true, "fs.read_file": true, "fs.write_file": false, "search.query": true,
		"search.deep.query": true, "searchx.query": false, "search": false, "fs": false, "ask_node": false,
	} {
		if got := workflow.AllowsTool(patterns, name); got != want {
			t.Errorf("AllowsTool(%q) = %v, want %v", name, got, want)
		}
	}
	if workflow.AllowsTool(nil, "http_request") {
		t.Error("no patterns allow a tool")
	}
}

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	list := []string{"api.example.com", "*.example.org", "10.1.2.3", "::1"}
	for host, want := range map[string]bool{
		"api.example.com": true, "API.Example.com.": true, "x.api.example.com": false, "example.com": false,
		"a.example.org": true, "a.b.example.org": true, "example.org": false, "badexample.org": false,
		"10.1.2.3": true, "[::1]": true, "0:0::1": true, "": false,
	} {
		if got := workflow.HostAllowed(list, host); got != want {
			t.Errorf("HostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}
