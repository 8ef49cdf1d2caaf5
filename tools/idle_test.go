package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/tools"
)

// TestMCPIdleSessionStops: a stdio server unused for the idle timeout is
// stopped (its process exits), the next call starts it again, and a call
// that lasts longer than the idle timeout keeps its session.
func TestMCPIdleSessionStops(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	stops := &countStops{Handler: logger(t).Handler()}
	m := tools.NewMCP(tools.MCPOptions{CallTimeout: 10 * time.Second, IdleTimeout: idle, Logger: slog.New(stops)})
	t.Cleanup(func() { m.Close() })
	s := stdioServer(t)
	pid := func() int {
		t.Helper()
		got, err := m.Call(t.Context(), s, "pid", json.RawMessage(`{}`))
		if err != nil {
			t.Fatalf("Call pid: %v", err)
		}
		n, err := strconv.Atoi(got)
		if err != nil {
			t.Fatalf("Call pid = %q", got)
		}
		return n
	}
	first := pid()
	waitGone(t, first)

	second := pid()
	if second == first {
		t.Fatalf("the server was not started again: pid %d both times", first)
	}
	// A call three times the idle timeout long keeps its session: no
	// stop while it runs.
	before := stops.n.Load()
	if got, err := m.Call(t.Context(), s, "slow", json.RawMessage(`{"ms":900}`)); err != nil || got != "done" {
		t.Fatalf("Call slow = %q, %v", got, err)
	}
	if n := stops.n.Load(); n != before {
		t.Errorf("the session was stopped as idle during a call (%d stops before, %d after)", before, n)
	}
	waitGone(t, second)
}

// countStops counts the log records of idle sessions stopped.
type countStops struct {
	slog.Handler
	n atomic.Int32
}

func (h *countStops) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "MCP server stopped") {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

// waitGone waits until the process pid has exited and been reaped.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle server's process %d is still there", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
