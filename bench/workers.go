package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/internal/redisserver"
	"github.com/switchboard-dev/switchboard/workflow"
)

// workerParts are the parts of the workers section, in the order they run.
var workerParts = []string{"ask", "scaling", "failover", "inflight"}

// workers measures worker mode with real processes, all started by the
// bench: a redis-server, the server binary (serve --redis-url) and worker
// binaries (worker --redis-url). Each part starts the processes it needs and
// ends them, and Redis is emptied between parts.
func (b *bencher) workers(ctx context.Context) error {
	bin, err := b.build(ctx)
	if err != nil {
		return err
	}
	rdir := filepath.Join(b.dir, "workers-redis")
	if err := os.MkdirAll(rdir, 0o700); err != nil {
		return err
	}
	rs, err := redisserver.Start(rdir)
	if err != nil {
		return err
	}
	defer func() { _ = rs.Kill() }()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	c := &cluster{b: b, bin: bin, rs: rs, rdb: rdb, http: newClient(64)}
	defer c.http.CloseIdleConnections()
	defer c.reset(context.Background())
	parts := []struct {
		name string
		run  func(context.Context, *cluster) error
	}{
		{"ask", b.workerAsks}, {"scaling", b.workerScaling}, {"failover", b.failover}, {"inflight", b.inflight},
	}
	for _, part := range parts {
		if len(b.workerParts) > 0 && !slices.Contains(b.workerParts, part.name) {
			continue
		}
		t := time.Now()
		if err := part.run(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", part.name, err)
		}
		if err := c.reset(ctx); err != nil {
			return err
		}
		b.progress("workers: %s done in %s", part.name, time.Since(t).Round(time.Millisecond))
	}
	return nil
}

// cluster is the processes of one part of the workers section.
type cluster struct {
	b     *bencher
	bin   string
	rs    *redisserver.Server
	rdb   *redis.Client
	http  *http.Client
	n     int // servers started, for their data directories
	procs []*proc
}

