package executor_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// workerEnv is a server executor in worker mode and workers, each with
// connections of its own to one Redis, as separate processes would have.
type workerEnv struct {
	*env
	url     string
	rdb     *redis.Client
	bus     *bus.Bus
	workers map[string]context.CancelFunc
	http    executor.HTTPConfig // the workers' http_request settings
	mcp     executor.MCPConfig  // the workers' MCP settings
}

func newWorkerEnv(t *testing.T, url string, model executor.LLM, lease time.Duration) *workerEnv {
	t.Helper()
	b := connectBus(t, url)
	e := newEnv(t, model, b, executor.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.exec.UseWorkers(ctx, b.Client(), executor.WorkerOptions{Lease: lease}); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return &workerEnv{env: e, url: url, rdb: rdb, bus: b, workers: map[string]context.CancelFunc{}}
}

// startWorker runs a worker named name until the test ends or stop. Its
// registration lives three heartbeats (3 s): with 200 ms it lapsed now and
// then on a loaded machine, and the server placed a run in itself or took
// a worker's tasks back while it was still running them.
func (we *workerEnv) startWorker(t *testing.T, name string, model executor.LLM, lease time.Duration) {
	t.Helper()
	b := connectBus(t, we.url)
	w, err := executor.NewWorker(b.Client(), b, model, executor.WorkerConfig{Name: name, Concurrency: 4, Lease: lease,
		Heartbeat: time.Second, HTTP: we.http, MCP: we.mcp, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker %s: %v", name, err)
		}
	}
	we.workers[name] = stop
	t.Cleanup(func() {
		if _, ok := we.workers[name]; ok {
			stop()
		}
	})
}

// waitWorkers waits until exactly names are registered.
func (we *workerEnv) waitWorkers(t *testing.T, names ...string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		ws, err := bus.ListWorkers(t.Context(), we.rdb)
		if err != nil {
			return err
		}
		var got []string
		for _, w := range ws {
			got = append(got, w.Name)
		}
		if !slices.Equal(got, names) {
			return fmt.Errorf("workers %v, want %v", got, names)
		}
		return nil
	})
}

// eventually polls check until it passes or within passes.
func eventually(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quiet checks that nothing of the executions is left on Redis: no agent
// channel, no pending entry in any task or result stream, no consumer of a
// worker that is gone.
func (we *workerEnv) quiet(t *testing.T, live ...string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		ctx := t.Context()
		chans, err := we.rdb.PubSubChannels(ctx, "agent:messages:node-*").Result()
		if err != nil {
			return err
		}
		if len(chans) > 0 {
			return fmt.Errorf("agent channels left: %v", chans)
		}
		keys, err := we.rdb.Keys(ctx, "switchboard:*").Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if typ, _ := we.rdb.Type(ctx, k).Result(); typ != "stream" {
				continue
			}
			groups, err := we.rdb.XInfoGroups(ctx, k).Result()
			if err != nil {
				return err
			}
			for _, g := range groups {
				if g.Pending > 0 {
					return fmt.Errorf("%s group %s: %d pending", k, g.Name, g.Pending)
				}
				cs, err := we.rdb.XInfoConsumers(ctx, k, g.Name).Result()
				if err != nil {
					return err
				}
				for _, c := range cs {
					if k != bus.ResultsStream && !slices.Contains(live, c.Name) && !isServer(c.Name) {
						return fmt.Errorf("%s group %s: consumer %s of no live worker", k, g.Name, c.Name)
					}
				}
			}
		}
		return nil
	})
}

func isServer(name string) bool { return len(name) > 7 && name[:7] == "server-" }

