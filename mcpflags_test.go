package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
)

// TestMCPIdleFlag: --mcp-idle defaults to 5 minutes, takes
// SWITCHBOARD_MCP_IDLE, and a flag given wins; a bad value is refused
// naming the variable.
func TestMCPIdleFlag(t *testing.T) {
	t.Parallel()
	parse := func(env map[string]string, args ...string) (executor.MCPConfig, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var mc executor.MCPConfig
		if err := addMCPFlags(fs, func(k string) string { return env[k] }, &mc); err != nil {
			return mc, err
		}
		return mc, fs.Parse(args)
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want time.Duration
	}{
		{nil, nil, 5 * time.Minute},
		{map[string]string{"SWITCHBOARD_MCP_IDLE": "2m"}, nil, 2 * time.Minute},
		{map[string]string{"SWITCHBOARD_MCP_IDLE": "2m"}, []string{"--mcp-idle", "30s"}, 30 * time.Second},
	} {
		mc, err := parse(c.env, c.args...)
		if err != nil || mc.IdleTimeout != c.want {
			t.Errorf("env %v, args %v: idle %s, %v; want %s", c.env, c.args, mc.IdleTimeout, err, c.want)
		}
	}
	if _, err := parse(map[string]string{"SWITCHBOARD_MCP_IDLE": "soon"}); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_MCP_IDLE") {
		t.Errorf("a bad SWITCHBOARD_MCP_IDLE: %v", err)
	}
}
