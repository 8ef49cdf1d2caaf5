package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
)

// The raw floor across processes: the raw pair's query and reply, with the
// responder in another process (this program, or the test binary running
// it, started again with rawResponderEnv set). Any ask answered by another process pays the wake-ups of
// two processes that the in-process floor does not; this figure shows what
// they cost on the machine, without JSON work or bus code.

// rawRemoteChannels are the channels of the remote raw pair: the
// responder's, then the asker's.
func rawRemoteChannels() (req, rep string) {
	return bus.Channel(bus.AgentID("rawremote", "answerer")), bus.Channel(bus.AgentID("rawremote", "asker"))
}

// rawResponderEnv, set to a Redis address, makes this program the remote
// raw pair's responder instead of a bench run.
const rawResponderEnv = "SWITCHBOARD_BENCH_RAW_RESPONDER"

// exitAsRawResponder runs the raw responder when rawResponderEnv is set,
// and then reports true: the process has nothing else to do.
func exitAsRawResponder(ctx context.Context) bool {
	addr := os.Getenv(rawResponderEnv)
	if addr == "" {
		return false
	}
	if err := runRawResponder(ctx, addr, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench raw responder:", err)
		os.Exit(1)
	}
	return true
}

// runRawResponder answers every message on the remote pair's request
// channel with a pre-encoded reply, until stdin closes (its parent is
// gone). It prints "ready" once subscribed.
func runRawResponder(ctx context.Context, addr string, stdin io.Reader, stdout io.Writer) error {
	req, rep := rawRemoteChannels()
	q := bus.NewQuery(bus.AgentID("rawremote", "asker"), bus.AgentID("rawremote", "answerer"), "Question 1: what is the next step?", nil, bus.Meta("rawremote", "wf"), 30*time.Second)
	reply, err := bus.NewResponse(q, q.ToAgent, answerText).MarshalJSON()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ps := rc.Subscribe(ctx, req)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("subscribe %s: %w", req, err)
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
		// A receive waiting on the connection does not watch ctx; closing
		// the subscription ends it.
		_ = ps.Close()
	}()
	fmt.Fprintln(stdout, "ready")
	for {
		if _, err := ps.ReceiveMessage(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := rc.Publish(ctx, rep, reply).Err(); err != nil {
			return err
		}
	}
}

// newRemoteRawPair starts the raw responder in another process and
// returns the raw pair that asks it.
func newRemoteRawPair(ctx context.Context, addr string) (*rawPair, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	req, rep := rawRemoteChannels()
	q := bus.NewQuery(bus.AgentID("rawremote", "asker"), bus.AgentID("rawremote", "answerer"), "Question 1: what is the next step?", nil, bus.Meta("rawremote", "wf"), 30*time.Second)
	query, err := q.MarshalJSON()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), rawResponderEnv+"="+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the raw responder: %w", err)
	}
	p := &rawPair{
		rc:    redis.NewClient(&redis.Options{Addr: addr}),
		query: query, reqChan: req, repChan: rep,
		// The responder ends when its stdin closes; killed by its pid if
		// it does not.
		stopResponder: func() {
			_ = stdin.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		},
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		p.close()
		return nil, fmt.Errorf("the raw responder did not start: %q %v", line, err)
	}
	p.asker = p.rc.Subscribe(ctx, rep)
	if _, err := p.asker.Receive(ctx); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}
