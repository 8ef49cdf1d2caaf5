package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/tools"
	"github.com/switchboard-dev/switchboard/workflow"
)

// addMCPFlags adds the flags of the MCP client to fs, each with its value
// from the environment, which a flag given replaces. The server and every
// worker need the same: a worker's agents use the worker's.
func addMCPFlags(fs *flag.FlagSet, getenv func(string) string, mc *executor.MCPConfig) error {
	if v := getenv("SWITCHBOARD_MCP_CONFIG"); v != "" {
		if err := loadMCPConfig(v, mc); err != nil {
			return fmt.Errorf("SWITCHBOARD_MCP_CONFIG: %w", err)
		}
	}
	fs.Func("mcp-config", `a file of MCP servers every workflow's nodes may use, {"mcpServers": {"name": {"command": "...", "args": [...]} or {"url": "..."}}} (env SWITCHBOARD_MCP_CONFIG); give workers the same`,
		func(v string) error { return loadMCPConfig(v, mc) })
	if v := getenv("SWITCHBOARD_ALLOW_WORKFLOW_COMMANDS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_ALLOW_WORKFLOW_COMMANDS=%q: want true or false", v)
		}
		mc.AllowWorkflowCommands = b
	}
	fs.BoolVar(&mc.AllowWorkflowCommands, "allow-workflow-commands", mc.AllowWorkflowCommands,
		"let the stdio MCP servers a workflow declares (metadata.mcp_servers) run their commands on this host (env SWITCHBOARD_ALLOW_WORKFLOW_COMMANDS); off: only the --mcp-config file's may")
	mc.CallTimeout = 60 * time.Second
	if v := getenv("SWITCHBOARD_MCP_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("SWITCHBOARD_MCP_TIMEOUT=%q: want a positive duration like 60s", v)
		}
		mc.CallTimeout = d
	}
	fs.DurationVar(&mc.CallTimeout, "mcp-timeout", mc.CallTimeout, "how long one MCP server may take to start, list its tools or answer a call (env SWITCHBOARD_MCP_TIMEOUT)")
	mc.IdleTimeout = tools.DefaultIdleTimeout
	if v := getenv("SWITCHBOARD_MCP_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("SWITCHBOARD_MCP_IDLE=%q: want a positive duration like 5m", v)
		}
		mc.IdleTimeout = d
	}
	fs.DurationVar(&mc.IdleTimeout, "mcp-idle", mc.IdleTimeout, "how long an MCP server may go unused before its session is closed and its process stopped; the next use starts it again (env SWITCHBOARD_MCP_IDLE)")
	return nil
}

// loadMCPConfig reads the MCP file at path into mc's servers.
func loadMCPConfig(path string, mc *executor.MCPConfig) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read MCP config: %w", err)
	}
	servers, err := workflow.ParseMCPConfig(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	mc.Servers = servers
	return nil
}