// server starts `switchboard serve` on the cluster's Redis with worker
// mode's lease.
func (c *cluster) server(ctx context.Context, env map[string]string, lease time.Duration) (*proc, error) {
	c.n++
	p, _, err := c.b.startServer(ctx, c.bin, fmt.Sprintf("workers-%d", c.n), env,
		"--redis-url", c.rs.URL(), "--lease", lease.String(), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// worker starts `switchboard worker` and returns once its /healthz says
// it is registered.
func (c *cluster) worker(ctx context.Context, name string, concurrency int, lease time.Duration, env map[string]string) (*proc, error) {
	port, err := redisserver.FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(c.bin, "worker", "--redis-url", c.rs.URL(), "--name", name, "--concurrency", strconv.Itoa(concurrency),
		"--lease", lease.String(), "--health-addr", addr, "--log-level", "warn")
	cmd.Env = childEnv(env)
	p, _, err := launch(ctx, cmd, "http://"+addr, "/healthz")
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// reset ends every process of the cluster with SIGKILL (nothing they would
// do on the way out is measured) and empties Redis for the next part.
func (c *cluster) reset(ctx context.Context) error {
	for _, p := range c.procs {
		p.kill()
	}
	c.procs = nil
	return c.rdb.FlushAll(ctx).Err()
}

// cpu returns the CPU time used so far by the cluster's running
// processes, its redis-server and the bench itself (the model and the
// clients).
func (c *cluster) cpu() time.Duration {
	total := cpuTime()
	pids := []int{c.rs.Pid()}
	for _, p := range c.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command name (which may hold spaces, so
		// it is skipped by its closing parenthesis): utime and stime are
		// the 12th and 13th, in clock ticks of 1/100 s.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+st) * 10 * time.Millisecond
	}
	return total
}

// createWorkflow stores doc through the API and returns its id.
func (c *cluster) createWorkflow(ctx context.Context, base string, doc []byte) (string, error) {
	_, data, err := call(ctx, c.http, http.MethodPost, base+"/workflows/", string(doc), http.StatusCreated)
	if err != nil {
		return "", err
	}
	var w struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &w); err != nil || w.ID == "" {
		return "", fmt.Errorf("create workflow: no id in %.300s", data)
	}
	return w.ID, nil
}

// startAsync starts one execution of workflow id and returns its id.
func (c *cluster) startAsync(ctx context.Context, base, id string) (string, error) {
	_, data, err := call(ctx, c.http, http.MethodPost, base+"/workflows/"+id+"/execute", `{"async_execution": true}`, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	var r struct {
		ID string `json:"execution_id"`
	}
	if err := json.Unmarshal(data, &r); err != nil || r.ID == "" {
		return "", fmt.Errorf("execute: no execution_id in %.300s", data)
	}
	return r.ID, nil
}

func (c *cluster) execution(ctx context.Context, base, id string) (*workflow.Execution, error) {
	_, data, err := call(ctx, c.http, http.MethodGet, base+"/workflows/executions/"+id, "", http.StatusOK)
	if err != nil {
		return nil, err
	}
	var x workflow.Execution
	if err := json.Unmarshal(data, &x); err != nil {
		return nil, fmt.Errorf("execution %s: %w", id, err)
	}
	return &x, nil
}

// waitRecord polls execution id every every until done says so, and fails
// after limit, or when it ended before done was true.
func (c *cluster) waitRecord(ctx context.Context, base, id string, every, limit time.Duration, done func(*workflow.Execution) bool) (*workflow.Execution, error) {
	deadline := time.Now().Add(limit)
	for {
		x, err := c.execution(ctx, base, id)
		if err != nil && strings.Contains(err.Error(), "status 404") {
			x, err = nil, nil // not stored yet: an async start stores it just after it answers
		}
		if err != nil {
			return nil, err
		}
		if x != nil && done(x) {
			return x, nil
		}
		if x != nil && workflow.Terminal(x.Status) {
			return x, fmt.Errorf("execution %s ended %s before the bench saw what it waited for: %s; its log ends %s", id, x.Status, x.Error, lastLogs(x, 6))
		}
		if time.Now().After(deadline) {
			return x, fmt.Errorf("execution %s: not there within %s", id, limit)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(every): // another process's state can only be polled
		}
	}
}

// countStatus returns how many executions of workflow id have status.
func (c *cluster) countStatus(ctx context.Context, base, id, status string) (int, error) {
	resp, _, err := call(ctx, c.http, http.MethodGet, base+"/workflows/"+id+"/executions?limit=1&status="+status, "", http.StatusOK)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(resp.Header.Get("X-Total-Count"))
}

// placements returns, for the executions of workflow id, how many ran
// node on each worker ("" for the server), and the first reason given for
// an execution whose agents did not all stay on the workers.
func (c *cluster) placements(ctx context.Context, base, id, node string) (map[string]int, string, error) {
	var ids []string
	why := ""
	for offset := 0; ; offset += 500 {
		_, data, err := call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/workflows/%s/executions?limit=500&offset=%d", base, id, offset), "", http.StatusOK)
		if err != nil {
			return nil, "", err
		}
		var list []workflow.Execution
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, "", err
		}
		for _, x := range list {
			ids = append(ids, x.ID)
			if why == "" && (x.Placement != workflow.PlacementWorkers || x.PlacementFallbackReason != "") {
				why = fmt.Sprintf("%s: placement %q: %s", x.ID, x.Placement, x.PlacementFallbackReason)
			}
		}
		if len(list) < 500 {
			break
		}
	}
	// The list leaves out the node states of ended executions.
	on := map[string]int{}
	for _, xid := range ids {
		x, err := c.execution(ctx, base, xid)
		if err != nil {
			return nil, "", err
		}
		if s := x.NodeStates[node]; s != nil {
			on[s.Worker]++
		}
	}
	return on, why, nil
}

// fallbacks counts the executions of workflow id whose agents the server
// hosts (placement or the pubsub mode fell back), and summarizes their
// reasons, the most frequent first.
func (c *cluster) fallbacks(ctx context.Context, base, id string) (int, string, error) {
	n, reasons := 0, map[string]int{}
	for offset := 0; ; offset += 500 {
		_, data, err := call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/workflows/%s/executions?limit=500&offset=%d", base, id, offset), "", http.StatusOK)
		if err != nil {
			return 0, "", err
		}
		var list []workflow.Execution
		if err := json.Unmarshal(data, &list); err != nil {
			return 0, "", err
		}
		for _, x := range list {
			if x.PlacementFallbackReason != "" || x.Placement == workflow.PlacementLocal || x.Mode != workflow.ModePubSub {
				n++
				why := strings.TrimSpace(x.PlacementFallbackReason + " " + x.FallbackReason)
				reasons[idPattern.ReplaceAllString(why, "…")]++
			}
		}
		if len(list) < 500 {
			break
		}
	}
	keys := slices.SortedFunc(maps.Keys(reasons), func(a, b string) int { return reasons[b] - reasons[a] })
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%d× %q", reasons[k], k))
	}
	return n, strings.Join(out, "; "), nil
}

// idPattern matches the ids and times in a fallback reason, so that the
// reasons of many executions can be counted together.
var idPattern = regexp.MustCompile(`[0-9a-f]{24}|\d{4}-\d\d-\d\dT[0-9:.]+Z`)

// waitEnded polls until n executions of workflow id have ended, and
// returns how many did not succeed, with the first one's error.
func (c *cluster) waitEnded(ctx context.Context, base, id string, n int, limit time.Duration) (failed int, why string, err error) {
	deadline := time.Now().Add(limit)
	for {
		ended := 0
		failed = 0
		for _, status := range []string{workflow.ExecSuccess, workflow.ExecError, workflow.ExecCancelled, workflow.ExecInterrupted} {
			k, err := c.countStatus(ctx, base, id, status)
			if err != nil {
				return 0, "", err
			}
			ended += k
			if status != workflow.ExecSuccess {
				failed += k
			}
		}
		if failed > 0 && why == "" {
			for _, bad := range []string{workflow.ExecError, workflow.ExecCancelled, workflow.ExecInterrupted} {
				_, data, err := call(ctx, c.http, http.MethodGet, base+"/workflows/"+id+"/executions?limit=1&status="+bad, "", http.StatusOK)
				if err != nil {
					return 0, "", err
				}
				var list []workflow.Execution
				if err := json.Unmarshal(data, &list); err != nil {
					return 0, "", err
				}
				if len(list) > 0 {
					x, err := c.execution(ctx, base, list[0].ID)
					if err != nil {
						return 0, "", err
					}
					why = fmt.Sprintf("execution %s ended %s: %s; its log ends %s", x.ID, x.Status, x.Error, lastLogs(x, 4))
					break
				}
			}
		}
		if ended >= n {
			return failed, why, nil
		}
		if time.Now().After(deadline) {
			return failed, why, fmt.Errorf("only %d of %d executions ended within %s", ended, n, limit)
		}
		select {
		case <-ctx.Done():
			return failed, why, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func lastLogs(x *workflow.Execution, n int) string {
	var out []string
	for _, l := range x.Logs[max(0, len(x.Logs)-n):] {
		out = append(out, fmt.Sprintf("%q", l.Message))
	}
	return strings.Join(out, ", ")
}

// modelEnv points a process at the bench's fake OpenAI-compatible model.
func modelEnv(m *fakeLLM) map[string]string {
	return map[string]string{"OPENAI_BASE_URL": m.url, "OPENAI_API_KEY": "bench", "SWITCHBOARD_MODEL": "bench"}
}

// workerAsks measures an ask of an outside program (the bench, with an
// agent id of its own on the bus) answered by an agent hosted by a worker
// process, alternating in rounds with the raw redis-server floor on the same
// Redis. The execution has two agents: the answerer, whose node ends at
// once, and the holder, whose node keeps the execution running while the
// bench asks (its worker's demo model waits an hour before it replies);
// the execution is cancelled at the end.
func (b *bencher) workerAsks(ctx context.Context, c *cluster) error {
	instant := map[string]string{"SWITCHBOARD_DEMO_DELAY": "0"}
	srv, err := c.server(ctx, instant, bus.DefaultLease)
	if err != nil {
		return err
	}
	// Placement takes the worker with the most free capacity, the first
	// listed (by name) on a tie: the answerer (first in the workflow) goes to
	// the answering worker (2 free against 1), the holder then to the holding
	// one (1 against 1). The record is checked below.
	const holder, answerer = "bench-ask-0-holder", "bench-ask-1-answerer"
	if _, err := c.worker(ctx, holder, 1, bus.DefaultLease, map[string]string{"SWITCHBOARD_DEMO_DELAY": "1h"}); err != nil {
		return err
	}
	if _, err := c.worker(ctx, answerer, 2, bus.DefaultLease, instant); err != nil {
		return err
	}
	wfID, err := c.createWorkflow(ctx, srv.base, workerAskDoc())
	if err != nil {
		return err
	}
	execID, err := c.startAsync(ctx, srv.base, wfID)
	if err != nil {
		return err
	}
	defer func() {
		_, _, _ = call(context.WithoutCancel(ctx), c.http, http.MethodPost, srv.base+"/workflows/executions/"+execID+"/cancel", "", http.StatusAccepted)
	}()
	if _, err := c.waitRecord(ctx, srv.base, execID, 5*time.Millisecond, 30*time.Second, func(x *workflow.Execution) bool {
		a, h := x.NodeStates["answerer"], x.NodeStates["holder"]
		return a != nil && h != nil && a.Status == workflow.NodeCompleted && h.Status == workflow.NodeRunning && h.Worker != ""
	}); err != nil {
		return err
	}
	x, err := c.execution(ctx, srv.base, execID)
	if err != nil {
		return err
	}
	if x.Placement != workflow.PlacementWorkers || x.NodeStates["answerer"].Worker != answerer || x.NodeStates["holder"].Worker != holder {
		return fmt.Errorf("the agents were not placed as the bench needs: placement %q (%s), answerer on %q, holder on %q",
			x.Placement, x.PlacementFallbackReason, x.NodeStates["answerer"].Worker, x.NodeStates["holder"].Worker)
	}

	bb, err := connectBus(ctx, c.rs.URL())
	if err != nil {
		return err
	}
	defer bb.Close()
	const asker = "bench-outside-asker"
	sub, err := bb.Subscribe(ctx, bus.Channel(asker), func(context.Context, bus.Message) {})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Close(context.WithoutCancel(ctx)) }()
	raw, err := newRawPair(ctx, c.rs.Addr())
	if err != nil {
		return err
	}
	defer raw.close()
	remote, err := newRemoteRawPair(ctx, c.rs.Addr())
	if err != nil {
		return err
	}
	defer remote.close()
	// The server answers a query on its own channel about an execution it
	// does not run at once, with an error: a round trip to another process
	// through its bus and nothing else, the unit of which a worker's ask is
	// made.
	chans, err := c.rdb.PubSubChannels(ctx, bus.Channel("server-*")).Result()
	if err != nil || len(chans) != 1 {
		return fmt.Errorf("the server's channel: %v %v", chans, err)
	}
	serverChan := chans[0]
	hop := func(n int) ([]time.Duration, error) {
		out := make([]time.Duration, 0, n)
		for range n {
			t := time.Now()
			q := bus.NewQuery(asker, strings.TrimPrefix(serverChan, bus.Channel("")), "get_shared", nil, bus.Meta("no-such-execution", ""), 30*time.Second)
			r, err := bb.Ask(ctx, serverChan, q, 30*time.Second)
			if err != nil {
				return nil, err
			}
			if _, err := r.Answer(); err == nil || !strings.Contains(err.Error(), "not running") {
				return nil, fmt.Errorf("the server's answer to a query about no execution: %v", err)
			}
			out = append(out, time.Since(t))
		}
		return out, nil
	}
	to := bus.AgentID(execID, "answerer")
	asks := 0
	ask := func(n int) ([]time.Duration, error) {
		out := make([]time.Duration, 0, n)
		for i := range n {
			t := time.Now()
			q := bus.NewQuery(asker, to, fmt.Sprintf("Question %d: what is the next step?", i+1), nil, bus.Meta(execID, wfID), 30*time.Second)
			r, err := bb.Ask(ctx, bus.Channel(to), q, 30*time.Second)
			if err != nil {
				return nil, err
			}
			text, err := r.Answer()
			if err != nil {
				return nil, fmt.Errorf("the answerer refused: %w", err)
			}
			if !strings.Contains(text, "Question") {
				return nil, fmt.Errorf("an answer that is not the demo model's: %q", text)
			}
			out = append(out, time.Since(t))
			asks++
		}
		return out, nil
	}
	// recorded waits until the server has applied the events of every
	// answer so far: each round measures with the processes quiet, not
	// beside the server still writing the last round's log.
	recorded := func() error {
		_, err := c.waitRecord(ctx, srv.base, execID, 20*time.Millisecond, 30*time.Second, func(x *workflow.Execution) bool {
			n := 0
			for _, e := range x.CommunicationLog {
				if e.From == "answerer" && e.To == asker {
					n++
				}
			}
			return n == asks
		})
		return err
	}
	var rawDs, remoteDs, hopDs, workerDs []time.Duration
	n := b.sc.workerAsksPerRound
	for round := 0; round <= b.sc.askRounds; round++ {
		ds, err := raw.roundTrips(ctx, n)
		if err != nil {
			return fmt.Errorf("raw redis-server: %w", err)
		}
		rds, err := remote.roundTrips(ctx, n)
		if err != nil {
			return fmt.Errorf("raw redis-server, responder in another process: %w", err)
		}
		hds, err := hop(n)
		if err != nil {
			return fmt.Errorf("query the server: %w", err)
		}
		wds, err := ask(n)
		if err != nil {
			return fmt.Errorf("ask %s: %w", to, err)
		}
		if err := recorded(); err != nil {
			return fmt.Errorf("the communication log lacks answers to the bench: %w", err)
		}
		if round > 0 { // the first round warms up
			rawDs, hopDs, workerDs = append(rawDs, ds...), append(hopDs, hds...), append(workerDs, wds...)
			remoteDs = append(remoteDs, rds...)
		}
	}
	b.res.set("ask_worker_hop_p50_us", us(percentile(hopDs, 50)))
	b.res.set("ask_worker_hop_p99_us", us(percentile(hopDs, 99)))
	b.res.set("ask_worker_redis_p50_us", us(percentile(workerDs, 50)))
	b.res.set("ask_worker_redis_p99_us", us(percentile(workerDs, 99)))
	b.res.set("ask_worker_raw_redis_p50_us", us(percentile(rawDs, 50)))
	b.res.set("ask_worker_raw_redis_p99_us", us(percentile(rawDs, 99)))
	b.res.set("ask_worker_raw_remote_redis_p50_us", us(percentile(remoteDs, 50)))
	b.res.set("ask_worker_raw_remote_redis_p99_us", us(percentile(remoteDs, 99)))

	// Every answer reached the execution's record, as the server sees it.
	if err := recorded(); err != nil {
		return fmt.Errorf("the communication log lacks answers to the bench: %w", err)
	}
	return nil
}

// workerAskDoc is the workflow of workerAsks: start → answerer → holder.
func workerAskDoc() []byte {
	doc := map[string]any{
		"name": "bench: an agent on a worker",
		// Each outside ask is a model call of the answerer.
		"metadata": map[string]any{"communication_mode": workflow.ModePubSub, "max_llm_calls": 100_000},
		"nodes": []any{
			map[string]any{"id": "start", "type": "start"},
			map[string]any{"id": "answerer", "type": "ai-processor", "config": map[string]any{
				"name": "Answerer", "system_prompt": "You answer questions briefly.", "prompt": "Say you are ready."}},
			map[string]any{"id": "holder", "type": "ai-processor", "config": map[string]any{
				"name": "Holder", "system_prompt": "You take your time.", "prompt": "Think it over."}},
		},
		"edges": []any{
			map[string]any{"from": "start", "to": "answerer"},
			map[string]any{"from": "answerer", "to": "holder"},
		},
	}
	data, _ := json.Marshal(doc)
	return data
}

// oneNodeDoc is a pubsub workflow of one ai-processor node.
func oneNodeDoc() []byte {
	doc := map[string]any{
		"name":     "bench: one node on a worker",
		"metadata": map[string]any{"communication_mode": workflow.ModePubSub},
		"nodes": []any{
			map[string]any{"id": "start", "type": "start"},
			map[string]any{"id": "work", "type": "ai-processor", "config": map[string]any{
				"name": "Worker", "system_prompt": "You do one step.", "prompt": "Step 1: begin."}},
		},
		"edges": []any{map[string]any{"from": "start", "to": "work"}},
	}
	data, _ := json.Marshal(doc)
	return data
}

// scalingModel is the model latency of the scaling figures, and
// scalingSlots each worker's --concurrency.
const (
	scalingModel = 200 * time.Millisecond
	scalingSlots = 8
)

// workerScaling measures executions per second of a one-node pubsub
// workflow with 1, 2 and 4 workers: enough executions posted at once
// (async) to keep every slot of every worker busy for scalingBusy, and
// throughput = executions ÷ the time from the first post to the end of
// the last. Each worker count gets fresh processes; the workers start
// before the server, so its first listing of workers has them all.
func (b *bencher) workerScaling(ctx context.Context, c *cluster) error {
	model, err := startFakeLLM(scalingModel)
	if err != nil {
		return err
	}
	defer model.close()
	env := modelEnv(model)
	perS := map[int]float64{}
	for _, n := range []int{1, 2, 4} {
		for i := range n {
			if _, err := c.worker(ctx, fmt.Sprintf("bench-scale%d-%d", n, i), scalingSlots, bus.DefaultLease, env); err != nil {
				return err
			}
		}
		srv, err := c.server(ctx, env, bus.DefaultLease)
		if err != nil {
			return err
		}
		wfID, err := c.createWorkflow(ctx, srv.base, oneNodeDoc())
		if err != nil {
			return err
		}
		total := int(b.sc.scalingBusy.Seconds() / scalingModel.Seconds() * float64(n*scalingSlots))
		start, cpu0 := time.Now(), c.cpu()
		if err := postAsync(ctx, c.http, srv.base+"/workflows/"+wfID+"/execute", total, 64); err != nil {
			return err
		}
		failed, why, err := c.waitEnded(ctx, srv.base, wfID, total, 2*time.Minute)
		if err != nil {
			return fmt.Errorf("%d workers: %w", n, err)
		}
		wall, cpu := time.Since(start), c.cpu()-cpu0
		// An execution that fails is counted (worker_scaling_failed_N) and
		// reported, not measured away: throughput counts ended executions.
		b.res.set(fmt.Sprintf("worker_scaling_failed_%d", n), float64(failed))
		if failed > 0 {
			b.progress("workers: scaling: %d workers: %d of %d executions FAILED, e.g. %s", n, failed, total, why)
		}
		perS[n] = float64(total) / wall.Seconds()
		// How busy the machine was: all the processes of the run, in cores.
		b.res.set(fmt.Sprintf("worker_scaling_cpu_cores_%d", n), cpu.Seconds()/wall.Seconds())
		b.res.set(fmt.Sprintf("worker_scaling_cpu_ms_per_exec_%d", n), ms(cpu)/float64(total))
		on, fellBack, err := c.placements(ctx, srv.base, wfID, "work")
		if err != nil {
			return err
		}
		if on[""] > 0 || fellBack != "" {
			return fmt.Errorf("%d workers: %d of %d executions ran their node in the server, e.g. %s", n, on[""], total, fellBack)
		}
		busiest := 0
		for _, k := range on {
			busiest = max(busiest, k)
		}
		b.res.set(fmt.Sprintf("worker_scaling_busiest_share_%d", n), float64(busiest)/float64(total))
		b.progress("workers: scaling: %d workers (--concurrency %d): %d executions, %.1f/s, nodes per worker %v", n, scalingSlots, total, perS[n], on)
		if err := c.reset(ctx); err != nil {
			return err
		}
	}
	for _, n := range []int{1, 2, 4} {
		b.res.set(fmt.Sprintf("worker_exec_per_s_%d", n), perS[n])
	}
	b.res.set("worker_scaling_2", perS[2]/perS[1])
	b.res.set("worker_scaling_4", perS[4]/perS[1])
	return nil
}

// failover measures, failoverRuns times on fresh processes, the time from
// kill -9 of the worker running a node to that node's completion on the
// other worker; the server and the workers have a short --lease. An
// undisturbed run first gives the node's own time.
func (b *bencher) failover(ctx context.Context, c *cluster) error {
	lease, nodeTime := b.sc.failoverLease, b.sc.failoverNode
	model, err := startFakeLLM(nodeTime)
	if err != nil {
		return err
	}
	defer model.close()
	env := modelEnv(model)
	var took, alone []time.Duration
	var failed []string
	// A run whose execution fails after the kill is counted and reported
	// (failover_failed_runs) and another run takes its place, up to three
	// times the runs asked for; failover_s is missing when none succeeded.
	for run := 0; len(took) < b.sc.failoverRuns && run < 3*b.sc.failoverRuns+2; run++ {
		procs := map[string]*proc{}
		for _, s := range []string{"a", "b"} {
			name := fmt.Sprintf("bench-failover%d-%s", run, s)
			p, err := c.worker(ctx, name, scalingSlots, lease, env)
			if err != nil {
				return err
			}
			procs[name] = p
		}
		srv, err := c.server(ctx, env, lease)
		if err != nil {
			return err
		}
		wfID, err := c.createWorkflow(ctx, srv.base, oneNodeDoc())
		if err != nil {
			return err
		}
		id, err := c.startAsync(ctx, srv.base, wfID)
		if err != nil {
			return err
		}
		x, err := c.waitRecord(ctx, srv.base, id, 20*time.Millisecond, time.Minute, func(x *workflow.Execution) bool { return x.Status == workflow.ExecSuccess })
		if err != nil {
			return err
		}
		if s := x.NodeStates["work"]; s != nil && s.StartedAt != nil && s.FinishedAt != nil {
			alone = append(alone, s.FinishedAt.Sub(*s.StartedAt))
		}

		before := model.requests()
		if id, err = c.startAsync(ctx, srv.base, wfID); err != nil {
			return err
		}
		// The node runs once its model call has begun on a worker.
		x, err = c.waitRecord(ctx, srv.base, id, 2*time.Millisecond, time.Minute, func(x *workflow.Execution) bool {
			s := x.NodeStates["work"]
			return s != nil && s.Worker != "" && model.requests() > before
		})
		if err != nil {
			return err
		}
		victim := x.NodeStates["work"].Worker
		p := procs[victim]
		if p == nil {
			return fmt.Errorf("the node ran on %q, not one of the bench's workers", victim)
		}
		killed := time.Now()
		p.kill()
		x, err = c.waitRecord(ctx, srv.base, id, 20*time.Millisecond, lease+nodeTime+time.Minute, func(x *workflow.Execution) bool { return x.Status == workflow.ExecSuccess })
		if err == nil {
			if s := x.NodeStates["work"]; s.FinishedAt == nil || s.Worker == victim || s.Worker == "" || s.Attempt != 2 {
				err = fmt.Errorf("the node ran on %q, attempt %d (want the other worker, attempt 2)", s.Worker, s.Attempt)
			}
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("after kill -9 of %s: %v", victim, err))
			b.progress("workers: failover: run %d FAILED: %s", run, failed[len(failed)-1])
			if err := c.reset(ctx); err != nil {
				return err
			}
			continue
		}
		s := x.NodeStates["work"]
		took = append(took, s.FinishedAt.Sub(killed))
		b.progress("workers: failover: run %d: killed %s, node done on %s after %s", run, victim, s.Worker, s.FinishedAt.Sub(killed).Round(time.Millisecond))
		if err := c.reset(ctx); err != nil {
			return err
		}
	}
	b.res.set("failover_lease_s", lease.Seconds())
	b.res.set("failover_failed_runs", float64(len(failed)))
	b.res.set("failover_node_s", percentile(alone, 50).Seconds())
	if len(took) == 0 {
		b.progress("workers: failover: every run failed; failover_s is missing")
		return nil
	}
	b.res.set("failover_s", percentile(took, 50).Seconds())
	b.res.set("failover_max_s", slices.Max(took).Seconds())
	return nil
}

// inflightModel is the model latency of the in-flight memory figure, and
// inflightSlots each worker's --concurrency: most executions wait on a
// worker for a slot.
const (
	inflightModel = 2 * time.Second
	inflightSlots = 8
)

// inflight measures the server's RSS while it holds inflightN executions
// in flight on two workers: posted async, then counted until every one is
// hosted on a worker (the workers' registrations list their agents) or
// done.
func (b *bencher) inflight(ctx context.Context, c *cluster) error {
	model, err := startFakeLLM(inflightModel)
	if err != nil {
		return err
	}
	defer model.close()
	env := modelEnv(model)
	for i := range 2 {
		if _, err := c.worker(ctx, fmt.Sprintf("bench-inflight-%d", i), inflightSlots, bus.DefaultLease, env); err != nil {
			return err
		}
	}
	srv, err := c.server(ctx, env, bus.DefaultLease)
	if err != nil {
		return err
	}
	wfID, err := c.createWorkflow(ctx, srv.base, oneNodeDoc())
	if err != nil {
		return err
	}
	n := b.sc.inflightN
	start := time.Now()
	if err := postAsync(ctx, c.http, srv.base+"/workflows/"+wfID+"/execute", n, 64); err != nil {
		return err
	}
	posted := time.Since(start)
	b.progress("workers: inflight: posted %d executions in %s", n, posted.Round(time.Millisecond))
	// Done when every execution is hosted on a worker or has ended; when
	// some are neither (the server hosts them: placement fell back) and the
	// count stops growing for 10 s, the figure is taken as it is.
	var hosted, done, best int
	bestAt := time.Now()
	lastNote := time.Now()
	for {
		live, err := bus.ListWorkers(ctx, c.rdb)
		if err != nil {
			return err
		}
		hosted = 0
		for _, w := range live {
			hosted += len(w.Agents)
		}
		if done, err = c.countStatus(ctx, srv.base, wfID, workflow.ExecSuccess); err != nil {
			return err
		}
		if hosted+done >= n || time.Since(bestAt) > 10*time.Second {
			break
		}
		if hosted+done > best {
			best, bestAt = hosted+done, time.Now()
		}
		if time.Since(lastNote) >= 5*time.Second {
			lastNote = time.Now()
			b.progress("workers: inflight: after %s: %d hosted on workers, %d done", time.Since(start).Round(time.Second), hosted, done)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	all := time.Since(start)
	rss, err := procStatusKB(srv.cmd.Process.Pid, "VmRSS")
	if err != nil {
		return err
	}
	local, why, err := c.fallbacks(ctx, srv.base, wfID)
	if err != nil {
		return err
	}
	b.progress("workers: inflight: %d hosted on workers, %d done, %d of them hosted by the server (%s) after %s; server RSS %.0f MB",
		hosted, done, local, why, all.Round(time.Millisecond), rss/1024)
	b.res.set("inflight_server_hosted", float64(local))
	if local > 0 {
		b.progress("workers: inflight: the end of redis-server's log:\n%s", c.rs.LogTail(8))
	}
	b.res.set("inflight_10k_rss_mb", rss/1024)
	b.res.set("inflight_n", float64(n))
	b.res.set("inflight_hosted", float64(hosted))
	b.res.set("inflight_post_s", posted.Seconds())
	b.res.set("inflight_all_placed_s", all.Seconds())
	return nil
}
