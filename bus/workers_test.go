package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// rawClient returns a go-redis client for ctl's server, closed when the test ends. Its
// retries are few and quick, so tests of a killed server do not wait on backoff.
func rawClient(t testing.TB, ctl bustest.Controller) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: ctl.Addr(), MaxRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// waitFor polls cond until it holds, failing the test after eventWait. Polling is the only way
// to see a state that another process (Redis expiring a key) reaches on its own clock.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(eventWait)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		lastErr = err
		time.Sleep(5 * time.Millisecond) // poll interval, not a wait for the state
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
}

func workerNames(ws []bus.Worker) []string {
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	return names
}

// expire makes the registration keys of ttl expire: at once on miniredis, by waiting until
// gone() holds on redis-server.
func expire(t *testing.T, ctl bustest.Controller, ttl time.Duration, what string, gone func() (bool, error)) {
	t.Helper()
	bustest.FastForward(ctl, ttl+time.Millisecond)
	waitFor(t, what, gone)
}

func TestWorkerRegistry(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		// w-a's TTL (three intervals) must outlast the checks made before its heartbeat runs,
		// however slow a loaded machine makes them: with 100 ms it lapsed now and then, and the
		// update below never reached Redis.
		opts := bus.HeartbeatOptions{Interval: time.Second}

		a, err := bus.Register(ctx, rdb, bus.Worker{Name: "w-a", Host: "h1", PID: 11, Capacity: 4, Agents: []string{"node-e-x"}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		// w-b's TTL is shorter than w-a's, so that on miniredis the clock can be moved past it
		// without expiring w-a.
		b, err := bus.Register(ctx, rdb, bus.Worker{Name: "w-b", Host: "h2", PID: 12, Capacity: 8}, bus.HeartbeatOptions{Interval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ws, err := bus.ListWorkers(ctx, rdb)
		if err != nil {
			t.Fatal(err)
		}
		if got := workerNames(ws); !slices.Equal(got, []string{"w-a", "w-b"}) {
			t.Fatalf("ListWorkers = %v, want [w-a w-b]", got)
		}
		if w := ws[0]; w.Host != "h1" || w.PID != 11 || w.Capacity != 4 || w.Free() != 4 ||
			!slices.Equal(w.Agents, []string{"node-e-x"}) || w.StartedAt.IsZero() || w.LastHeartbeat.IsZero() || w.Instance == "" {
			t.Errorf("w-a listed as %+v", w)
		}

		// A second live worker of the same name is refused.
		if _, err := bus.Register(ctx, rdb, bus.Worker{Name: "w-a"}, opts); !errors.Is(err, bus.ErrWorkerNameTaken) {
			t.Errorf("Register of a taken name = %v, want ErrWorkerNameTaken", err)
		}
		if _, err := bus.Register(ctx, rdb, bus.Worker{Name: "a:b"}, opts); err == nil {
			t.Error("Register accepted a name with ':'")
		}

		// The heartbeat writes updates and keeps w-a alive past its TTL, while w-b, which has
		// no heartbeat, expires.
		runCtx, stop := context.WithCancel(ctx)
		runErr := make(chan error, 1)
		go func() { runErr <- a.Run(runCtx) }()
		a.Update(func(w *bus.Worker) { w.InUse = 3; w.Agents = append(w.Agents, "node-e-y"); w.Name = "renamed" })
		waitFor(t, "the update to reach Redis", func() (bool, error) {
			ws, err := bus.ListWorkers(ctx, rdb)
			return len(ws) > 0 && ws[0].Name == "w-a" && ws[0].InUse == 3 && len(ws[0].Agents) == 2, err
		})
		expire(t, ctl, b.TTL(), "w-b to expire", func() (bool, error) {
			ws, err := bus.ListWorkers(ctx, rdb)
			return slices.Equal(workerNames(ws), []string{"w-a"}), err
		})
		// The heartbeat keeps w-a listed past the TTL its registration started with.
		registered := a.Info().StartedAt
		waitFor(t, "w-a to be renewed past its first TTL", func() (bool, error) {
			ws, err := bus.ListWorkers(ctx, rdb)
			return len(ws) == 1 && ws[0].LastHeartbeat.After(registered.Add(a.TTL())), err
		})

		// A clean stop deletes the key at once.
		stop()
		if err := recv(t, runErr, "Run to return after its context ended"); err != nil {
			t.Errorf("Run after a clean stop = %v", err)
		}
		if n, err := rdb.Exists(ctx, bus.WorkerKey("w-a")).Result(); err != nil || n != 0 {
			t.Errorf("key of w-a after a clean stop: exists=%d err=%v", n, err)
		}
		// The name is free again.
		if _, err := bus.Register(ctx, rdb, bus.Worker{Name: "w-a"}, opts); err != nil {
			t.Errorf("Register after a clean stop: %v", err)
		}
	})
}

func TestListWorkersMalformed(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		if _, err := bus.Register(ctx, rdb, bus.Worker{Name: "good"}, bus.HeartbeatOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, bus.WorkerKey("bad"), "not json", 0).Err(); err != nil {
			t.Fatal(err)
		}
		// Many keys, so SCAN needs several rounds.
		for i := range 250 {
			if err := rdb.Set(ctx, fmt.Sprintf("other:%d", i), "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		ws, err := bus.ListWorkers(ctx, rdb)
		if !errors.Is(err, bus.ErrMalformedWorker) {
			t.Errorf("ListWorkers err = %v, want ErrMalformedWorker", err)
		}
		if got := workerNames(ws); !slices.Equal(got, []string{"good"}) {
			t.Errorf("ListWorkers = %v, want [good]", got)
		}
	})
}

// TestHeartbeatLost checks each way a worker learns that its lease is gone: Redis stops
// answering (Run gives up after one TTL), the key expired, or another instance took the name.
func TestHeartbeatLost(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		var failures atomic.Int32
		opts := bus.HeartbeatOptions{Interval: 50 * time.Millisecond, OnError: func(error) { failures.Add(1) }}

		// The key vanished (as when it expired): lost at the next renewal.
		r, err := bus.Register(ctx, rdb, bus.Worker{Name: "expired"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.Del(ctx, bus.WorkerKey("expired")).Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Run(ctx); !errors.Is(err, bus.ErrLeaseLost) {
			t.Errorf("Run with its key gone = %v, want ErrLeaseLost", err)
		}

		// A successor holds the name: lost, and the successor's key is left alone.
		old, err := bus.Register(ctx, rdb, bus.Worker{Name: "taken"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.Del(ctx, bus.WorkerKey("taken")).Err(); err != nil {
			t.Fatal(err)
		}
		succ, err := bus.Register(ctx, rdb, bus.Worker{Name: "taken", Host: "successor"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Run(ctx); !errors.Is(err, bus.ErrLeaseLost) {
			t.Errorf("Run with the name taken over = %v, want ErrLeaseLost", err)
		}
		ws, err := bus.ListWorkers(ctx, rdb)
		if err != nil || len(ws) != 1 || ws[0].Instance != succ.Info().Instance {
			t.Errorf("after the old instance gave up, workers = %+v, %v; want the successor only", ws, err)
		}

		// Redis goes away: each failed renewal is reported, then the lease is declared lost.
		if failures.Load() != 0 {
			t.Fatalf("OnError called %d times before any failure", failures.Load())
		}
		live, err := bus.Register(ctx, rdb, bus.Worker{Name: "live"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		runErr := make(chan error, 1)
		go func() { runErr <- live.Run(ctx) }()
		ctl.Kill()
		err = recv(t, runErr, "Run to report the lost lease")
		if !errors.Is(err, bus.ErrLeaseLost) {
			t.Errorf("Run with Redis killed = %v, want ErrLeaseLost", err)
		}
		if failures.Load() == 0 {
			t.Error("OnError was not called for the failed renewals")
		}
	})
}
