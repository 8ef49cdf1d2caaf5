package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// TestTaskHoldKeepAlive: held tasks keep their lease for as long as KeepAlive runs; a task
// claimed away is cancelled with ErrTaskLost while the others go on; and when Redis goes away
// the remaining ones are cancelled after a lease, since another worker may have them by then.
func TestTaskHoldKeepAlive(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		// A lease a loaded machine cannot stall past: the test expects it to hold.
		const lease = time.Second
		q := newQueue(t, rdb, bus.QueueOptions{Lease: lease, Block: 20 * time.Millisecond})
		for _, n := range []string{"a", "b"} {
			if _, err := q.Submit(ctx, request("e", n, "")); err != nil {
				t.Fatal(err)
			}
		}
		holder := q.Consumer("holder")
		tasks := next(t, holder, 2)
		if len(tasks) != 2 {
			t.Fatalf("Next(2) returned %d tasks", len(tasks))
		}
		ctxA, releaseA := holder.Hold(ctx, tasks[0])
		defer releaseA()
		ctxB, releaseB := holder.Hold(ctx, tasks[1])
		defer releaseB()

		kctx, stopKeepAlive := context.WithCancel(ctx)
		var failures atomic.Int32
		kaErr := make(chan error, 1)
		go func() { kaErr <- holder.KeepAlive(kctx, func(error) { failures.Add(1) }) }()
		defer func() {
			stopKeepAlive()
			if err := recv(t, kaErr, "KeepAlive to return"); err != nil {
				t.Errorf("KeepAlive = %v", err)
			}
		}()

		// For three leases, another worker finds nothing to claim.
		wctx, cancel := context.WithTimeout(ctx, 3*lease)
		defer cancel()
		if got, err := q.Consumer("other").Next(wctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the other worker got %+v, %v while the holder kept the leases", got, err)
		}
		if ctxA.Err() != nil || ctxB.Err() != nil {
			t.Fatalf("held contexts ended while renewed: %v, %v", context.Cause(ctxA), context.Cause(ctxB))
		}

		// Another consumer takes a over (as XAUTOCLAIM would after a stall): a's context ends
		// with ErrTaskLost, b goes on.
		if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: bus.TasksStream, Group: bus.TasksGroup,
			Consumer: "thief", MinIdle: 0, Messages: []string{tasks[0].ID}}).Err(); err != nil {
			t.Fatal(err)
		}
		waitDone(t, ctxA, "a's context to end after the claim")
		if cause := context.Cause(ctxA); !errors.Is(cause, bus.ErrTaskLost) {
			t.Errorf("a's cause = %v, want ErrTaskLost", cause)
		}
		if ctxB.Err() != nil {
			t.Errorf("b's context ended with a: %v", context.Cause(ctxB))
		}
		if held := holder.Held(); len(held) != 1 || held[0] != tasks[1].ID {
			t.Errorf("held = %v, want only %s", held, tasks[1].ID)
		}

		// Redis goes away: b is lost after a lease without renewal.
		ctl.Kill()
		waitDone(t, ctxB, "b's context to end with Redis gone")
		if cause := context.Cause(ctxB); !errors.Is(cause, bus.ErrTaskLost) {
			t.Errorf("b's cause = %v, want ErrTaskLost", cause)
		}
		if failures.Load() == 0 {
			t.Error("onError was not called for the failed renewals")
		}
		if held := holder.Held(); len(held) != 0 {
			t.Errorf("held after the loss = %v", held)
		}
	})
}

// waitDone waits for ctx to end, failing the test after eventWait.
func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(eventWait):
		t.Fatalf("timed out waiting for %s", what)
	}
}
