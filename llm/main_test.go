package llm_test

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a retry timer, a stream
// reader or a hung request left behind would leak once per node call in production.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger sends a client's log lines to the test's output, shown with a failing test.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
