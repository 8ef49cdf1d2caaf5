package redisserver_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
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

// TestRestartRefusesAForeignServer: when another server has taken the address while the
// server was down (a parallel test's server, say), Restart fails instead of handing back an
// address where someone else's server answers PING.
func TestRestartRefusesAForeignServer(t *testing.T) {
	t.Parallel()
	s := start(t)
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Skipf("%s was taken meanwhile: %v", s.Addr(), err)
	}
	var conns sync.WaitGroup
	defer conns.Wait() // after ln.Close ends Accept; each client closes its connection
	defer ln.Close()
	conns.Go(func() { // answers every command with PONG, as a foreign Redis answers PING
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "*") { // one reply per command
						if _, err := c.Write([]byte("+PONG\r\n")); err != nil {
							return
						}
					}
				}
			})
		}
	})
	if err := s.Restart(); err == nil {
		t.Fatalf("Restart on an address another server holds succeeded (pid %d)", s.Pid())
	}
	if s.Pid() != 0 {
		t.Errorf("Pid() = %d after the failed Restart, want 0", s.Pid())
	}
}
