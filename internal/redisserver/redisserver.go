// Package redisserver starts a real redis-server process on a free loopback port, for the
// bench program and for the tests of package bus/bustest. The server has no persistence, logs
// to a file in its directory, and is stopped by its process id.
package redisserver

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
	"time"
)

// ErrNotInstalled is returned by Start when redis-server is not on PATH.
var ErrNotInstalled = errors.New("redis-server not found on PATH: install redis-server (apt-get install redis-server)")

// startTimeout bounds how long a server may take to answer, and to exit after SIGKILL.
const startTimeout = 15 * time.Second

// attempts is how often Start and Restart try: a free port can be taken between choosing it
// and the server binding it.
const attempts = 3

// Server is a redis-server process. Its methods are safe for concurrent use.
type Server struct {
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	proc   *os.Process   // nil while stopped
	exited chan struct{} // closed when proc has exited
}

// Start starts redis-server on a free 127.0.0.1 port with dir as its working directory (and
// log file), and returns once it answers on that port. It fails with ErrNotInstalled when
// redis-server is not on PATH, and with the tail of the server's log when it does not come up.
func Start(dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	s := &Server{bin: bin, dir: dir}
	for range attempts {
		if s.port, err = FreePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("start redis-server: %w", err)
}

// Addr returns the server's host:port; it stays the same across Restart.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns "redis://" + Addr().
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Pid returns the process id of the running server, or 0 while it is stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid
}

// Kill sends SIGKILL to the server's pid and waits until the process has exited, so every
// client connection has dropped when it returns. Killing a stopped server does nothing.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	if err := s.proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill redis-server pid %d: %w", s.proc.Pid, err)
	}
	select {
	case <-s.exited:
	case <-time.After(startTimeout):
		return fmt.Errorf("redis-server pid %d did not exit within %s", s.proc.Pid, startTimeout)
	}
	s.proc, s.exited = nil, nil
	return nil
}

// Restart kills the server and starts a new, empty one on the same address, returning once it
// answers there.
func (s *Server) Restart() error {
	if err := s.Kill(); err != nil {
		return err
	}
	var err error
	for range attempts {
		if err = s.start(); err == nil {
			return nil
		}
	}
	return fmt.Errorf("restart redis-server on %s: %w", s.Addr(), err)
}

// LogTail returns the last n lines of the server's log file.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return ""
	}
	return tail(string(b), n)
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "redis.log") }

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open redis-server log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitReady(s.Addr(), cmd.Process.Pid, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on port %d (pid %d): %w\n%s", s.port, cmd.Process.Pid, err, s.LogTail(20))
	}
	s.proc, s.exited = cmd.Process, exited
	return nil
}

// waitReady polls addr until the server of process pid answers there, the process exits, or
// startTimeout passes. Polling is the only way to learn that another process is ready.
func waitReady(addr string, pid int, exited <-chan struct{}) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = ping(addr, pid); last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before answering (last try: %v)", last)
		case <-deadline.C:
			return fmt.Errorf("no answer within %s: %w", startTimeout, last)
		case <-tick.C:
		}
	}
}

// ping asks the server on addr for its process id: a PONG alone may come from another server
// that took the port while this one was starting (it then exits, unable to bind).
func ping(addr string, pid int) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "$") {
		return fmt.Errorf("INFO answered %q", strings.TrimSpace(line))
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("INFO answered no process_id: %w", err)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			if v != strconv.Itoa(pid) {
				return fmt.Errorf("the server on %s is process %s, not %d", addr, v, pid)
			}
			return nil
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago. Another
// process may take it before the caller listens on it; the caller reports the
// bind error then.
func FreePort() (int, error) {
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
