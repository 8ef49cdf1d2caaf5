package executor_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// execution, agent subscription and handler must end. With
// SWITCHBOARD_TEST_MCP_SERVER set, the test binary is a stdio MCP server
// instead, for the tests of MCP tools over stdio.
func TestMain(m *testing.M) {
	if os.Getenv("SWITCHBOARD_TEST_MCP_SERVER") != "" {
		// A server's own log shows its settings, as real ones may: what
		// the client logs of it must not show a secret among them.
		fmt.Fprintf(os.Stderr, "test MCP server starting, PREFIX %q\n", os.Getenv("PREFIX"))
		if err := testMCPServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
