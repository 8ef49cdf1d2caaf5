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
// The real server is the redis-server binary on PATH (Debian package redis-server), started on
// a free loopback port with no persistence and stopped, by its process id, when the test ends.
// When redis-server is missing the redis-server variant skips, saying how to install it; when
// the environment has CI=true it fails instead.
//
// It is meant for tests only: failures are reported through testing.TB.
package bustest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
)

// Backend names, as used for subtest names.
const (
	Miniredis   = "miniredis"
	RedisServer = "redis-server"
)

// startTimeout bounds how long a server may take to answer PING after it was started.
const startTimeout = 15 * time.Second

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
	e, err := bus.StartEmbedded("127.0.0.1:0", nil)
	if err != nil {
		tb.Fatalf("bustest: start miniredis: %v", err)
	}
	m := &mini{tb: tb, addr: e.Addr(), e: e}
	tb.Cleanup(m.Kill)
	return m
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
	e, err := bus.StartEmbedded(m.addr, nil)
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

type redisServer struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	proc   *os.Process   // nil while killed
	exited chan struct{} // closed when proc has exited
}

func startRedisServer(tb testing.TB) *redisServer {
	tb.Helper()
	r := &redisServer{tb: tb, bin: RequireRedisServer(tb), dir: tb.TempDir()}
	tb.Cleanup(r.stop)
	// A free port can be taken between choosing it and the server binding it; try again then.
	var err error
	for range 3 {
		if r.port, err = freePort(); err != nil {
			continue
		}
		if err = r.start(); err == nil {
			return r
		}
	}
	tb.Fatalf("bustest: start redis-server: %v", err)
	return nil
}

func (r *redisServer) Name() string { return RedisServer }
func (r *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }
func (r *redisServer) URL() string  { return "redis://" + r.Addr() }

func (r *redisServer) Kill() {
	r.tb.Helper()
	if err := r.kill(); err != nil {
		r.tb.Fatalf("bustest: kill redis-server: %v", err)
	}
}

func (r *redisServer) Restart() {
	r.tb.Helper()
	if err := r.kill(); err != nil {
		r.tb.Fatalf("bustest: restart redis-server: %v", err)
	}
	var err error
	for range 3 {
		if err = r.start(); err == nil {
			return
		}
	}
	r.tb.Fatalf("bustest: restart redis-server on %s: %v", r.Addr(), err)
}

func (r *redisServer) stop() {
	if err := r.kill(); err != nil {
		r.tb.Errorf("bustest: stop redis-server: %v", err)
	}
	if r.tb.Failed() {
		if log, err := os.ReadFile(r.logPath()); err == nil {
			r.tb.Logf("redis-server log:\n%s", tail(string(log), 40))
		}
	}
}

func (r *redisServer) logPath() string { return filepath.Join(r.dir, "redis.log") }

func (r *redisServer) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(r.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", r.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitReady(r.Addr(), exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(r.logPath())
		return fmt.Errorf("redis-server on port %d (pid %d): %w\n%s", r.port, cmd.Process.Pid, err, tail(string(log), 20))
	}
	r.proc, r.exited = cmd.Process, exited
	return nil
}

func (r *redisServer) kill() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return nil
	}
	if err := r.proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill pid %d: %w", r.proc.Pid, err)
	}
	select {
	case <-r.exited:
	case <-time.After(startTimeout):
		return fmt.Errorf("pid %d did not exit", r.proc.Pid)
	}
	r.proc, r.exited = nil, nil
	return nil
}

// waitReady polls addr with PING until it answers PONG, the process exits, or startTimeout
// passes. Polling is the only way to learn that another process is ready.
func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = ping(addr); last == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before answering PING")
		case <-deadline.C:
			return fmt.Errorf("no PONG within %s: %w", startTimeout, last)
		case <-tick.C:
		}
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
