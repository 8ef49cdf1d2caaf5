// Package bustest starts Redis servers for tests, so that the same test runs against the
// embedded miniredis of package bus and against a real redis-server:
//
//	func TestX(t *testing.T) {
//		bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
//			b, err := bus.Connect(ctx, url, logger)
//			...
//			ctl.Kill()    // fault injection: every connection drops
//			ctl.Restart() // same address, empty server
//		})
//	}
//
// The real server is the redis-server binary on PATH (Debian package redis-server), started by
// package internal/redisserver (which the bench program shares) on a free loopback port with no
// persistence, and stopped, by its process id, when the test ends.
// When redis-server is missing the redis-server variant skips, saying how to install it; when
// the environment has CI=true it fails instead.
//
// It is meant for tests only: failures are reported through testing.TB.
package bustest

import (
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/internal/redisserver"
)

// Backend names, as used for subtest names.
const (
	Miniredis   = "miniredis"
	RedisServer = "redis-server"
)

// Controller controls a Redis server started for a test. Its methods must be called from the
// test's goroutine (they report failures with tb.Fatal); they are safe against each other.
type Controller interface {
	// Name returns Miniredis or RedisServer.
	Name() string
	// Addr returns the server's host:port; it stays the same across Restart.
	Addr() string
	// URL returns "redis://" + Addr().
	URL() string
	// Kill stops the server abruptly: redis-server gets SIGKILL, miniredis is closed. Every
	// client connection drops. Kill waits until the server is gone.
	Kill()
	// Restart starts a new, empty server on the same address and waits until it answers PING.
	Restart()
}

// Backend is a started server.
type Backend struct {
	Name string
	URL  string
	Ctl  Controller
}

// ForEach runs fn as a subtest for each backend (miniredis, then redis-server), each with a
// server of its own that is stopped when the subtest ends.
func ForEach(t *testing.T, fn func(t *testing.T, url string, ctl Controller)) {
	t.Helper()
	for _, name := range []string{Miniredis, RedisServer} {
		t.Run(name, func(t *testing.T) {
			ctl := Start(t, name)
			fn(t, ctl.URL(), ctl)
		})
	}
}

// ForEachB runs fn as a sub-benchmark for each backend. The servers are started once, before
// the sub-benchmarks, and stopped when b ends, so fn's repeated runs share them.
func ForEachB(b *testing.B, fn func(b *testing.B, url string, ctl Controller)) {
	b.Helper()
	for _, name := range []string{Miniredis, RedisServer} {
		if name == RedisServer {
			if _, err := exec.LookPath("redis-server"); err != nil {
				b.Run(name, func(b *testing.B) { RequireRedisServer(b) })
				continue
			}
		}
		ctl := Start(b, name)
		b.Run(name, func(b *testing.B) { fn(b, ctl.URL(), ctl) })
	}
}

// Start starts the named backend (Miniredis or RedisServer) for tb and stops it in tb.Cleanup.
func Start(tb testing.TB, name string) Controller {
	tb.Helper()
	switch name {
	case Miniredis:
		return startMiniredis(tb)
	case RedisServer:
		return startRedisServer(tb)
	}
	tb.Fatalf("bustest: unknown backend %q", name)
	return nil
}

const installHint = "redis-server not found on PATH: install redis-server (apt-get install redis-server)"

// RequireRedisServer returns the path of redis-server, or skips tb (fails it when CI=true)
// when it is not on PATH.
func RequireRedisServer(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s (CI=true)", installHint)
		}
		tb.Skip(installHint)
	}
	return bin
}

// ---- miniredis ----

type mini struct {
	tb   testing.TB
	addr string

	mu sync.Mutex
	e  *bus.Embedded // nil while killed
}

func startMiniredis(tb testing.TB) *mini {
	tb.Helper()
	e, err := bus.StartEmbedded("127.0.0.1:0", logger(tb))
	if err != nil {
		tb.Fatalf("bustest: start miniredis: %v", err)
	}
	m := &mini{tb: tb, addr: e.Addr(), e: e}
	tb.Cleanup(m.Kill)
	return m
}

// logger returns a logger writing to tb's output, where a failing test shows what the server
// said.
func logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (m *mini) Name() string { return Miniredis }
func (m *mini) Addr() string { return m.addr }
func (m *mini) URL() string  { return "redis://" + m.addr }

func (m *mini) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		m.e.Close()
		m.e = nil
	}
}

func (m *mini) Restart() {
	m.tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		m.e.Close()
		m.e = nil
	}
	e, err := bus.StartEmbedded(m.addr, logger(m.tb))
	if err != nil {
		m.tb.Fatalf("bustest: restart miniredis on %s: %v", m.addr, err)
	}
	if e.Addr() != m.addr {
		e.Close()
		m.tb.Fatalf("bustest: restart miniredis: %s was taken, got %s", m.addr, e.Addr())
	}
	m.e = e
}

// ---- redis-server ----

// redisServer reports the errors of a redisserver.Server through tb.
type redisServer struct {
	tb testing.TB
	s  *redisserver.Server
}

func startRedisServer(tb testing.TB) *redisServer {
	tb.Helper()
	RequireRedisServer(tb)
	s, err := redisserver.Start(tb.TempDir())
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	r := &redisServer{tb: tb, s: s}
	tb.Cleanup(r.stop)
	return r
}

func (r *redisServer) Name() string { return RedisServer }
func (r *redisServer) Addr() string { return r.s.Addr() }
func (r *redisServer) URL() string  { return r.s.URL() }

func (r *redisServer) Kill() {
	r.tb.Helper()
	if err := r.s.Kill(); err != nil {
		r.tb.Fatalf("bustest: %v", err)
	}
}

func (r *redisServer) Restart() {
	r.tb.Helper()
	if err := r.s.Restart(); err != nil {
		r.tb.Fatalf("bustest: %v", err)
	}
}

func (r *redisServer) stop() {
	if err := r.s.Kill(); err != nil {
		r.tb.Errorf("bustest: stop: %v", err)
	}
	if r.tb.Failed() {
		r.tb.Logf("redis-server log:\n%s", r.s.LogTail(40))
	}
}
