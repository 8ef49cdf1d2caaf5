package workflow

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// MCPServer is an MCP server agents may call tools of: a command started
// on the host and spoken to over its stdin and stdout, or a streamable
// HTTP endpoint. Exactly one of Command and URL is set.
type MCPServer struct {
	Name    string            `json:"name"`
	Command []string          `json:"command,omitempty"` // the program and its arguments
	Env     map[string]string `json:"env,omitempty"`     // added to the host's environment for the command
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"` // sent with every request to URL
	// Global is set on the servers of the operator's file (--mcp-config),
	// whose commands always may start; a workflow's own need the
	// operator's leave.
	Global bool `json:"-"`
	// Secrets are the secret values its headers and env were given from
	// the run's variables (Rendered): what its process writes to its
	// stderr is logged with them masked.
	Secrets []string `json:"-"`
}

// MCPServers returns the servers of the workflow's metadata.mcp_servers;
// entries that are not valid are left out (Validate reports them).
func (w *Workflow) MCPServers() []MCPServer {
	list, _ := w.Metadata["mcp_servers"].([]any)
	var out []MCPServer
	for _, v := range list {
		var problems int
		s := mcpServerOf(v, "", func(string, string, ...any) { problems++ })
		if problems == 0 {
			out = append(out, s)
		}
	}
	return out
}

// validateMCPServers checks metadata.mcp_servers: a list of servers, each
// with a unique name usable before the dot of a config.tools pattern and
// exactly one of command and url.
func validateMCPServers(v any, add func(string, string, ...any)) {
	const path = "metadata.mcp_servers"
	list, ok := v.([]any)
	if !ok {
		add(path, "must be a list of servers like {\"name\": \"fs\", \"command\": [\"prog\", \"arg\"]} or {\"name\": \"search\", \"url\": \"https://…/mcp\"}, not %s", describe(v))
		return
	}
	seen := map[string]int{}
	for i, e := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		s := mcpServerOf(e, p, add)
		if s.Name == "" {
			continue
		}
		if j, dup := seen[s.Name]; dup {
			add(p+".name", "%q is also the name of %s[%d]", s.Name, path, j)
		}
		seen[s.Name] = i
	}
}

// mcpServerOf reads one server entry of metadata.mcp_servers, reporting
// what is wrong with it under path.
func mcpServerOf(v any, path string, add func(string, string, ...any)) MCPServer {
	m, ok := v.(map[string]any)
	if !ok {
		add(path, "must be an object with a name and a command or a url, not %s", describe(v))
		return MCPServer{}
	}
	var s MCPServer
	for k := range m {
		switch k {
		case "name", "command", "env", "url", "headers":
		default:
			add(path+"."+k, "unknown key; a server has name, command and env, or name, url and headers")
		}
	}
	name, _ := m["name"].(string)
	if err := CheckMCPServerName(name); err != nil {
		add(path+".name", "%s, not %s", err.Error(), describe(m["name"]))
	} else {
		s.Name = name
	}
	cmd, hasCmd := m["command"]
	u, hasURL := m["url"]
	switch {
	case hasCmd && hasURL:
		add(path, "has both command and url; give one: command for a program spoken to over stdio, url for a streamable HTTP server")
	case !hasCmd && !hasURL:
		add(path, "needs a command (a list: the program and its arguments) or a url")
	case hasCmd:
		list, ok := cmd.([]any)
		if !ok || len(list) == 0 {
			add(path+".command", "must be a non-empty list: the program and its arguments, not %s", describe(cmd))
		}
		for j, a := range list {
			if str, ok := a.(string); !ok || (j == 0 && strings.TrimSpace(str) == "") {
				add(fmt.Sprintf("%s.command[%d]", path, j), "must be a non-empty string, not %s", describe(a))
			} else {
				s.Command = append(s.Command, str)
			}
		}
		s.Env = stringMap(m["env"], path+".env", add)
		if _, ok := m["headers"]; ok {
			add(path+".headers", "goes with a url, not a command")
		}
	default:
		str, _ := u.(string)
		if err := checkMCPURL(str); err != nil {
			add(path+".url", "%s, not %s", err.Error(), describe(u))
		}
		s.URL = str
		s.Headers = stringMap(m["headers"], path+".headers", add)
		if _, ok := m["env"]; ok {
			add(path+".env", "goes with a command, not a url")
		}
	}
	return s
}

