package redisserver_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/redisserver"
)

func start(t *testing.T) *redisserver.Server {
	t.Helper()
	s, err := redisserver.Start(t.TempDir())
	if errors.Is(err, redisserver.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Kill(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// pong sends PING on c and reports whether PONG came back.
func pong(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// TestKillRestart checks the life of a server as the bench and bustest use it: it answers on
// its address, Kill ends the process by its pid and drops connections, Restart brings an
// empty server back on the same address.
func TestKillRestart(t *testing.T) {
	t.Parallel()
	s := start(t)
	addr, pid := s.Addr(), s.Pid()
	if pid == 0 {
		t.Fatal("Pid() = 0 for a running server")
	}
	if s.URL() != "redis://"+addr {
		t.Errorf("URL() = %q, want redis://%s", s.URL(), addr)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !pong(c) {
		t.Fatalf("no PONG from %s", addr)
	}

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists after Kill (signal 0: %v)", pid, err)
	}
	if s.Pid() != 0 {
		t.Errorf("Pid() = %d after Kill, want 0", s.Pid())
	}
	if pong(c) {
		t.Error("a connection to the killed server still answers")
	}
	if err := s.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Errorf("Addr() = %s after Restart, want %s", s.Addr(), addr)
	}
	if s.Pid() == 0 || s.Pid() == pid {
		t.Errorf("Pid() = %d after Restart, want a new process (was %d)", s.Pid(), pid)
	}
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if !pong(c2) {
		t.Fatalf("no PONG from %s after Restart", addr)
	}
}

// TestTwoServers checks that servers started side by side get addresses of their own.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	a, b := start(t), start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on one address %s", a.Addr())
	}
}