func TestWorkersHostTheAgents(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		we := newWorkerEnv(t, url, llm.NewDemo(), 5*time.Second)
		we.startWorker(t, "w1", llm.NewDemo(), 5*time.Second)
		we.startWorker(t, "w2", llm.NewDemo(), 5*time.Second)
		we.waitWorkers(t, "w1", "w2")

		w := example(t, "04_pubsub_qa.json")
		x := we.run(t, w, executor.Options{})
		if x.Status != workflow.ExecSuccess || x.Mode != workflow.ModePubSub || x.Placement != workflow.PlacementWorkers || x.PlacementFallbackReason != "" {
			t.Fatalf("status %s mode %s placement %s (%q) error %q\nlogs %+v", x.Status, x.Mode, x.Placement, x.PlacementFallbackReason, x.Error, x.Logs)
		}
		// Two agents, two workers with the same free capacity: one each.
		workers := []string{x.NodeStates["student"].Worker, x.NodeStates["teacher"].Worker}
		slices.Sort(workers)
		if !slices.Equal(workers, []string{"w1", "w2"}) {
			t.Fatalf("nodes ran on %v", workers)
		}
		ask := findComm(x, workflow.CommAsk, "student", "teacher")
		resp := findComm(x, workflow.CommResponse, "teacher", "student")
		if ask == nil || resp == nil || ask.Metadata["transport"] != "redis" || resp.Metadata["success"] != true {
			t.Fatalf("communication log %+v", x.CommunicationLog)
		}
		if x.Usage.TotalTokens == 0 || x.NodeStates["student"].Calls == 0 || x.NodeStates["teacher"].Usage.TotalTokens == 0 {
			t.Fatalf("usage did not come back: %+v / %+v", x.Usage, x.NodeStates)
		}

		// The same run with the agents in the server: the same record, apart
		// from where the nodes ran.
		local := we.run(t, w, executor.Options{Placement: workflow.PlacementLocal})
		if local.Placement != workflow.PlacementLocal || local.PlacementFallbackReason != "" {
			t.Fatalf("local placement %q (%q)", local.Placement, local.PlacementFallbackReason)
		}
		for id, s := range x.NodeStates {
			l := local.NodeStates[id]
			if !reflect.DeepEqual(s.Output, l.Output) || s.Status != l.Status || s.Usage != l.Usage || s.Calls != l.Calls {
				t.Errorf("node %s on workers %+v, in the server %+v", id, s, l)
			}
		}
		if a, b := commShape(x), commShape(local); !slices.Equal(a, b) {
			t.Errorf("communication on workers %v, in the server %v", a, b)
		}
		if x.Usage != local.Usage {
			t.Errorf("usage on workers %+v, in the server %+v", x.Usage, local.Usage)
		}
		we.quiet(t, "w1", "w2")
	})
}

// commShape is a communication log without its times, ids and transport
// details.
func commShape(x *workflow.Execution) []string {
	var out []string
	for _, c := range x.CommunicationLog {
		out = append(out, c.Type+" "+c.From+"→"+c.To+": "+c.Content)
	}
	return out
}

func TestNoWorkerMeansTheServerHostsTheAgents(t *testing.T) {
	t.Parallel()
	we := newWorkerEnv(t, bustest.Start(t, bustest.Miniredis).URL(), llm.NewDemo(), 5*time.Second)
	x := we.run(t, example(t, "04_pubsub_qa.json"), executor.Options{})
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementLocal || x.PlacementFallbackReason != "no worker is registered on the bus" {
		t.Fatalf("status %s placement %q reason %q", x.Status, x.Placement, x.PlacementFallbackReason)
	}
	if x.NodeStates["student"].Worker != "" {
		t.Fatalf("student ran on %q", x.NodeStates["student"].Worker)
	}
}

func TestUnknownPlacementIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	_, err := e.exec.Start(example(t, "04_pubsub_qa.json"), executor.Options{Placement: "moon"})
	var we *workflow.Error
	if !errors.As(err, &we) || len(we.Problems) != 1 || we.Problems[0].Path != "placement" {
		t.Fatalf("err %v", err)
	}
}

// blockingModel answers like the demo model, except that the calls of node
// hold answer only once release is closed, or their context ends.
type blockingModel struct {
	hold    string
	started chan struct{} // gets a value when a call of hold starts
	release chan struct{}
	demo    *llm.Demo
}

func (m *blockingModel) Chat(ctx context.Context, r llm.Request) (llm.Response, error) {
	if r.Agent == m.hold {
		select {
		case m.started <- struct{}{}:
		default:
		}
		select {
		case <-m.release:
		case <-ctx.Done():
			return llm.Response{}, ctx.Err()
		}
	}
	return m.demo.Chat(ctx, r)
}

