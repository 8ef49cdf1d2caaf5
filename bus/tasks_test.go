package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// newQueue returns a queue on ctl's server whose group exists.
func newQueue(t testing.TB, rdb *redis.Client, opts bus.QueueOptions) *bus.TaskQueue {
	t.Helper()
	q := bus.NewTaskQueue(rdb, opts)
	if err := q.Ensure(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return q
}

func request(exec, node string, payload string) bus.Task {
	return bus.Task{Kind: bus.TypeTaskRequest, ExecutionID: exec, NodeID: node, Payload: json.RawMessage(payload)}
}

// next calls c.Next, failing the test if no task comes within eventWait.
func next(t *testing.T, c *bus.Consumer, limit int) []bus.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), eventWait)
	defer cancel()
	tasks, err := c.Next(ctx, limit)
	if err != nil {
		t.Fatalf("Next for %s: %v", c.Name(), err)
	}
	return tasks
}

func pending(t *testing.T, q *bus.TaskQueue) int64 {
	t.Helper()
	n, err := q.Pending(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTaskRoundTrip: a task_request goes from the server to a worker, the worker's
// task_response comes back, and once both are acked nothing is pending.
func TestTaskRoundTrip(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		tasks := newQueue(t, rdb, bus.QueueOptions{Block: 50 * time.Millisecond})
		results := newQueue(t, rdb, bus.QueueOptions{Stream: bus.ResultsStream, Group: bus.ResultsGroup, Block: 50 * time.Millisecond})

		id, err := tasks.Submit(ctx, request("e1", "writer", `{"prompt":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		worker := tasks.Consumer("w1")
		got := next(t, worker, 10)
		if len(got) != 1 {
			t.Fatalf("Next returned %d tasks, want 1", len(got))
		}
		task := got[0]
		if task.ID != id || task.Kind != bus.TypeTaskRequest || task.ExecutionID != "e1" || task.NodeID != "writer" ||
			task.Attempt != 1 || task.Deliveries != 1 || task.RunAttempt() != 1 || string(task.Payload) != `{"prompt":"hi"}` {
			t.Errorf("delivered %+v (payload %s)", task, task.Payload)
		}
		if n := pending(t, tasks); n != 1 {
			t.Errorf("pending while the worker runs = %d, want 1", n)
		}

		// The worker sends its result, then acks the request.
		if _, err := results.Submit(ctx, bus.Task{Kind: bus.TypeTaskResponse, ExecutionID: "e1", NodeID: "writer",
			Attempt: task.RunAttempt(), Payload: json.RawMessage(`{"output":"hello"}`)}); err != nil {
			t.Fatal(err)
		}
		if err := worker.Ack(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		server := results.Consumer("server")
		res := next(t, server, 10)
		if len(res) != 1 || res[0].Kind != bus.TypeTaskResponse || res[0].Attempt != 1 || string(res[0].Payload) != `{"output":"hello"}` {
			t.Fatalf("result = %+v", res)
		}
		if err := server.Ack(ctx, res[0].ID); err != nil {
			t.Fatal(err)
		}
		if n, m := pending(t, tasks), pending(t, results); n != 0 || m != 0 {
			t.Errorf("pending after both acks: tasks %d, results %d; want 0 and 0", n, m)
		}
		if err := worker.Ack(ctx, task.ID); !errors.Is(err, bus.ErrNotPending) {
			t.Errorf("second Ack = %v, want ErrNotPending", err)
		}

		// Next gives up when its context ends, within about one Block.
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := worker.Next(cctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next on an empty stream with a deadline = %v, want DeadlineExceeded", err)
		}
	})
}

func TestTaskSubmitInvalid(t *testing.T) {
	t.Parallel()
	ctl := bustest.Start(t, bustest.Miniredis)
	q := bus.NewTaskQueue(rawClient(t, ctl), bus.QueueOptions{})
	for _, tc := range []struct {
		name string
		task bus.Task
		want string
	}{
		{"kind", bus.Task{Kind: bus.TypeQuery, ExecutionID: "e", NodeID: "n"}, `task type "query"`},
		{"execution", bus.Task{Kind: bus.TypeTaskRequest, NodeID: "n"}, "execution_id is empty"},
		{"node", bus.Task{Kind: bus.TypeTaskRequest, ExecutionID: "e"}, "node_id is empty"},
		{"attempt", bus.Task{Kind: bus.TypeTaskRequest, ExecutionID: "e", NodeID: "n", Attempt: -1}, "attempt -1"},
		{"payload", request("e", "n", "{"), "e/n: payload is not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := q.Submit(testCtx(t), tc.task)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Submit = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestTaskForeignEntry: an entry another program wrote that is not a task is reported, naming
// it, and acked so it does not come back; the tasks around it are delivered.
func TestTaskForeignEntry(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		q := newQueue(t, rdb, bus.QueueOptions{Block: 50 * time.Millisecond})
		if _, err := q.Submit(ctx, request("e", "a", "")); err != nil {
			t.Fatal(err)
		}
		bad, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: bus.TasksStream, Values: []any{"hello", "world"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		c := q.Consumer("w")
		tasks, err := c.Next(ctx, 10)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Next err = %v, want one naming entry %s", err, bad)
		}
		if len(tasks) != 1 || tasks[0].NodeID != "a" || string(tasks[0].Payload) != "null" {
			t.Errorf("tasks with the foreign entry = %+v", tasks)
		}
		if n := pending(t, q); n != 1 {
			t.Errorf("pending = %d, want 1 (the task, not the foreign entry)", n)
		}
	})
}

func TestTaskEnsureIdempotent(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		q := bus.NewTaskQueue(rdb, bus.QueueOptions{})
		for i := range 2 {
			if err := q.Ensure(ctx); err != nil {
				t.Fatalf("Ensure #%d: %v", i+1, err)
			}
		}
		groups, err := rdb.XInfoGroups(ctx, bus.TasksStream).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) != 1 || groups[0].Name != bus.TasksGroup {
			t.Errorf("groups = %+v, want only %s", groups, bus.TasksGroup)
		}
		// A group that vanished (Redis restarted without persistence) is created again by Next,
		// and a task submitted after that is delivered.
		if err := rdb.Del(ctx, bus.TasksStream).Err(); err != nil {
			t.Fatal(err)
		}
		c := q.Consumer("w")
		got := make(chan []bus.Task, 1)
		go func() {
			tasks, _ := c.Next(ctx, 1)
			got <- tasks
		}()
		waitFor(t, "Next to create the group again", func() (bool, error) {
			gs, err := rdb.XInfoGroups(ctx, bus.TasksStream).Result()
			return len(gs) == 1, err
		})
		if _, err := q.Submit(ctx, request("e", "after", "")); err != nil {
			t.Fatal(err)
		}
		if tasks := recv(t, got, "the task submitted after the group came back"); len(tasks) != 1 || tasks[0].NodeID != "after" {
			t.Errorf("got %+v", tasks)
		}
	})
}

// TestTaskClaimAfterLease: a worker takes a task and stops (never acks, never renews); after
// the lease another worker claims it as attempt 2, and the first one, if it comes back,
// learns from Renew that the task is no longer its own.
func TestTaskClaimAfterLease(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		const lease = 200 * time.Millisecond
		q := newQueue(t, rdb, bus.QueueOptions{Lease: lease, Block: 20 * time.Millisecond})
		id, err := q.Submit(ctx, request("e", "slow", `1`))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		stalled, healthy := q.Consumer("stalled"), q.Consumer("healthy")
		first := next(t, stalled, 1)
		if len(first) != 1 || first[0].RunAttempt() != 1 {
			t.Fatalf("first delivery = %+v", first)
		}
		again := next(t, healthy, 1)
		if elapsed := time.Since(start); elapsed < lease {
			t.Errorf("claimed after %s, before the %s lease", elapsed, lease)
		}
		if len(again) != 1 || again[0].ID != id || again[0].Deliveries != 2 || again[0].RunAttempt() != 2 || string(again[0].Payload) != "1" {
			t.Fatalf("claimed %+v, want entry %s as attempt 2", again, id)
		}
		lost, err := stalled.Renew(ctx, id)
		if err != nil || !slices.Equal(lost, []string{id}) {
			t.Errorf("Renew by the stalled worker = %v, %v; want %s lost", lost, err, id)
		}
		if lost, err := healthy.Renew(ctx, id); err != nil || len(lost) != 0 {
			t.Errorf("Renew by the new holder = %v, %v; want nothing lost", lost, err)
		}
		if err := healthy.Ack(ctx, id); err != nil {
			t.Fatal(err)
		}
		if n := pending(t, q); n != 0 {
			t.Errorf("pending after the ack = %d", n)
		}
	})
}

// TestTaskClaimAbandoned: the tasks of a consumer known to be gone are taken at once, their
// lease notwithstanding, as the next attempt; the one that held them learns it from Renew.
func TestTaskClaimAbandoned(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		// A lease no test run outlasts: only ClaimAbandoned can take the task.
		q := newQueue(t, rdb, bus.QueueOptions{Lease: time.Hour, Block: 20 * time.Millisecond})
		id, err := q.Submit(ctx, request("e", "held", `1`))
		if err != nil {
			t.Fatal(err)
		}
		gone, taker := q.Consumer("gone"), q.Consumer("taker")
		next(t, gone, 1)
		if stale, err := taker.ClaimStale(ctx, 10); err != nil || len(stale) != 0 {
			t.Fatalf("ClaimStale within the lease = %+v, %v; want nothing", stale, err)
		}
		got, err := taker.ClaimAbandoned(ctx, 10)
		if err != nil || len(got) != 1 || got[0].ID != id || got[0].RunAttempt() != 2 || string(got[0].Payload) != "1" {
			t.Fatalf("ClaimAbandoned = %+v, %v; want entry %s as attempt 2", got, err, id)
		}
		if lost, err := gone.Renew(ctx, id); err != nil || !slices.Equal(lost, []string{id}) {
			t.Errorf("Renew by the gone consumer = %v, %v; want %s lost", lost, err, id)
		}
	})
}

// TestTaskRenewKeepsLease: a worker that renews its task more often than the lease keeps it,
// however long it runs, and renewing does not count as a delivery.
func TestTaskRenewKeepsLease(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		// A lease a loaded machine cannot stall past: the test expects it to hold.
		const lease = time.Second
		q := newQueue(t, rdb, bus.QueueOptions{Lease: lease, Block: 20 * time.Millisecond})
		id, err := q.Submit(ctx, request("e", "long", ""))
		if err != nil {
			t.Fatal(err)
		}
		holder := q.Consumer("holder")
		next(t, holder, 1)

		rctx, stopRenew := context.WithCancel(ctx)
		renewErr := make(chan error, 1)
		go func() {
			tick := time.NewTicker(lease / 6)
			defer tick.Stop()
			for {
				select {
				case <-rctx.Done():
					renewErr <- nil
					return
				case <-tick.C:
				}
				if lost, err := holder.Renew(rctx, id); err != nil || len(lost) > 0 {
					if rctx.Err() == nil {
						renewErr <- fmt.Errorf("renew: lost %v, err %v", lost, err)
						return
					}
				}
			}
		}()
		// Another worker looks for lapsed leases for three leases and finds none.
		wctx, cancel := context.WithTimeout(ctx, 3*lease)
		defer cancel()
		if tasks, err := q.Consumer("other").Next(wctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the other worker got %+v, %v while the holder renewed", tasks, err)
		}
		stopRenew()
		if err := recv(t, renewErr, "the renew loop to stop"); err != nil {
			t.Error(err)
		}
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: bus.TasksStream, Group: bus.TasksGroup, Start: id, End: id, Count: 1}).Result()
		if err != nil || len(p) != 1 || p[0].Consumer != "holder" || p[0].RetryCount != 1 {
			t.Errorf("after renewals the entry is %+v, %v; want held by holder with 1 delivery", p, err)
		}
	})
}

// TestTaskTrim: XADD keeps the stream near MaxLen, and Trim removes exactly the entries that
// are neither pending nor undelivered.
func TestTaskTrim(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)

		capped := newQueue(t, rdb, bus.QueueOptions{Stream: "capped", Group: "g", MaxLen: 50})
		for i := range 1000 {
			if _, err := capped.Submit(ctx, request("e", fmt.Sprint("n", i), "")); err != nil {
				t.Fatal(err)
			}
		}
		// Approximate trimming removes whole radix-tree nodes (100 entries each by default).
		if n, err := capped.Len(ctx); err != nil || n > 50+100 {
			t.Errorf("length after 1000 XADDs with MaxLen 50 = %d, %v; want <= 150", n, err)
		}

		q := newQueue(t, rdb, bus.QueueOptions{MaxLen: -1, Block: 20 * time.Millisecond})
		for i := range 10 {
			if _, err := q.Submit(ctx, request("e", fmt.Sprint("n", i), "")); err != nil {
				t.Fatal(err)
			}
		}
		c := q.Consumer("w")
		got := next(t, c, 6)
		if len(got) != 6 {
			t.Fatalf("Next(6) returned %d", len(got))
		}
		for _, task := range got[:4] {
			if err := c.Ack(ctx, task.ID); err != nil {
				t.Fatal(err)
			}
		}
		// 4 acked, 2 pending, 4 never delivered: only the 4 acked ones may go.
		if n, err := q.Trim(ctx); err != nil || n != 4 {
			t.Errorf("Trim = %d, %v; want 4", n, err)
		}
		if n, err := q.Len(ctx); err != nil || n != 6 {
			t.Errorf("length after Trim = %d, %v; want 6", n, err)
		}
		for _, task := range got[4:] {
			if err := c.Ack(ctx, task.ID); err != nil {
				t.Fatal(err)
			}
		}
		for _, task := range next(t, c, 10) {
			if err := c.Ack(ctx, task.ID); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := q.Trim(ctx); err != nil || n != 6 {
			t.Errorf("second Trim = %d, %v; want 6", n, err)
		}
		if n, err := q.Len(ctx); err != nil || n != 0 {
			t.Errorf("length after everything was acked and trimmed = %d, %v", n, err)
		}
		// Trimming a stream that was never created does nothing.
		if n, err := bus.NewTaskQueue(rdb, bus.QueueOptions{Stream: "none"}).Trim(ctx); err != nil || n != 0 {
			t.Errorf("Trim of a missing stream = %d, %v", n, err)
		}
	})
}

// skipIdleOnMiniredis skips tests that need consumer idle times: miniredis records a consumer's
// last activity only for XCLAIM, so XINFO CONSUMERS reports idle -1 for consumers that read
// with XREADGROUP, and RemoveDeadConsumers (rightly) never removes a consumer whose idle time
// is unknown.
func skipIdleOnMiniredis(t *testing.T, ctl bustest.Controller) {
	t.Helper()
	if ctl.Name() == bustest.Miniredis {
		t.Skip("miniredis reports no idle time for consumers that read with XREADGROUP (XINFO CONSUMERS idle = -1), so dead consumers cannot be told apart; covered on redis-server")
	}
}

func consumerNames(t *testing.T, q *bus.TaskQueue) []string {
	t.Helper()
	cs, err := q.Consumers(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// TestTaskRemoveDeadConsumers: a consumer idle for DeadAfter leases is removed once it has
// nothing pending; one that still holds an entry is kept until another has claimed it.
func TestTaskRemoveDeadConsumers(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		// A lease a loaded machine cannot stall past: the test expects it to hold.
		const lease = time.Second
		q := newQueue(t, rdb, bus.QueueOptions{Lease: lease, DeadAfter: 2, Block: 10 * time.Millisecond})
		for _, n := range []string{"a", "b"} {
			if _, err := q.Submit(ctx, request("e", n, "")); err != nil {
				t.Fatal(err)
			}
		}
		done, holding := q.Consumer("done"), q.Consumer("holding")
		for _, task := range next(t, done, 1) {
			if err := done.Ack(ctx, task.ID); err != nil {
				t.Fatal(err)
			}
		}
		held := next(t, holding, 1)
		if removed, err := q.RemoveDeadConsumers(ctx); err != nil || len(removed) != 0 {
			t.Errorf("RemoveDeadConsumers right after reading = %v, %v; want none", removed, err)
		}
		skipIdleOnMiniredis(t, ctl)

		waitFor(t, "the consumer that finished to be removed", func() (bool, error) {
			removed, err := q.RemoveDeadConsumers(ctx)
			return slices.Equal(removed, []string{"done"}), err
		})
		if got := consumerNames(t, q); !slices.Equal(got, []string{"holding"}) {
			t.Errorf("consumers = %v, want [holding] (it still holds an entry)", got)
		}
		// Another consumer claims the held entry; then the dead one goes too.
		claimer := q.Consumer("claimer")
		again := next(t, claimer, 1)
		if len(again) != 1 || again[0].ID != held[0].ID {
			t.Fatalf("claimed %+v, want %s", again, held[0].ID)
		}
		if err := claimer.Ack(ctx, again[0].ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "every idle consumer to be removed", func() (bool, error) {
			_, err := q.RemoveDeadConsumers(ctx)
			cs, err2 := q.Consumers(ctx)
			return len(cs) == 0, errors.Join(err, err2)
		})
		// A removed consumer that reads again is recreated with its delivery, and the entry is
		// pending under it.
		if _, err := q.Submit(ctx, request("e", "c", "")); err != nil {
			t.Fatal(err)
		}
		back := next(t, done, 1)
		if got := consumerNames(t, q); !slices.Equal(got, []string{"done"}) || len(back) != 1 || pending(t, q) != 1 {
			t.Errorf("after reading again: consumers %v, got %+v, pending %d; want [done], one task, 1", got, back, pending(t, q))
		}
	})
}

// TestTaskHundredAcrossTwoWorkers: 100 tasks, two workers, one server reading results: every
// task runs, every result arrives, nothing stays pending, and once the workers stop their
// consumers are removed as dead.
func TestTaskHundredAcrossTwoWorkers(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		// The lease outlasts the test, so a worker stalled by a loaded machine never has its
		// task claimed and run twice (which is the queue's promise once a lease runs out).
		opts := bus.QueueOptions{Lease: time.Minute, Block: 20 * time.Millisecond}
		tasks := newQueue(t, rdb, opts)
		ropts := opts
		ropts.Stream, ropts.Group = bus.ResultsStream, bus.ResultsGroup
		results := newQueue(t, rdb, ropts)

		const n = 100
		wctx, stopWorkers := context.WithCancel(ctx)
		var wg sync.WaitGroup
		ran := make(map[string]int) // worker -> tasks run
		var mu sync.Mutex
		errs := make(chan error, 2)
		for _, name := range []string{"w1", "w2"} {
			wg.Go(func() {
				c := tasks.Consumer(name)
				for {
					batch, err := c.Next(wctx, 4)
					if err != nil {
						if wctx.Err() == nil {
							errs <- err
						}
						return
					}
					// A task in hand is finished on ctx: its result can reach the server,
					// which then stops the workers, before its ack is sent.
					for _, task := range batch {
						res := bus.Task{Kind: bus.TypeTaskResponse, ExecutionID: task.ExecutionID, NodeID: task.NodeID,
							Attempt: task.RunAttempt(), Payload: task.Payload}
						if _, err := results.Submit(ctx, res); err != nil {
							errs <- err
							return
						}
						if err := c.Ack(ctx, task.ID); err != nil {
							errs <- err
							return
						}
						mu.Lock()
						ran[name]++
						mu.Unlock()
					}
				}
			})
		}
		for i := range n {
			if _, err := tasks.Submit(ctx, request(fmt.Sprint("e", i), "node", fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		server := results.Consumer("server")
		seen := map[string]bool{}
		for len(seen) < n {
			batch := next(t, server, 50)
			for _, r := range batch {
				if seen[r.ExecutionID] {
					t.Errorf("result of %s twice", r.ExecutionID)
				}
				seen[r.ExecutionID] = true
				if err := server.Ack(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		stopWorkers()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("tasks run per worker: %v", ran)
		if p, r := pending(t, tasks), pending(t, results); p != 0 || r != 0 {
			t.Errorf("pending: tasks %d, results %d; want 0 and 0", p, r)
		}
		for _, q := range []*bus.TaskQueue{tasks, results} {
			if _, err := q.Trim(ctx); err != nil {
				t.Fatal(err)
			}
			if l, err := q.Len(ctx); err != nil || l != 0 {
				t.Errorf("%s holds %d entries after Trim, %v", q.Stream(), l, err)
			}
		}
		skipIdleOnMiniredis(t, ctl)
		// The reaper sees the same streams with a short lease, so the stopped consumers are
		// dead after 200 ms.
		reap := bus.QueueOptions{Lease: 200 * time.Millisecond, DeadAfter: 1}
		rreap := reap
		rreap.Stream, rreap.Group = bus.ResultsStream, bus.ResultsGroup
		for _, q := range []*bus.TaskQueue{newQueue(t, rdb, reap), newQueue(t, rdb, rreap)} {
			waitFor(t, "the stopped consumers of "+q.Stream()+" to be removed", func() (bool, error) {
				_, err := q.RemoveDeadConsumers(ctx)
				cs, err2 := q.Consumers(ctx)
				return len(cs) == 0, errors.Join(err, err2)
			})
		}
	})
}

// TestTaskClaimDeepInPendingList: a lapsed entry behind many live ones is still claimed.
// XAUTOCLAIM examines only ten pending entries per entry asked for, so a consumer that always
// scanned from the start would never reach it while the live ones stay pending.
func TestTaskClaimDeepInPendingList(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		// A lease a loaded machine cannot stall past: the test expects it to hold.
		const lease, live = time.Second, 49
		q := newQueue(t, rdb, bus.QueueOptions{Lease: lease, Block: 10 * time.Millisecond})
		for i := range live + 1 {
			if _, err := q.Submit(ctx, request("e", fmt.Sprint("n", i), "")); err != nil {
				t.Fatal(err)
			}
		}
		busy, dead := q.Consumer("busy"), q.Consumer("dead")
		held := next(t, busy, live)
		if len(held) != live {
			t.Fatalf("busy got %d tasks, want %d", len(held), live)
		}
		ids := make([]string, len(held))
		for i, task := range held {
			ids[i] = task.ID
		}
		stale := next(t, dead, 1)

		rctx, stopRenew := context.WithCancel(ctx)
		defer stopRenew()
		renewed := make(chan struct{})
		go func() {
			defer close(renewed)
			tick := time.NewTicker(lease / 6)
			defer tick.Stop()
			for {
				select {
				case <-rctx.Done():
					return
				case <-tick.C:
					_, _ = busy.Renew(rctx, ids...)
				}
			}
		}()
		got := next(t, q.Consumer("claimer"), 1)
		stopRenew()
		<-renewed
		if len(got) != 1 || got[0].ID != stale[0].ID || got[0].RunAttempt() != 2 {
			t.Errorf("claimed %+v, want %s as attempt 2", got, stale[0].ID)
		}
	})
}

// TestTaskRedisRestart: with Redis gone, Next fails at once instead of waiting; after Redis
// comes back empty (no persistence) the consumer recreates the group by itself and gets the
// tasks submitted since, including one submitted before the group existed again.
func TestTaskRedisRestart(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		q := newQueue(t, rdb, bus.QueueOptions{Block: 50 * time.Millisecond})
		c := q.Consumer("w")
		ctl.Kill()
		if _, err := c.Next(ctx, 1); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next with Redis killed = %v, want a connection error", err)
		}
		ctl.Restart()
		if _, err := q.Submit(ctx, request("e", "after-restart", "")); err != nil {
			t.Fatal(err)
		}
		got := next(t, c, 1)
		if len(got) != 1 || got[0].NodeID != "after-restart" {
			t.Fatalf("after the restart Next = %+v", got)
		}
		if err := c.Ack(ctx, got[0].ID); err != nil {
			t.Fatal(err)
		}
		if n := pending(t, q); n != 0 {
			t.Errorf("pending = %d", n)
		}
	})
}

// TestTaskReadClaimsNothing: Read takes only new entries, so a reader of its own stream never
// takes back an entry it holds, even after the lease lapsed; another consumer still can.
func TestTaskReadClaimsNothing(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		rdb := rawClient(t, ctl)
		const lease = 100 * time.Millisecond
		q := newQueue(t, rdb, bus.QueueOptions{Lease: lease, Block: 20 * time.Millisecond})
		id, err := q.Submit(ctx, request("e", "n", `1`))
		if err != nil {
			t.Fatal(err)
		}
		w := q.Consumer("w")
		got, err := w.Read(ctx, 10)
		if err != nil || len(got) != 1 || got[0].ID != id {
			t.Fatalf("first Read = %+v, %v", got, err)
		}
		// Past the lease, Read still returns nothing: the entry is w's already.
		deadline := time.Now().Add(3 * lease)
		for time.Now().Before(deadline) {
			again, err := w.Read(ctx, 10)
			if err != nil || len(again) != 0 {
				t.Fatalf("Read after the first = %+v, %v; want nothing", again, err)
			}
		}
		claimed := next(t, q.Consumer("other"), 1)
		if len(claimed) != 1 || claimed[0].ID != id || claimed[0].Deliveries != 2 {
			t.Fatalf("another consumer claimed %+v", claimed)
		}
	})
}
