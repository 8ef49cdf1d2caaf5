package workflow

import (
	"fmt"
	"net"
	"strings"
)

// ToolHTTPRequest is the built-in tool that makes HTTP requests to the
// hosts a workflow or the operator allows.
const ToolHTTPRequest = "http_request"

// builtinTools are the tools a node's config.tools may name without a
// server: names without a dot.
var builtinTools = map[string]bool{ToolHTTPRequest: true}

// A tool pattern of config.tools is a built-in tool's name
// ("http_request"), one tool of an MCP server ("fs.read_file"), or every
// tool of a server ("search.*"). Server names are what a workflow's
// metadata or the global MCP file call them; tool names are what the MCP
// specification allows (letters, digits, _ - and .).
//
// The names are checked by nameOf, not regular expressions: a counted
// repetition compiles to a program the size of its count, which every
// start of the binary paid for.

// nameOf reports whether s is 1 to max bytes of ASCII letters, digits and
// the bytes in extra.
func nameOf(s string, max int, extra string) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

func validServerName(s string) bool { return nameOf(s, 64, "_-") }
func validToolName(s string) bool   { return nameOf(s, 128, "_.-") }

// CheckToolPattern says what is wrong with p as an entry of a node's
// config.tools, or returns nil.
func CheckToolPattern(p string) error {
	server, tool, qualified := strings.Cut(p, ".")
	switch {
	case p == "":
		return fmt.Errorf("a tool name must not be empty")
	case !qualified && builtinTools[p]:
		return nil
	case !qualified:
		return fmt.Errorf("unknown built-in tool %q; the built-in tool is %s, and an MCP server's tools are named server.tool or server.*", p, ToolHTTPRequest)
	case !validServerName(server):
		return fmt.Errorf("%q: the server name before the dot must be 1 to 64 letters, digits, _ or -", p)
	case tool == "*":
		return nil
	case !validToolName(tool):
		return fmt.Errorf("%q: the tool name after the dot must be 1 to 128 letters, digits, _, - or ., or * for all of the server's tools", p)
	}
	return nil
}

// AllowsTool reports whether the patterns of a node's config.tools allow
// the tool named name: a built-in tool by its name, an MCP server's tool
// by "server.tool" (matched by that name or by "server.*"). Names are
// compared exactly: a server's tools are its own to name.
func AllowsTool(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == name {
			return true
		}
		if server, ok := strings.CutSuffix(p, ".*"); ok {
			if s, _, found := strings.Cut(name, "."); found && s == server {
				return true
			}
		}
	}
	return false
}

// HTTPAllow returns the hosts the workflow's metadata.http_allow lets
// http_request reach, lowercased; entries of the wrong type are left out
// (Validate reports them).
func (w *Workflow) HTTPAllow() []string {
	list, _ := w.Metadata["http_allow"].([]any)
	hosts := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok && CheckHostPattern(s) == nil {
			hosts = append(hosts, strings.ToLower(s))
		}
	}
	return hosts
}

// validHostLabel reports whether l is one label of a host name: up to 63
// letters, digits, _ and -, starting and ending with a letter or digit.
func validHostLabel(l string) bool {
	return nameOf(l, 63, "_-") && l[0] != '_' && l[0] != '-' && l[len(l)-1] != '_' && l[len(l)-1] != '-'
}

// CheckHostPattern says what is wrong with h as an entry of an HTTP
// allow-list, or returns nil. An entry is a host name ("api.example.com"),
// a host name with "*." before it for the name's subdomains
// ("*.example.com"), or an IP address; never a URL or a port.
func CheckHostPattern(h string) error {
	switch {
	case h == "":
		return fmt.Errorf("a host must not be empty")
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@ "):
		return fmt.Errorf("%q is not a host name: give the host alone, like api.example.com, without scheme, path or port", h)
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return nil
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, ":") {
		return fmt.Errorf("%q: give the host without a port", h)
	}
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	for _, l := range labels {
		if !validHostLabel(l) {
			return fmt.Errorf("%q is not a host name (letters, digits, - and _ in dot-separated labels; *. before it for its subdomains)", h)
		}
	}
	if name != h && len(labels) < 2 {
		return fmt.Errorf("%q: a wildcard needs a domain of two labels or more, like *.example.com", h)
	}
	return nil
}

// HostAllowed reports whether host (a URL's host name, without port)
// matches an entry of list, an allow-list of CheckHostPattern entries.
// Host names are compared without case and without a trailing dot.
func HostAllowed(list []string, host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	for _, p := range list {
		p = strings.TrimSuffix(strings.ToLower(strings.Trim(p, "[]")), ".")
		if sub, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+sub) {
				return true
			}
			continue
		}
		if p == host {
			return true
		}
		if ip, pip := net.ParseIP(host), net.ParseIP(p); ip != nil && pip != nil && ip.Equal(pip) {
			return true
		}
	}
	return false
}