func TestWorkerReleasesTheAgentsOfAServerThatIsGone(t *testing.T) {
	t.Parallel()
	url := bustest.Start(t, bustest.RedisServer).URL()
	model := &blockingModel{hold: "student", started: make(chan struct{}, 1), release: make(chan struct{}), demo: llm.NewDemo()}
	t.Cleanup(func() { close(model.release) })
	b := connectBus(t, url)
	e := newEnv(t, model, b, executor.Config{})
	poolCtx, stopPool := context.WithCancel(context.Background())
	t.Cleanup(stopPool)
	if err := e.exec.UseWorkers(poolCtx, b.Client(), executor.WorkerOptions{Lease: time.Second}); err != nil {
		t.Fatal(err)
	}
	we := &workerEnv{env: e, url: url, rdb: redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(url, "redis://")}), bus: b, workers: map[string]context.CancelFunc{}}
	t.Cleanup(func() { we.rdb.Close() })
	we.startWorker(t, "w1", model, time.Second)
	we.waitWorkers(t, "w1")
	w := example(t, "04_pubsub_qa.json")
	if err := e.db.CreateWorkflow(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	r, err := e.exec.Start(w, executor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	<-model.started
	// The server stops serving its workers, as a killed one would: nobody
	// listens on its channel any more.
	stopPool()
	eventually(t, 20*time.Second, func() error {
		ws, err := bus.ListWorkers(t.Context(), we.rdb)
		if err != nil || len(ws) != 1 {
			return fmt.Errorf("workers %v: %v", ws, err)
		}
		if len(ws[0].Agents) > 0 {
			return fmt.Errorf("w1 still hosts %v", ws[0].Agents)
		}
		chans, err := we.rdb.PubSubChannels(t.Context(), "agent:messages:node-*").Result()
		if err != nil || len(chans) > 0 {
			return fmt.Errorf("agent channels %v: %v", chans, err)
		}
		return nil
	})
	e.exec.Cancel(r.ID)
}

// TestStoppedWorkerHandsItsNodesBack: a worker stopped on purpose (SIGTERM)
// deregisters, and the server takes its tasks at once instead of waiting
// for their lease, which here is longer than any test: the node it was
// running runs again, as attempt 2, on the other worker.
func TestStoppedWorkerHandsItsNodesBack(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		const lease = time.Hour
		model := &blockingModel{hold: "student", started: make(chan struct{}, 1), release: make(chan struct{}), demo: llm.NewDemo()}
		we := newWorkerEnv(t, url, llm.NewDemo(), lease)
		we.startWorker(t, "w1", model, lease)
		we.startWorker(t, "w2", model, lease)
		we.waitWorkers(t, "w1", "w2")
		w := example(t, "04_pubsub_qa.json")
		if err := we.db.CreateWorkflow(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		r, err := we.exec.Start(w, executor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		<-model.started
		var victim string
		eventually(t, 10*time.Second, func() error {
			x, err := we.db.GetExecution(t.Context(), r.ID)
			if err != nil {
				return err
			}
			if s := x.NodeStates["student"]; s == nil || s.Worker == "" {
				return fmt.Errorf("the student runs on no worker yet")
			}
			victim = x.NodeStates["student"].Worker
			return nil
		})
		stop := we.workers[victim]
		delete(we.workers, victim)
		stop()
		close(model.release)

		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		if _, err := r.Wait(ctx); err != nil {
			t.Fatalf("wait: %v", err)
		}
		x, err := we.db.GetExecution(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		student := x.NodeStates["student"]
		if x.Status != workflow.ExecSuccess || student.Attempt != 2 || student.Worker == victim || student.Worker == "" {
			t.Fatalf("status %s (%s); student attempt %d on %q, want attempt 2 on the worker that is not %s\nlogs %+v",
				x.Status, x.Error, student.Attempt, student.Worker, victim, x.Logs)
		}
	})
}

func TestRedisLostWhileAWorkerRunsANode(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		// The server's own model answers at once; the worker's holds the
		// student's call until Redis is gone.
		we := newWorkerEnv(t, url, llm.NewDemo(), time.Second)
		model := &blockingModel{hold: "student", started: make(chan struct{}, 1), release: make(chan struct{}), demo: llm.NewDemo()}
		t.Cleanup(func() { close(model.release) })
		we.startWorker(t, "w1", model, time.Second)
		we.waitWorkers(t, "w1")
		w := example(t, "04_pubsub_qa.json")
		if err := we.db.CreateWorkflow(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		r, err := we.exec.Start(w, executor.Options{KeepRecord: true})
		if err != nil {
			t.Fatal(err)
		}
		<-model.started
		ctl.Restart()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if _, err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		x, err := we.db.GetExecution(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers ||
			!strings.Contains(x.PlacementFallbackReason, "Redis connection lost") || !strings.Contains(x.FallbackReason, "Redis connection lost") {
			t.Fatalf("status %s placement %s (%q) fallback %q error %q", x.Status, x.Placement, x.PlacementFallbackReason, x.FallbackReason, x.Error)
		}
		s := x.NodeStates["student"]
		// It ran again in the server, as its second attempt.
		if s.Worker != "" || s.Attempt != 2 || s.Status != workflow.NodeCompleted {
			t.Fatalf("student %+v", s)
		}
		// The worker registers again once Redis is back.
		we.waitWorkers(t, "w1")
	})
}

// countingModel answers like the demo model after delay, counting the
// calls of each agent.
type countingModel struct {
	delay time.Duration
	mu    sync.Mutex
	calls map[string]int
	demo  *llm.Demo
}

func (m *countingModel) Chat(ctx context.Context, r llm.Request) (llm.Response, error) {
	m.mu.Lock()
	m.calls[r.Agent]++
	m.mu.Unlock()
	select {
	case <-time.After(m.delay):
	case <-ctx.Done():
		return llm.Response{}, ctx.Err()
	}
	return m.demo.Chat(ctx, r)
}

func TestWorkerRunsEachNodeOnceWhileRunsWaitForASlot(t *testing.T) {
	t.Parallel()
	url := bustest.Start(t, bustest.RedisServer).URL()
	const lease = time.Second
	we := newWorkerEnv(t, url, llm.NewDemo(), lease)
	// One slot, and model calls longer than the lease: the second branch of
	// the diamond waits for the slot longer than a lease, and must not be
	// taken back as a lapsed task while it waits.
	model := &countingModel{delay: 3 * lease / 2, calls: map[string]int{}, demo: llm.NewDemo()}
	b := connectBus(t, url)
	w, err := executor.NewWorker(b.Client(), b, model, executor.WorkerConfig{Name: "w1", Concurrency: 1, Lease: lease,
		Heartbeat: time.Second, HTTP: we.http, MCP: we.mcp, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	we.waitWorkers(t, "w1")
	x := we.run(t, example(t, "03_parallel_diamond.json"), executor.Options{Mode: workflow.ModePubSub})
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
		t.Fatalf("status %s placement %s (%q) error %q", x.Status, x.Placement, x.PlacementFallbackReason, x.Error)
	}
	model.mu.Lock()
	defer model.mu.Unlock()
	for _, id := range []string{"optimist", "pessimist", "judge"} {
		if n := model.calls[id]; n != 1 || x.NodeStates[id].Calls != 1 || x.NodeStates[id].Attempt > 1 {
			t.Errorf("%s: model called %d times, record %d calls, attempt %d", id, n, x.NodeStates[id].Calls, x.NodeStates[id].Attempt)
		}
	}
}

// register registers a worker that never reads its stream, until the test
// ends or the returned stop is called.
func registerSilent(t *testing.T, rdb *redis.Client, name string) (stop func()) {
	t.Helper()
	reg, err := bus.Register(t.Context(), rdb, bus.Worker{Name: name, Capacity: 4}, bus.HeartbeatOptions{Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = reg.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func TestSilentWorkersLeaveTheAgentsToTheServer(t *testing.T) {
	t.Parallel()
	url := bustest.Start(t, bustest.RedisServer).URL()
	b := connectBus(t, url)
	e := newEnv(t, llm.NewDemo(), b, executor.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.exec.UseWorkers(ctx, b.Client(), executor.WorkerOptions{Lease: time.Second, HostTimeout: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(url, "redis://")})
	t.Cleanup(func() { rdb.Close() })
	registerSilent(t, rdb, "s1")
	stop2 := registerSilent(t, rdb, "s2")
	we := &workerEnv{env: e, url: url, rdb: rdb, bus: b, workers: map[string]context.CancelFunc{}}
	we.waitWorkers(t, "s1", "s2")
	// Both registered workers get an agent and neither confirms: the run
	// goes on in the server after one host timeout.
	x := e.run(t, example(t, "04_pubsub_qa.json"), executor.Options{})
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementLocal || !strings.Contains(x.PlacementFallbackReason, "did not confirm") {
		t.Fatalf("status %s placement %s (%q) error %q", x.Status, x.Placement, x.PlacementFallbackReason, x.Error)
	}

	// A real worker of the name s2 reads what it was sent in one batch: the
	// host task, the server's order to drop those agents, and the
	// execution's release. Nothing of the ended execution may stay.
	stop2()
	we.waitWorkers(t, "s1")
	we.startWorker(t, "s2", llm.NewDemo(), time.Second)
	eventually(t, 20*time.Second, func() error {
		chans, err := rdb.PubSubChannels(t.Context(), "agent:messages:node-*").Result()
		if err != nil || len(chans) > 0 {
			return fmt.Errorf("agent channels %v: %v", chans, err)
		}
		// Everything sent to s2 was read, and nothing is left pending.
		stream, err := rdb.XInfoStream(t.Context(), bus.WorkerTasksStream("s2")).Result()
		if err != nil {
			return err
		}
		groups, err := rdb.XInfoGroups(t.Context(), bus.WorkerTasksStream("s2")).Result()
		if err != nil || len(groups) != 1 {
			return fmt.Errorf("s2 groups %+v: %v", groups, err)
		}
		if g := groups[0]; g.LastDeliveredID != stream.LastGeneratedID || g.Pending > 0 {
			return fmt.Errorf("s2 read up to %s of %s, %d pending", g.LastDeliveredID, stream.LastGeneratedID, g.Pending)
		}
		return nil
	})
}
