package web

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogCapture is a slog.Handler that keeps every record as one line of text
// ("LEVEL message key=value …"), for tests that check what the server logs
// and at which level. It is safe for concurrent use.
type LogCapture struct {
	mu     sync.Mutex
	lines  []string
	notify chan struct{}
	attrs  []slog.Attr
	parent *LogCapture
}

// NewLogCapture returns an empty capture.
func NewLogCapture() *LogCapture { return &LogCapture{notify: make(chan struct{}, 1)} }

func (l *LogCapture) root() *LogCapture {
	if l.parent != nil {
		return l.parent.root()
	}
	return l
}

func (l *LogCapture) Enabled(context.Context, slog.Level) bool { return true }

func (l *LogCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	write := func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true }
	for _, a := range l.attrs {
		write(a)
	}
	r.Attrs(write)
	root := l.root()
	root.mu.Lock()
	root.lines = append(root.lines, b.String())
	root.mu.Unlock()
	select {
	case root.notify <- struct{}{}:
	default:
	}
	return nil
}

func (l *LogCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &LogCapture{parent: l, attrs: append(append([]slog.Attr{}, l.attrs...), as...)}
}

func (l *LogCapture) WithGroup(string) slog.Handler { return l }

// Lines returns the records so far.
func (l *LogCapture) Lines() []string {
	r := l.root()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// Wait returns the first record that contains every part, waiting for it
// up to timeout; it fails the test when none comes.
func (l *LogCapture) Wait(t testing.TB, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		for _, line := range l.Lines() {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return line
			}
		}
		select {
		case <-l.root().notify:
		case <-deadline.C:
			t.Fatalf("no log record with %q within %s; the log:\n%s", parts, timeout, strings.Join(l.Lines(), "\n"))
			return ""
		}
	}
}