// CheckMCPServerName says what is wrong with name as an MCP server's name,
// or returns nil: it is the part before the dot of config.tools patterns.
func CheckMCPServerName(name string) error {
	if !validServerName(name) {
		return fmt.Errorf("a server name must be 1 to 64 letters, digits, _ or -")
	}
	return nil
}

func checkMCPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// URL")
	}
	return nil
}

// stringMap reads an object of strings (env, headers); nil when v is nil.
func stringMap(v any, path string, add func(string, string, ...any)) map[string]string {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		add(path, "must be an object of strings, not %s", describe(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, ok := e.(string)
		if !ok {
			add(path+"."+k, "must be a string, not %s", describe(e))
			continue
		}
		out[k] = s
	}
	return out
}

// ParseMCPConfig reads the operator's MCP file, in the shape other MCP
// clients read: {"mcpServers": {"name": {"command": "prog", "args": [...],
// "env": {...}} or {"url": "...", "headers": {...}}}}. The servers come
// back sorted by name, marked Global. A problem is an error naming its
// JSON path.
func ParseMCPConfig(data []byte) ([]MCPServer, error) {
	var file struct {
		Servers map[string]struct {
			Command *string           `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
			URL     *string           `json:"url"`
			Headers map[string]string `json:"headers"`
			Type    string            `json:"type"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("read MCP config: %w", err)
	}
	if file.Servers == nil {
		return nil, fmt.Errorf("mcpServers: missing; the file holds {\"mcpServers\": {\"name\": {\"command\": \"prog\", \"args\": []} or {\"url\": \"https://…/mcp\"}}}")
	}
	names := make([]string, 0, len(file.Servers))
	for n := range file.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]MCPServer, 0, len(names))
	for _, n := range names {
		e := file.Servers[n]
		path := "mcpServers." + n
		if err := CheckMCPServerName(n); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s := MCPServer{Name: n, Env: e.Env, Headers: e.Headers, Global: true}
		// Other clients' files may say the transport; one this client
		// does not speak must be refused, not tried as another.
		switch e.Type {
		case "", "stdio", "http", "streamable-http", "streamableHttp":
		case "sse":
			return nil, fmt.Errorf("%s.type: \"sse\" (the older HTTP+SSE transport) is not supported: Switchboard reaches a server over stdio (command) or streamable HTTP (url; servers that speak SSE often serve it too, at /mcp)", path)
		default:
			return nil, fmt.Errorf("%s.type: %q is not a transport Switchboard speaks: \"stdio\" (with a command) or \"http\" (with a url)", path, e.Type)
		}
		if (e.Type == "stdio" && e.Command == nil) || (e.Type != "" && e.Type != "stdio" && e.URL == nil) {
			return nil, fmt.Errorf("%s.type: %q goes with %s", path, e.Type, map[bool]string{true: "a command", false: "a url"}[e.Type == "stdio"])
		}
		switch {
		case e.Command != nil && e.URL != nil:
			return nil, fmt.Errorf("%s: has both command and url; give one", path)
		case e.Command != nil:
			if strings.TrimSpace(*e.Command) == "" {
				return nil, fmt.Errorf("%s.command: must not be empty", path)
			}
			s.Command = append([]string{*e.Command}, e.Args...)
		case e.URL != nil:
			if err := checkMCPURL(*e.URL); err != nil {
				return nil, fmt.Errorf("%s.url: %w", path, err)
			}
			s.URL = *e.URL
		default:
			return nil, fmt.Errorf("%s: needs a command or a url", path)
		}
		out = append(out, s)
	}
	return out, nil
}
