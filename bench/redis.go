package main

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
	"time"
)

// redisServer is a redis-server process the bench started; stop ends it by
// its pid.
type redisServer struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedisServer starts redis-server on a free loopback port with no
// persistence, and waits until it answers PING.
func startRedisServer(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH (apt-get install redis-server): %w", err)
	}
	var last error
	for range 3 { // a free port can be taken between choosing and binding it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		rdir := filepath.Join(dir, "redis-"+strconv.Itoa(port))
		if err := os.MkdirAll(rdir, 0o700); err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", rdir, "--daemonize", "no", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		r := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(r.exited) }()
		if last = r.waitReady(10 * time.Second); last == nil {
			return r, nil
		}
		r.stop()
	}
	return nil, fmt.Errorf("start redis-server: %w", last)
}

func (r *redisServer) url() string { return "redis://" + r.addr }

// stop kills the server by its pid and waits for it to exit.
func (r *redisServer) stop() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
}

// waitReady polls PING: another process's readiness can only be polled.
func (r *redisServer) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := ping(r.addr)
		if err == nil {
			return nil
		}
		select {
		case <-r.exited:
			return errors.New("redis-server exited before answering PING")
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG from %s within %s: %w", r.addr, limit, err)
		}
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
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
