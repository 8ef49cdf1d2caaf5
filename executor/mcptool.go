package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/tools"
	"github.com/switchboard-dev/switchboard/workflow"
)

// MCPConfig is how agents reach MCP servers. A worker reads its own (flags
// and environment), so the operator gives every worker the same file and
// the same leave as the server; a workflow's metadata.mcp_servers travels
// with the workflow.
type MCPConfig struct {
	// Servers are the operator's (--mcp-config), marked Global: their
	// commands always may start. A workflow's own server of the same name
	// is the one its nodes reach.
	Servers []workflow.MCPServer
	// AllowWorkflowCommands lets the stdio servers a workflow declares
	// start on the host. Off, a workflow imported from someone else cannot
	// run a program of its choosing here.
	AllowWorkflowCommands bool
	// CallTimeout bounds one start, listing or call of a server;
	// tools.DefaultCallTimeout (60 s) when <= 0.
	CallTimeout time.Duration
	// IdleTimeout is how long a server's session may go unused before it
	// is closed, its process stopped; the next use starts it again.
	// tools.DefaultIdleTimeout (5 min) when <= 0.
	IdleTimeout time.Duration
}

// newMCP returns the MCP sessions of an executor or a worker. The URLs
// of a workflow's servers are dialled as http_request dials: a workflow
// imported from someone else must not reach the host's own services or a
// cloud metadata endpoint, unless the operator names the host in
// --http-allow-private.
func newMCP(cfg MCPConfig, hc HTTPConfig, logger *slog.Logger) *tools.MCP {
	return tools.NewMCP(tools.MCPOptions{CallTimeout: cfg.CallTimeout, IdleTimeout: cfg.IdleTimeout, Logger: logger,
		WorkflowDial: (&checkedDialer{private: hc.AllowPrivate}).DialContext})
}

// mcpCommandsHint says how to let a workflow's stdio servers start, in the
// errors the model reads.
const mcpCommandsHint = "commands of a workflow's MCP servers start only when the operator passes --allow-workflow-commands " +
	"(SWITCHBOARD_ALLOW_WORKFLOW_COMMANDS=true) to the server and every worker, or declares the server in the --mcp-config file"

// mcpLists is the MCP side of one execution: the servers its nodes may
// reach, and their tool lists, fetched once for the execution when a node
// first needs them (a server's tools may change between executions). It
// is safe for concurrent use.
type mcpLists struct {
	mgr     *tools.MCP
	allow   bool
	servers map[string]workflow.MCPServer
	// broken says why a workflow's server cannot be used in this
	// execution: a placeholder in its headers or env names no variable.
	broken map[string]error

	mu    sync.Mutex
	lists map[string]*mcpList
	// warned are the node and config.tools entries already warned of as
	// matching no tool: once per execution, not once per conversation.
	warned map[string]bool
}

// firstWarning reports whether the warning about entry of node is new in
// the execution.
func (l *mcpLists) firstWarning(node, entry string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := node + "\x00" + entry
	if l.warned[key] {
		return false
	}
	if l.warned == nil {
		l.warned = map[string]bool{}
	}
	l.warned[key] = true
	return true
}

type mcpList struct {
	done  chan struct{}
	tools []tools.Tool
	err   error
}

// newMCPLists returns the MCP side of an execution of wf. The headers and
// env of the workflow's servers get the run's variables vars ({{name}});
// secrets are the values masked in the execution's record.
func newMCPLists(mgr *tools.MCP, cfg MCPConfig, wf *workflow.Workflow, vars map[string]any, secrets []string) *mcpLists {
	// Its maps are made when first written: most executions reach no
	// MCP server, and every execution has its lists.
	l := &mcpLists{mgr: mgr, allow: cfg.AllowWorkflowCommands}
	wfServers := wf.MCPServers()
	if n := len(cfg.Servers) + len(wfServers); n > 0 {
		l.servers = make(map[string]workflow.MCPServer, n)
	}
	for _, s := range cfg.Servers {
		l.servers[s.Name] = s
	}
	for _, s := range wfServers {
		r, err := s.Rendered(vars, secrets)
		if err != nil {
			if l.broken == nil {
				l.broken = map[string]error{}
			}
			l.broken[s.Name] = err
		}
		l.servers[s.Name] = r
	}
	return l
}

// mcpVars are the run variables of vars the headers and env of wf's MCP
// servers name: what a worker needs to render them as the server does.
func mcpVars(wf *workflow.Workflow, vars map[string]any) map[string]any {
	var out map[string]any
	for _, s := range wf.MCPServers() {
		for _, n := range s.VarNames() {
			if v, ok := vars[n]; ok {
				if out == nil {
					out = map[string]any{}
				}
				out[n] = v
			}
		}
	}
	return out
}

// list returns the server named name and its tools, or why they cannot be
// had: no such server, a workflow's command not allowed, a server that
// does not start or list.
func (l *mcpLists) list(ctx context.Context, name string) (workflow.MCPServer, []tools.Tool, error) {
	s, ok := l.servers[name]
	switch {
	case !ok:
		return s, nil, fmt.Errorf("there is no MCP server %q: declare it in the workflow's metadata.mcp_servers or in the operator's --mcp-config file", name)
	case len(s.Command) > 0 && !s.Global && !l.allow:
		return s, nil, fmt.Errorf("MCP server %q runs a command on the host (%s), and %s", name, s.Command[0], mcpCommandsHint)
	case l.broken[name] != nil:
		return s, nil, l.broken[name]
	}
	l.mu.Lock()
	e, ok := l.lists[name]
	if !ok {
		e = &mcpList{done: make(chan struct{})}
		if l.lists == nil {
			l.lists = map[string]*mcpList{}
		}
		l.lists[name] = e
	}
	l.mu.Unlock()
	if !ok {
		// The list is the execution's, not this node's: a node that ends
		// while it is fetched must not leave its cancellation in the cache
		// (List is bounded by the call timeout).
		e.tools, e.err = l.mgr.List(context.WithoutCancel(ctx), s)
		close(e.done)
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return s, nil, context.Cause(ctx)
	}
	return s, e.tools, e.err
}

// mcpTools are the MCP tools the node's config.tools allows, named
// server__tool: chat-completions tool names allow no dot. A server whose
// tools cannot be had is offered as tools that answer why (those the
// patterns name, or one named after the server for server.*), so the
// model reads the failure instead of missing tools without a word.
func (a *agent) mcpTools(ctx context.Context) []tool {
	if a.mcp == nil {
		return nil
	}
	var servers []string
	for _, p := range a.cfg.Tools {
		if s, _, ok := strings.Cut(p, "."); ok && !slices.Contains(servers, s) {
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		return nil
	}
	var out []tool
	seen := map[string]bool{}
	add := func(t tool) {
		if seen[t.def.Name] {
			a.log(slog.LevelWarn, "Node %s: two MCP tools are named %s for the model; only the first is offered", a.node.ID, t.def.Name)
			return
		}
		seen[t.def.Name] = true
		out = append(out, t)
	}
	for _, name := range servers {
		srv, list, err := a.mcp.list(ctx, name)
		if err != nil {
			a.log(slog.LevelWarn, "Node %s: the tools of MCP server %s are unavailable: %v", a.node.ID, name, err)
			for _, p := range a.cfg.Tools {
				s, t, _ := strings.Cut(p, ".")
				if s != name {
					continue
				}
				fn := name
				if t != "*" {
					fn = mcpToolName(name, t)
				}
				add(unavailableTool(fn, name, t, err))
			}
			continue
		}
		for _, t := range list {
			if !workflow.AllowsTool(a.cfg.Tools, name+"."+t.Name) {
				continue
			}
			add(a.mcpTool(srv, t))
		}
		a.warnUnmatched(name, list)
	}
	return out
}

// warnUnmatched logs the config.tools entries of server name that match
// none of its tools (a misspelt tool, a server without tools): the model
// is not offered them, and without a word the author would not know why.
func (a *agent) warnUnmatched(name string, list []tools.Tool) {
	var have []string
	for _, t := range list {
		have = append(have, t.Name)
	}
	for _, p := range a.cfg.Tools {
		s, t, _ := strings.Cut(p, ".")
		switch {
		case s != name || (t == "*" && len(list) > 0) || (t != "*" && slices.Contains(have, t)):
		case !a.mcp.firstWarning(a.node.ID, p):
		case t == "*":
			a.log(slog.LevelWarn, "Node %s: config.tools names %s, and MCP server %s offers no tools", a.node.ID, p, name)
		default:
			a.log(slog.LevelWarn, "Node %s: config.tools names %s, and MCP server %s has no tool %q, so it is not offered; its tools are: %s",
				a.node.ID, p, name, t, strings.Join(have, ", "))
		}
	}
}

func (a *agent) mcpTool(srv workflow.MCPServer, t tools.Tool) tool {
	desc := t.Description
	if desc == "" {
		desc = t.Name
	}
	mgr := a.mcp.mgr
	return tool{
		def:  llm.Tool{Name: mcpToolName(srv.Name, t.Name), Description: fmt.Sprintf("%s (tool %s of MCP server %s)", desc, t.Name, srv.Name), Parameters: t.Schema},
		meta: map[string]any{"mcp_server": srv.Name, "mcp_tool": t.Name},
		call: func(ctx context.Context, args json.RawMessage) (string, error) {
			return mgr.Call(ctx, srv, t.Name, args)
		},
	}
}

// unavailableTool stands for tool (or "*") of a server whose tools cannot
// be had: calling it returns why.
func unavailableTool(fn, server, name string, why error) tool {
	what := "the tools of MCP server " + server
	if name != "*" {
		what = fmt.Sprintf("tool %s of MCP server %s", name, server)
	}
	return tool{
		def: llm.Tool{Name: fn, Description: fmt.Sprintf("Unavailable: %s cannot be used (%v). Calling this returns the reason.", what, why),
			Parameters: json.RawMessage(`{"type":"object","properties":{}}`)},
		meta: map[string]any{"mcp_server": server, "mcp_tool": name},
		call: func(context.Context, json.RawMessage) (string, error) {
			return "", fmt.Errorf("%s cannot be used: %w", what, why)
		},
	}
}

// mcpToolName is the name the model calls tool of server by:
// server__tool, with the characters a tool name may not hold (the dot)
// made _, and cut to 64 with a hash of the whole when longer. The call
// goes back to the server's own name through the tool, not the name.
func mcpToolName(server, tool string) string {
	n := server + "__" + strings.Map(func(r rune) rune {
		if r < 128 && (r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, tool)
	// What chat-completions APIs accept as a tool's name: the mapping
	// above leaves only such characters, so only the length can be wrong.
	if len(n) <= 64 {
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(server + "." + tool))
	return fmt.Sprintf("%s_%08x", n[:55], h.Sum32())
}
