package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// The tests of worker mode with real processes: a redis-server, the server
// and two workers, each its own OS process, and one llmtest model in the
// test process that all three call. The processes are this test binary
// run as the program (see TestMain): it is built from this package
// already, and a go build of its own would cost a 2-core machine more
// time than these tests take.

// testLease is the lease of the server and the workers in these tests.
// Failover waits for a lease to lapse, so the default 15 s would make the
// kill -9 tests wait that long; with 2 s a worker still renews its tasks
// three times per lease (every 667 ms), slack enough on a busy 2-core
// machine.
const testLease = "2s"

// askFlow is a pubsub workflow of two agents where one asks the other: the
// asker asks the expert, then writes down what it learned; the expert then
// checks the asker's note. The model (workerModel) tells them apart by
// their system prompts.
const askFlow = `{"name":"ask over workers","metadata":{"communication_mode":"pubsub"},
	"nodes":[
		{"id":"start","type":"start"},
		{"id":"asker","type":"ai-processor","config":{"name":"Asker","system_prompt":"ROLE asker","prompt":"Find out what six times seven is.","can_communicate":true}},
		{"id":"expert","type":"ai-processor","config":{"name":"Expert","system_prompt":"ROLE expert","prompt":"Check the asker's note: {{outputs.asker}}","can_communicate":true}},
		{"id":"end","type":"end"}],
	"edges":[{"from":"start","to":"asker"},{"from":"asker","to":"expert"},{"from":"expert","to":"end"}]}`

// workerModel is the model of the server and the workers: it answers
// askFlow's agents deterministically, each kind of call with its own token
// usage, and counts what it answered. hang, when set, picks requests that
// get no answer until the client goes away (a worker killed mid-call).
type workerModel struct {
	srv *llmtest.Server

	mu       sync.Mutex
	answered map[string]int // kind of call → replies sent
	usage    workflow.Usage // the usage of every reply sent
	hang     func(kind string, n int) bool
	hung     chan string   // the kind of each hung request
	gate     chan struct{} // when set, a hung request is answered once it is closed
	delay    time.Duration // before every reply
}

// The kinds of model calls of askFlow, with the usage the model reports.
var callUsage = map[string]openai.Usage{
	"asker task":     {PromptTokens: 11, CompletionTokens: 1, TotalTokens: 12},
	"asker followup": {PromptTokens: 13, CompletionTokens: 2, TotalTokens: 15},
	"expert answer":  {PromptTokens: 17, CompletionTokens: 3, TotalTokens: 20},
	"expert task":    {PromptTokens: 19, CompletionTokens: 4, TotalTokens: 23},
}

func newWorkerModel(t *testing.T) *workerModel {
	m := &workerModel{answered: map[string]int{}, hung: make(chan string, 16)}
	m.srv = llmtest.NewServer(t, m.reply)
	return m
}

func (m *workerModel) reply(req openai.ChatCompletionRequest) llmtest.Reply {
	system, last := req.Messages[0].Content, req.Messages[len(req.Messages)-1].Content
	var kind, content string
	switch {
	case strings.HasPrefix(system, "ROLE asker") && strings.HasPrefix(last, "Results of your calls"):
		kind, content = "asker followup", "asker learned: nothing"
		if strings.Contains(last, "forty-two") {
			content = "asker learned: six times seven is forty-two"
		}
	case strings.HasPrefix(system, "ROLE asker"):
		kind, content = "asker task", "CALL: ask_node('expert', 'What is six times seven?')"
	case strings.HasPrefix(system, "ROLE expert") && strings.HasPrefix(last, "Check the asker's note: "):
		kind, content = "expert task", "expert checked: "+strings.TrimPrefix(last, "Check the asker's note: ")
	case strings.HasPrefix(system, "ROLE expert") && strings.Contains(last, "six times seven"):
		kind, content = "expert answer", "forty-two"
	default:
		return llmtest.Reply{Status: http.StatusBadRequest, Content: fmt.Sprintf("workerModel: unexpected request %q / %q", system, last)}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hang != nil && m.hang(kind, m.answered[kind]) {
		gate := m.gate
		m.hung <- kind
		if gate == nil {
			return llmtest.Reply{Delay: time.Hour} // until the client goes away
		}
		m.mu.Unlock()
		<-gate
		m.mu.Lock()
	}
	m.answered[kind]++
	u := callUsage[kind]
	m.usage = m.usage.Add(workflow.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens})
	return llmtest.Reply{Content: content, Usage: &u, Delay: m.delay}
}

// workerRig is a redis-server, two worker processes and a server process
// sharing it, and the model they all call.
type workerRig struct {
	redis   bustest.Controller
	rdb     *redis.Client
	model   *workerModel
	env     []string
	workers map[string]*workerProc
	server  *process
	wfID    string
}

// newWorkerRig starts Redis, the workers w1 and w2 (waiting until both are
// registered), then the server, so that the server's first look at the
// registry finds them.
func newWorkerRig(t *testing.T, concurrency int) *workerRig {
	t.Helper()
	ctl := bustest.Start(t, bustest.RedisServer) // fails under CI=true without redis-server
	opts, err := redis.ParseURL(ctl.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	m := newWorkerModel(t)
	r := &workerRig{redis: ctl, rdb: rdb, model: m, workers: map[string]*workerProc{},
		env: []string{"OPENAI_BASE_URL=" + m.srv.URL(), "OPENAI_API_KEY=test"}}
	for _, name := range []string{"w1", "w2"} {
		r.workers[name] = startWorkerProcess(t, r.env, ctl.URL(), name, concurrency)
	}
	for _, w := range r.workers {
		w.waitHealthy(t)
	}
	r.waitRegistered(t, "w1", "w2")
	r.server = startProcess(t, append(r.env, "SWITCHBOARD_LOG_LEVEL=info"), "serve", "--addr", "127.0.0.1:0",
		"--data", t.TempDir(), "--redis-url", ctl.URL(), "--lease", testLease)
	var created map[string]any
	if code := postJSON(t, r.server.url+"/workflows/", askFlow, &created); code != 201 {
		t.Fatalf("create workflow: %d %v", code, created)
	}
	r.wfID = created["id"].(string)
	// Before the processes stop (cleanups run last first).
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Redis at the end:\n%s", r.describeRedis())
		}
	})
	return r
}

// describeRedis says what Redis holds of worker mode: registered
// workers, streams with their groups, consumers and pending entries, and
// agent channels; it is logged when a test fails.
func (r *workerRig) describeRedis() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	ws, err := bus.ListWorkers(ctx, r.rdb)
	fmt.Fprintf(&b, "workers (%v):\n", err)
	for _, w := range ws {
		fmt.Fprintf(&b, "  %s in use %d/%d, agents %v\n", w.Name, w.InUse, w.Capacity, w.Agents)
	}
	keys, _ := r.rdb.Keys(ctx, "switchboard:*").Result()
	slices.Sort(keys)
	for _, k := range keys {
		if typ, _ := r.rdb.Type(ctx, k).Result(); typ != "stream" {
			continue
		}
		n, _ := r.rdb.XLen(ctx, k).Result()
		fmt.Fprintf(&b, "stream %s: %d entries\n", k, n)
		groups, _ := r.rdb.XInfoGroups(ctx, k).Result()
		for _, g := range groups {
			fmt.Fprintf(&b, "  group %s: pending %d, last delivered %s\n", g.Name, g.Pending, g.LastDeliveredID)
			cs, _ := r.rdb.XInfoConsumers(ctx, k, g.Name).Result()
			for _, c := range cs {
				fmt.Fprintf(&b, "    consumer %s: pending %d, idle %s\n", c.Name, c.Pending, c.Idle)
			}
			ps, _ := r.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: k, Group: g.Name, Start: "-", End: "+", Count: 20}).Result()
			for _, p := range ps {
				msgs, _ := r.rdb.XRange(ctx, k, p.ID, p.ID).Result()
				fmt.Fprintf(&b, "    pending %s of %s, idle %s, delivered %d: %v\n", p.ID, p.Consumer, p.Idle, p.RetryCount, msgs)
			}
		}
	}
	chans, _ := r.rdb.PubSubChannels(ctx, "*").Result()
	slices.Sort(chans)
	fmt.Fprintf(&b, "channels: %v\n", chans)
	clients, _ := r.rdb.ClientList(ctx).Result()
	fmt.Fprintf(&b, "clients:\n%s", clients)
	return b.String()
}

// askTimeout makes the rig run askFlow with an ask timeout of seconds: an
// ask whose answering agent is placed again gets its answer from the
// query sent again at half of it.
func (r *workerRig) askTimeout(t *testing.T, seconds int) {
	t.Helper()
	doc := strings.Replace(askFlow, `"communication_mode":"pubsub"`, fmt.Sprintf(`"communication_mode":"pubsub","ask_timeout_seconds":%d`, seconds), 1)
	var created map[string]any
	if code := postJSON(t, r.server.url+"/workflows/", doc, &created); code != 201 {
		t.Fatalf("create workflow: %d %v", code, created)
	}
	r.wfID = created["id"].(string)
}

// waitRegistered waits until exactly names are in the worker registry.
func (r *workerRig) waitRegistered(t *testing.T, names ...string) {
	t.Helper()
	poll(t, 20*time.Second, func() error {
		ws, err := bus.ListWorkers(t.Context(), r.rdb)
		if err != nil {
			return err
		}
		var got []string
		for _, w := range ws {
			got = append(got, w.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			return fmt.Errorf("registered workers %v, want %v", got, names)
		}
		return nil
	})
}

// start starts an execution of askFlow with body and returns its id.
func (r *workerRig) start(t *testing.T, body string) string {
	t.Helper()
	var started map[string]any
	if code := postJSON(t, fmt.Sprintf("%s/workflows/%s/execute", r.server.url, r.wfID), body, &started); code != 200 && code != 202 {
		t.Fatalf("execute: %d %v", code, started)
	}
	id, _ := started["execution_id"].(string)
	if id == "" {
		t.Fatalf("execute answered no execution_id: %v", started)
	}
	return id
}

// get returns the execution's record.
func (r *workerRig) get(t *testing.T, id string) *workflow.Execution {
	t.Helper()
	var x workflow.Execution
	if code := getJSON(t, r.server.url+"/workflows/executions/"+id, &x); code != 200 {
		t.Fatalf("get execution %s: %d", id, code)
	}
	return &x
}

// wait polls the execution until it has ended and returns its record.
func (r *workerRig) wait(t *testing.T, id string, within time.Duration) *workflow.Execution {
	t.Helper()
	var x *workflow.Execution
	poll(t, within, func() error {
		x = r.get(t, id)
		if ended(x) {
			return nil
		}
		return fmt.Errorf("execution %s still %s after %s", id, x.Status, within)
	})
	return x
}

// runningOn waits until the execution's record shows node running on a
// worker (the record is written after the fact), and returns the worker.
func (r *workerRig) runningOn(t *testing.T, id, node string) string {
	t.Helper()
	var worker string
	poll(t, 10*time.Second, func() error {
		s := r.get(t, id).NodeStates[node]
		if s == nil || s.Status != "running" || s.Worker == "" {
			return fmt.Errorf("node %s: %+v, want it running on a worker", node, s)
		}
		worker = s.Worker
		return nil
	})
	return worker
}

// run runs askFlow with body to its end.
func (r *workerRig) run(t *testing.T, body string) *workflow.Execution {
	t.Helper()
	return r.wait(t, r.start(t, body), 30*time.Second)
}

func ended(x *workflow.Execution) bool {
	switch x.Status {
	case workflow.ExecSuccess, workflow.ExecError, workflow.ExecCancelled, workflow.ExecInterrupted:
		return true
	}
	return false
}

// quiet waits until Redis holds nothing of the executions: no agent
// channel, no pending entry in any group of any switchboard:* stream, and
// no consumer of a worker that is not registered.
func (r *workerRig) quiet(t *testing.T, within time.Duration) {
	t.Helper()
	start := time.Now()
	var first error
	defer func() {
		if first != nil && !t.Failed() {
			t.Logf("Redis was quiet after %s; at first: %v", time.Since(start).Round(time.Millisecond), first)
		}
	}()
	poll(t, within, func() (err error) {
		defer func() {
			if first == nil {
				first = err
			}
		}()
		ctx := t.Context()
		chans, err := r.rdb.PubSubChannels(ctx, "agent:messages:node-*").Result()
		if err != nil {
			return err
		}
		if len(chans) > 0 {
			return fmt.Errorf("%d agent channels left, e.g. %s", len(chans), chans[0])
		}
		ws, err := bus.ListWorkers(ctx, r.rdb)
		if err != nil {
			return err
		}
		live := map[string]bool{}
		for _, w := range ws {
			live[w.Name] = true
		}
		keys, err := r.rdb.Keys(ctx, "switchboard:*").Result()
		if err != nil {
			return err
		}
		streams := 0
		for _, k := range keys {
			if typ, _ := r.rdb.Type(ctx, k).Result(); typ != "stream" {
				continue
			}
			streams++
			groups, err := r.rdb.XInfoGroups(ctx, k).Result()
			if err != nil {
				return err
			}
			for _, g := range groups {
				if g.Pending > 0 {
					return fmt.Errorf("stream %s group %s: %d pending", k, g.Name, g.Pending)
				}
				cs, err := r.rdb.XInfoConsumers(ctx, k, g.Name).Result()
				if err != nil {
					return err
				}
				for _, c := range cs {
					// A server reads its own result stream as a consumer named
					// after itself; every other consumer is a worker.
					if !strings.HasPrefix(c.Name, "server-") && !live[c.Name] {
						return fmt.Errorf("stream %s group %s: consumer %s is no registered worker", k, g.Name, c.Name)
					}
				}
			}
		}
		if streams == 0 {
			return fmt.Errorf("no switchboard stream on Redis at all (keys %v): the check would check nothing", keys)
		}
		return nil
	})
}

// poll calls check until it passes, failing the test with its last error
// after within. Another process's state can only be polled.
func poll(t *testing.T, within time.Duration, check func() error) {
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
		time.Sleep(25 * time.Millisecond)
	}
}

// workerProc is a `switchboard worker` process.
type workerProc struct {
	name   string
	cmd    *exec.Cmd
	done   chan error
	log    *logWatch
	health string // its /healthz URL
}

func startWorkerProcess(t *testing.T, env []string, redisURL, name string, concurrency int) *workerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "worker", "--redis-url", redisURL, "--name", name,
		"--concurrency", fmt.Sprint(concurrency), "--health-addr", "127.0.0.1:0", "--lease", testLease, "--log-level", "info")
	cmd.Env = append(append(os.Environ(), "SWITCHBOARD_TEST_MAIN=1"), env...)
	w := &workerProc{name: name, cmd: cmd, done: make(chan error, 1), log: newLogWatch()}
	cmd.Stderr = w.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-w.done
		}
		if t.Failed() {
			t.Logf("worker %s log:\n%s", name, w.log.String())
		}
	})
	re := regexp.MustCompile(`msg="health endpoint" url=(http://\S+/healthz)`)
	w.health = w.log.waitMatch(t, re)[1]
	return w
}

// waitHealthy waits until the worker's /healthz answers 200: it is
// registered and its Redis connection is up.
func (w *workerProc) waitHealthy(t *testing.T) {
	t.Helper()
	poll(t, 20*time.Second, func() error {
		resp, err := http.Get(w.health)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("worker %s /healthz: %d %v", w.name, resp.StatusCode, body)
		}
		return nil
	})
}

// kill sends the worker SIGKILL and waits until it is gone.
func (w *workerProc) kill(t *testing.T) {
	t.Helper()
	w.stop(t, syscall.SIGKILL)
}

// stop sends the worker sig and waits until it is gone; after SIGTERM it
// must exit cleanly.
func (w *workerProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("worker %s exited with %v after SIGTERM", w.name, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker %s did not exit after %s", w.name, sig)
	}
}

// waitMatch waits until the log has a line matching re and returns the
// submatches.
func (l *logWatch) waitMatch(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		l.mu.Lock()
		m, changed := re.FindStringSubmatch(l.b.String()), l.changed
		l.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the program never logged a line matching %s:\n%s", re, l.String())
		}
	}
}

// hostedBy reports whether the execution's log says worker hosts node's
// agent.
func hostedBy(x *workflow.Execution, worker, node string) bool {
	for _, l := range x.Logs {
		if m, ok := strings.CutPrefix(l.Message, "Worker "+worker+" hosts "); ok && slices.Contains(strings.Split(m, ", "), node) {
			return true
		}
	}
	return false
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

// wantComm is askFlow's communication log.
var wantComm = []string{
	"ask asker→expert: What is six times seven?",
	"response expert→asker: forty-two",
}

// sameRecord reports how x differs from want apart from transport and
// placement: node statuses, outputs, usage and calls, the execution's
// status and usage, and the communication log's types, ends and contents.
func sameRecord(x, want *workflow.Execution) []string {
	var diffs []string
	if x.Status != want.Status {
		diffs = append(diffs, fmt.Sprintf("status %s, want %s", x.Status, want.Status))
	}
	for id, w := range want.NodeStates {
		s := x.NodeStates[id]
		if s == nil {
			diffs = append(diffs, fmt.Sprintf("node %s missing", id))
			continue
		}
		if s.Status != w.Status || !reflect.DeepEqual(s.Output, w.Output) || s.Usage != w.Usage || s.Calls != w.Calls {
			diffs = append(diffs, fmt.Sprintf("node %s: %s %q usage %+v calls %d, want %s %q usage %+v calls %d",
				id, s.Status, s.Output, s.Usage, s.Calls, w.Status, w.Output, w.Usage, w.Calls))
		}
	}
	if len(x.NodeStates) != len(want.NodeStates) {
		diffs = append(diffs, fmt.Sprintf("%d nodes, want %d", len(x.NodeStates), len(want.NodeStates)))
	}
	if x.Usage != want.Usage {
		diffs = append(diffs, fmt.Sprintf("usage %+v, want %+v", x.Usage, want.Usage))
	}
	if a, b := commShape(x), commShape(want); !slices.Equal(a, b) {
		diffs = append(diffs, fmt.Sprintf("communication %q, want %q", a, b))
	}
	return diffs
}

// TestWorkerProcessesHostTheAgents runs askFlow with its agents on two
// worker processes, then with "placement":"local", and compares the
// records.
func TestWorkerProcessesHostTheAgents(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	x := r.run(t, `{"async_execution":true}`)
	if x.Status != workflow.ExecSuccess || x.Mode != workflow.ModePubSub || x.Placement != workflow.PlacementWorkers || x.PlacementFallbackReason != "" || x.FallbackReason != "" {
		t.Fatalf("on workers: status %s mode %s placement %s (%q, %q) error %q", x.Status, x.Mode, x.Placement, x.PlacementFallbackReason, x.FallbackReason, x.Error)
	}
	// Two agents, two workers with the same free capacity: one each.
	ran := []string{x.NodeStates["asker"].Worker, x.NodeStates["expert"].Worker}
	slices.Sort(ran)
	if !slices.Equal(ran, []string{"w1", "w2"}) {
		t.Fatalf("the agents ran on %v, want one on each of w1, w2", ran)
	}
	if got := commShape(x); !slices.Equal(got, wantComm) {
		t.Fatalf("communication log %q, want %q", got, wantComm)
	}
	if out := x.NodeStates["expert"].Output; out != "expert checked: asker learned: six times seven is forty-two" {
		t.Fatalf("expert output %q", out)
	}

	local := r.run(t, `{"async_execution":true,"placement":"local"}`)
	if local.Status != workflow.ExecSuccess || local.Placement != workflow.PlacementLocal || local.PlacementFallbackReason != "" {
		t.Fatalf("local: status %s placement %s (%q)", local.Status, local.Placement, local.PlacementFallbackReason)
	}
	if local.NodeStates["asker"].Worker != "" || local.NodeStates["expert"].Worker != "" {
		t.Fatalf("local run's nodes ran on workers: %+v", local.NodeStates)
	}
	if diffs := sameRecord(x, local); len(diffs) > 0 {
		t.Fatalf("the record on workers differs from the local one:\n%s", strings.Join(diffs, "\n"))
	}
	// Both runs' usage is exactly what the model answered, once.
	want := usageOf(callUsage["asker task"], callUsage["asker followup"], callUsage["expert answer"], callUsage["expert task"])
	if x.Usage != want {
		t.Fatalf("usage %+v, want %+v", x.Usage, want)
	}
}

func usageOf(us ...openai.Usage) workflow.Usage {
	var sum workflow.Usage
	for _, u := range us {
		sum = sum.Add(workflow.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens})
	}
	return sum
}

// TestWorkerKilledWhileItsNodeRuns stops the worker whose node is waiting
// on the model, with SIGKILL, and with SIGTERM (a stop that does not wait
// for its nodes): after the lease the server claims the task, places the
// agent on the other worker, and the node runs there as attempt 2.
// Nothing of the lost attempt may show twice in the record.
func TestWorkerKilledWhileItsNodeRuns(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM"}[sig], func(t *testing.T) {
			t.Parallel()
			workerStoppedWhileItsNodeRuns(t, sig)
		})
	}
}

func workerStoppedWhileItsNodeRuns(t *testing.T, sig syscall.Signal) {
	r := newWorkerRig(t, 16)
	hangs := 0
	r.model.mu.Lock()
	r.model.hang = func(kind string, _ int) bool { // the asker's first call, once
		if kind == "asker task" && hangs == 0 {
			hangs++
			return true
		}
		return false
	}
	r.model.mu.Unlock()

	id := r.start(t, `{"async_execution":true}`)
	select {
	case <-r.model.hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the asker never called the model")
	}
	victim := r.runningOn(t, id, "asker")
	other := map[string]string{"w1": "w2", "w2": "w1"}[victim]
	killed := time.Now()
	r.workers[victim].stop(t, sig)

	x := r.wait(t, id, 30*time.Second)
	t.Logf("stopped %s with %s; the execution ended %s later", victim, sig, time.Since(killed).Round(time.Millisecond))
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
		t.Fatalf("status %s placement %s (%q) error %q", x.Status, x.Placement, x.PlacementFallbackReason, x.Error)
	}
	asker := x.NodeStates["asker"]
	if asker.Attempt != 2 || asker.Worker != other {
		t.Fatalf("asker: attempt %d on %q, want attempt 2 on %s (the killed one was %s)", asker.Attempt, asker.Worker, other, victim)
	}
	if w := x.NodeStates["expert"].Worker; w != other {
		t.Fatalf("expert ran on %q, want %s", w, other)
	}
	// The asker's output appears once: as its own, and once in the prompt
	// the expert checked.
	if out := x.NodeStates["expert"].Output.(string); strings.Count(out, "asker learned") != 1 {
		t.Fatalf("expert output %q", out)
	}
	if got := commShape(x); !slices.Equal(got, wantComm) {
		t.Fatalf("communication log %q, want %q (once)", got, wantComm)
	}
	lost := 0
	for _, l := range x.Logs {
		if strings.Contains(l.Message, "was lost on worker "+victim) {
			lost++
		}
	}
	if lost != 1 {
		t.Fatalf("%d log lines say %s was lost, want 1:\n%+v", lost, victim, x.Logs)
	}
	// Usage counts every model reply once, and only replies: the call the
	// killed worker waited on was never answered, so it cost nothing and
	// counts nothing (a reply a lost attempt got before the loss would count:
	// its tokens were spent, and the token budget counted them). So the
	// record's usage is exactly what the model answered, and the same as an
	// undisturbed run's.
	r.model.mu.Lock()
	answered := r.model.usage
	r.model.mu.Unlock()
	if x.Usage != answered || asker.Calls != 2 || asker.Usage != usageOf(callUsage["asker task"], callUsage["asker followup"]) {
		t.Fatalf("usage %+v (asker %+v in %d calls), want %+v as answered", x.Usage, asker.Usage, asker.Calls, answered)
	}
	local := r.run(t, `{"async_execution":true,"placement":"local"}`)
	if diffs := sameRecord(x, local); len(diffs) > 0 {
		t.Fatalf("the record after failover differs from an undisturbed run's:\n%s", strings.Join(diffs, "\n"))
	}
}

// TestRedisRestartedWhileANodeRunsOnAWorker restarts redis-server (same
// port, empty: no persistence) while a node waits on the model on a
// worker. The execution finishes in the server and says why; the workers
// register again on the new Redis, and the next execution runs on them.
func TestRedisRestartedWhileANodeRunsOnAWorker(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	hangs := 0
	r.model.mu.Lock()
	r.model.hang = func(kind string, _ int) bool { // the asker's first call, once
		if kind == "asker task" && hangs == 0 {
			hangs++
			return true
		}
		return false
	}
	r.model.mu.Unlock()

	id := r.start(t, `{"async_execution":true}`)
	select {
	case <-r.model.hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the asker never called the model")
	}
	r.runningOn(t, id, "asker")
	r.redis.Restart()

	x := r.wait(t, id, 30*time.Second)
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s error %q\nlogs %+v", x.Status, x.Error, x.Logs)
	}
	if x.PlacementFallbackReason == "" && x.FallbackReason == "" {
		t.Fatalf("the record does not say Redis was lost: placement %s, placement_fallback_reason %q, fallback_reason %q",
			x.Placement, x.PlacementFallbackReason, x.FallbackReason)
	}
	if got := commShape(x); !slices.Equal(got, wantComm) {
		t.Fatalf("communication log %q, want %q", got, wantComm)
	}
	for _, reason := range []string{x.PlacementFallbackReason, x.FallbackReason} {
		if strings.Count(reason, "Redis connection lost at") > 1 {
			t.Fatalf("the reason says it twice: %q", reason)
		}
	}
	t.Logf("placement_fallback_reason %q; fallback_reason %q", x.PlacementFallbackReason, x.FallbackReason)

	// The workers find their registration gone and register again.
	for _, w := range r.workers {
		w.waitHealthy(t)
	}
	r.waitRegistered(t, "w1", "w2")
	// The server lists the workers at most once a second: until it sees
	// them again it hosts the agents itself (and says so), so run until an
	// execution is placed on them, within a bound.
	var next *workflow.Execution
	poll(t, 15*time.Second, func() error {
		next = r.run(t, `{"async_execution":true}`)
		if next.Status != workflow.ExecSuccess {
			t.Fatalf("after the restart: status %s error %q", next.Status, next.Error)
		}
		if next.Placement != workflow.PlacementWorkers {
			return fmt.Errorf("after the restart the agents ran %s: %q", next.Placement, next.PlacementFallbackReason)
		}
		return nil
	})
	if next.FallbackReason != "" || next.NodeStates["asker"].Worker == "" || next.NodeStates["expert"].Worker == "" {
		t.Fatalf("after the restart: fallback %q, asker on %q, expert on %q", next.FallbackReason, next.NodeStates["asker"].Worker, next.NodeStates["expert"].Worker)
	}
	if got := commShape(next); !slices.Equal(got, wantComm) {
		t.Fatalf("communication log after the restart %q, want %q", got, wantComm)
	}
}

// TestHundredExecutionsAcrossTwoWorkerProcesses starts 100 executions at
// once on two worker processes, waits for them all, and checks that they
// leave nothing behind on Redis.
func TestHundredExecutionsAcrossTwoWorkerProcesses(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	const n = 100
	started := time.Now()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = r.start(t, `{"async_execution":true}`)
	}
	used := map[string]int{}
	for _, id := range ids {
		x := r.wait(t, id, 60*time.Second)
		if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers || x.FallbackReason != "" || x.PlacementFallbackReason != "" {
			t.Fatalf("execution %s: status %s placement %s (%q, %q) error %q", id, x.Status, x.Placement, x.PlacementFallbackReason, x.FallbackReason, x.Error)
		}
		if got := commShape(x); !slices.Equal(got, wantComm) {
			t.Fatalf("execution %s: communication log %q", id, got)
		}
		for _, node := range []string{"asker", "expert"} {
			used[x.NodeStates[node].Worker]++
		}
	}
	t.Logf("%d executions in %s; nodes per worker %v", n, time.Since(started).Round(time.Millisecond), used)
	if len(used) != 2 || used["w1"] == 0 || used["w2"] == 0 {
		t.Fatalf("nodes per worker %v, want both w1 and w2 used", used)
	}
	r.quiet(t, 20*time.Second)
}

// TestWorkerKilledAfterItsNodeAsked kills the worker whose node has asked
// the other agent and got its answer, and now waits on the model for its
// last turn. The node runs again on the other worker from its start.
//
// What the lost attempt did before the kill stays in the record, once:
// its model replies were paid for, so they count (the token budget counted
// them too), and its ask and answer are logged once. The second attempt
// asks the same question again; the loop guard answers it from the first
// answer without asking the expert again, and the log shows it as a
// duplicate. After the run, the killed worker leaves no consumer and no
// pending entry behind.
func TestWorkerKilledAfterItsNodeAsked(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	hangs := 0
	r.model.mu.Lock()
	r.model.hang = func(kind string, _ int) bool { // the asker's last turn, once
		if kind == "asker followup" && hangs == 0 {
			hangs++
			return true
		}
		return false
	}
	r.model.mu.Unlock()

	id := r.start(t, `{"async_execution":true}`)
	select {
	case <-r.model.hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the asker never took its last turn")
	}
	victim := r.runningOn(t, id, "asker")
	other := map[string]string{"w1": "w2", "w2": "w1"}[victim]
	// The first attempt's ask and answer are on the record before the kill.
	poll(t, 10*time.Second, func() error {
		if got := commShape(r.get(t, id)); !slices.Equal(got, wantComm) {
			return fmt.Errorf("communication log before the kill %q, want %q", got, wantComm)
		}
		return nil
	})
	// The agents' channels are there while they run, so that quiet's
	// pattern is known to match them.
	if chans, err := r.rdb.PubSubChannels(t.Context(), "agent:messages:node-*").Result(); err != nil || len(chans) != 2 {
		t.Fatalf("agent channels while the execution runs: %v %v, want 2", chans, err)
	}
	r.workers[victim].kill(t)

	x := r.wait(t, id, 30*time.Second)
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
		t.Fatalf("status %s placement %s (%q) error %q", x.Status, x.Placement, x.PlacementFallbackReason, x.Error)
	}
	asker := x.NodeStates["asker"]
	if asker.Attempt != 2 || asker.Worker != other {
		t.Fatalf("asker: attempt %d on %q, want attempt 2 on %s (the killed one was %s)", asker.Attempt, asker.Worker, other, victim)
	}
	if out := x.NodeStates["expert"].Output.(string); out != "expert checked: asker learned: six times seven is forty-two" {
		t.Fatalf("expert output %q", out)
	}
	want := append(append([]string{}, wantComm...), wantComm...)
	if got := commShape(x); !slices.Equal(got, want) {
		t.Fatalf("communication log %q, want %q", got, want)
	}
	for i, c := range x.CommunicationLog {
		if dup := c.Metadata["duplicate"] == true; dup != (i >= 2) {
			t.Fatalf("entry %d %s→%s duplicate=%v, want the second attempt's (only) marked", i, c.From, c.To, c.Metadata["duplicate"])
		}
	}
	r.model.mu.Lock()
	answered, counts := r.model.usage, maps.Clone(r.model.answered)
	r.model.mu.Unlock()
	if counts["expert answer"] != 1 || counts["asker task"] != 2 || counts["asker followup"] != 1 {
		t.Fatalf("the model answered %v, want the expert asked once and the asker's task run twice", counts)
	}
	wantAsker := usageOf(callUsage["asker task"], callUsage["asker task"], callUsage["asker followup"])
	if x.Usage != answered || asker.Calls != 3 || asker.Usage != wantAsker {
		t.Fatalf("usage %+v (asker %+v in %d calls), want %+v as answered (asker %+v in 3)", x.Usage, asker.Usage, asker.Calls, answered, wantAsker)
	}
	seen := map[string]bool{}
	for _, l := range x.Logs {
		key := l.NodeID + ": " + l.Message
		if seen[key] && !strings.Contains(l.Message, "duplicate") {
			t.Fatalf("log line twice: %s\n%+v", key, x.Logs)
		}
		seen[key] = true
	}

	// The server claimed the lost tasks; once the killed worker's
	// registration has lapsed, its stream and consumer go too.
	r.waitRegistered(t, other)
	r.quiet(t, 40*time.Second)
}

// TestWorkerKilledWhileItsAgentAnswers kills with SIGKILL the worker whose
// agent is answering another agent's ask (its model call hangs). The
// server places the agent on the other worker, the asker's bus sends the
// query again with the same id at half the ask's timeout, and the agent
// answers it there: the ask is logged once, answered once, and the
// execution succeeds.
func TestWorkerKilledWhileItsAgentAnswers(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	// The resend comes at half the ask's timeout: 6 s here (15 s by
	// default), after the failover (the lease, 2 s, a claim check and a
	// renewal period: under 3.5 s after the kill).
	r.askTimeout(t, 12)
	hangs := 0
	r.model.mu.Lock()
	r.model.hang = func(kind string, _ int) bool { // the expert's answer, once
		if kind == "expert answer" && hangs == 0 {
			hangs++
			return true
		}
		return false
	}
	r.model.mu.Unlock()

	id := r.start(t, `{"async_execution":true}`)
	select {
	case <-r.model.hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the expert never answered")
	}
	asker := r.runningOn(t, id, "asker")
	victim := map[string]string{"w1": "w2", "w2": "w1"}[asker]
	// The expert has not run yet, so its node state does not say where it
	// is; the execution's log does, from the start.
	if !hostedBy(r.get(t, id), victim, "expert") {
		t.Fatalf("the expert is not hosted by %s (the asker is on %s): %+v", victim, asker, r.get(t, id).Logs)
	}
	r.workers[victim].kill(t)

	x := r.wait(t, id, 30*time.Second)
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
		t.Fatalf("status %s placement %s (%q) error %q\ncommunication %q", x.Status, x.Placement, x.PlacementFallbackReason, x.Error, commShape(x))
	}
	expert := x.NodeStates["expert"]
	if expert.Attempt != 2 || expert.Worker != asker || x.NodeStates["asker"].Worker != asker {
		t.Fatalf("expert: attempt %d on %q, want attempt 2 on %s", expert.Attempt, expert.Worker, asker)
	}
	if got := commShape(x); !slices.Equal(got, wantComm) {
		t.Fatalf("communication log %q, want %q", got, wantComm)
	}
	if out := expert.Output.(string); out != "expert checked: asker learned: six times seven is forty-two" {
		t.Fatalf("expert output %q", out)
	}
	r.model.mu.Lock()
	answered, counts := r.model.usage, maps.Clone(r.model.answered)
	r.model.mu.Unlock()
	if counts["expert answer"] != 1 || x.Usage != answered {
		t.Fatalf("the model answered %v; usage %+v, want %+v as answered", counts, x.Usage, answered)
	}
}

// TestWorkerQueueLongerThanTheLease gives each worker room for one node at
// a time and a model that takes a while, so that nodes wait on a worker
// for longer than the lease before they run. A node waiting its turn on a
// live worker is not lost: no agent is placed again, and every execution
// succeeds.
func TestWorkerQueueLongerThanTheLease(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 1)
	r.model.mu.Lock()
	r.model.delay = 150 * time.Millisecond
	r.model.mu.Unlock()
	const n = 16
	ids := make([]string, n)
	started := time.Now()
	for i := range ids {
		ids[i] = r.start(t, `{"async_execution":true}`)
	}
	for _, id := range ids {
		x := r.wait(t, id, 60*time.Second)
		if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers || x.PlacementFallbackReason != "" {
			t.Fatalf("execution %s: status %s placement %s (%q) error %q", id, x.Status, x.Placement, x.PlacementFallbackReason, x.Error)
		}
		for node, s := range x.NodeStates {
			if s.Attempt > 1 {
				t.Errorf("execution %s: node %s ran %d times (on %s), though no worker was lost", id, node, s.Attempt, s.Worker)
			}
		}
		for _, l := range x.Logs {
			if strings.Contains(l.Message, "was lost") {
				t.Errorf("execution %s: %s", id, l.Message)
			}
		}
	}
	t.Logf("%d executions in %s with one node at a time per worker", n, time.Since(started).Round(time.Millisecond))
}

// TestWorkerKilledUnderLoad kills one of two workers with SIGKILL while 40
// executions run on them: every execution still succeeds, with its
// communication once, and Redis is quiet afterwards.
func TestWorkerKilledUnderLoad(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 8)
	// Asks in flight to the killed worker's agents are sent again at half
	// the ask's timeout: 5 s here (15 s by default), after the failover
	// (the lease, 2 s, a claim check and a renewal period: under 3.5 s).
	r.askTimeout(t, 10)
	r.model.mu.Lock()
	r.model.delay = 100 * time.Millisecond
	r.model.mu.Unlock()
	const n = 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = r.start(t, `{"async_execution":true}`)
	}
	// Kill w1 once the first execution has ended, while the rest run.
	poll(t, 30*time.Second, func() error {
		if x := r.get(t, ids[0]); !ended(x) {
			return fmt.Errorf("the first execution is still %s", x.Status)
		}
		return nil
	})
	r.workers["w1"].kill(t)
	moved := 0
	for _, id := range ids {
		x := r.wait(t, id, 60*time.Second)
		if x.Status != workflow.ExecSuccess {
			t.Fatalf("execution %s: status %s placement %s (%q) error %q", id, x.Status, x.Placement, x.PlacementFallbackReason, x.Error)
		}
		// Undisturbed; or the asker's node ran again after its ask was
		// answered (the repeat is answered from the first answer), or
		// while it waited for the answer (the lost ask is logged as it left).
		if got := commShape(x); !slices.Equal(got, wantComm) && !slices.Equal(got, append(append([]string{}, wantComm...), wantComm...)) &&
			!slices.Equal(got, append([]string{wantComm[0]}, wantComm...)) {
			t.Fatalf("execution %s: communication log %q", id, got)
		}
		for _, s := range x.NodeStates {
			if s.Attempt > 1 {
				moved++
			}
		}
	}
	t.Logf("%d nodes ran again after the kill", moved)
	if moved == 0 {
		t.Fatal("no node ran again: the kill came after the work")
	}
	r.waitRegistered(t, "w2")
	r.quiet(t, 40*time.Second)
}

// TestWorkerKilledWhileItsAskIsAnswered kills with SIGKILL the worker of
// an agent that has asked the other agent (on the other worker) and waits
// for the answer. The asker's node runs again on the other worker and asks
// again: the lost attempt's ask, admitted by the server's loop guard but
// never settled, must not hold the new ask as a repeat of it.
func TestWorkerKilledWhileItsAskIsAnswered(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	hangs := 0
	r.model.mu.Lock()
	r.model.hang = func(kind string, _ int) bool { // the expert's first answer
		if kind == "expert answer" && hangs == 0 {
			hangs++
			return true
		}
		return false
	}
	r.model.mu.Unlock()

	id := r.start(t, `{"async_execution":true}`)
	select {
	case <-r.model.hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the expert never answered")
	}
	victim := r.runningOn(t, id, "asker")
	other := map[string]string{"w1": "w2", "w2": "w1"}[victim]
	// The worker sends the ask's log entry on its result stream, apart from
	// the QUERY: the kill comes once the record has it, or the entry could
	// die with the worker.
	poll(t, 10*time.Second, func() error {
		if got := commShape(r.get(t, id)); len(got) == 0 {
			return errors.New("the record does not show the ask yet")
		}
		return nil
	})
	r.workers[victim].kill(t)

	x := r.wait(t, id, 20*time.Second)
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
		t.Fatalf("status %s placement %s (%q) error %q\ncommunication %q", x.Status, x.Placement, x.PlacementFallbackReason, x.Error, commShape(x))
	}
	asker := x.NodeStates["asker"]
	if asker.Attempt != 2 || asker.Worker != other {
		t.Fatalf("asker: attempt %d on %q, want attempt 2 on %s", asker.Attempt, asker.Worker, other)
	}
	// The lost attempt's ask is logged as it left; its answer never came.
	want := append([]string{wantComm[0]}, wantComm...)
	if got := commShape(x); !slices.Equal(got, want) {
		t.Fatalf("communication log %q, want %q", got, want)
	}
	if out := x.NodeStates["expert"].Output.(string); out != "expert checked: asker learned: six times seven is forty-two" {
		t.Fatalf("expert output %q", out)
	}
	r.model.mu.Lock()
	answered := r.model.usage
	r.model.mu.Unlock()
	if x.Usage != answered {
		t.Fatalf("usage %+v, want %+v as answered", x.Usage, answered)
	}
}

// TestServerKilledWhileItsAgentsRunOnWorkers kills the server with SIGKILL
// while a node of its execution waits on the model on a worker. Nobody
// will send the release: the workers notice the server is gone, drop its
// agents and stop its node, and leave nothing behind on Redis.
func TestServerKilledWhileItsAgentsRunOnWorkers(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	r.model.mu.Lock()
	r.model.hang = func(kind string, _ int) bool { return kind == "asker task" }
	r.model.mu.Unlock()
	id := r.start(t, `{"async_execution":true}`)
	select {
	case <-r.model.hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the asker never called the model")
	}
	r.runningOn(t, id, "asker")
	if err := r.server.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.server.done
	poll(t, 20*time.Second, func() error {
		ws, err := bus.ListWorkers(t.Context(), r.rdb)
		if err != nil {
			return err
		}
		for _, w := range ws {
			if len(w.Agents) > 0 || w.InUse > 0 {
				return fmt.Errorf("worker %s still hosts %v, runs %d", w.Name, w.Agents, w.InUse)
			}
		}
		return nil
	})
	r.quiet(t, 20*time.Second)
	// Nobody reads the gone server's result stream any more.
	poll(t, 10*time.Second, func() error {
		keys, err := r.rdb.Keys(t.Context(), "switchboard:results:*").Result()
		if err != nil || len(keys) > 0 {
			return fmt.Errorf("result streams of a gone server left: %v %v", keys, err)
		}
		return nil
	})
}

// TestWorkerStoppedWhileItsAgentIsIdle stops with SIGTERM the worker that
// hosts the expert, an agent with nothing to do yet, while the asker (on
// the other worker) waits on the model; then lets the asker ask. The
// expert must be placed again and answer: a worker that stops hands its
// agents back, as one that dies does.
func TestWorkerStoppedWhileItsAgentIsIdle(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	r.askTimeout(t, 10)
	gate := make(chan struct{})
	hangs := 0
	r.model.mu.Lock()
	r.model.gate = gate
	r.model.hang = func(kind string, _ int) bool { // the asker's first call, until the gate opens
		if kind == "asker task" && hangs == 0 {
			hangs++
			return true
		}
		return false
	}
	r.model.mu.Unlock()

	id := r.start(t, `{"async_execution":true}`)
	select {
	case <-r.model.hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the asker never called the model")
	}
	other := r.runningOn(t, id, "asker")
	victim := map[string]string{"w1": "w2", "w2": "w1"}[other]
	r.workers[victim].stop(t, syscall.SIGTERM)
	r.waitRegistered(t, other)
	close(gate)

	x := r.wait(t, id, 30*time.Second)
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s error %q", x.Status, x.Error)
	}
	if got := commShape(x); !slices.Equal(got, wantComm) {
		t.Fatalf("communication log %q, want %q: the ask to the stopped worker's agent was not answered", got, wantComm)
	}
	if e := x.NodeStates["expert"]; e.Worker != other || e.Attempt != 2 {
		t.Fatalf("expert: attempt %d on %q, want attempt 2 on %s", e.Attempt, e.Worker, other)
	}
}

// TestWorkerPausedWhileItsNodeRuns stops the worker whose node waits on
// the model with SIGSTOP, past the lease: the server takes it for lost and
// the node runs on the other worker. Resumed with SIGCONT, the worker
// finds its task gone and drops the agent; nothing it does then reaches
// the record, Redis goes quiet with both workers registered, and the next
// execution runs on both again.
func TestWorkerPausedWhileItsNodeRuns(t *testing.T) {
	t.Parallel()
	r := newWorkerRig(t, 16)
	hangs := 0
	r.model.mu.Lock()
	r.model.hang = func(kind string, _ int) bool { // the asker's first call, once
		if kind == "asker task" && hangs == 0 {
			hangs++
			return true
		}
		return false
	}
	r.model.mu.Unlock()

	id := r.start(t, `{"async_execution":true}`)
	select {
	case <-r.model.hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the asker never called the model")
	}
	victim := r.runningOn(t, id, "asker")
	other := map[string]string{"w1": "w2", "w2": "w1"}[victim]
	p := r.workers[victim].cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = p.Signal(syscall.SIGCONT)
		}
	})
	x := r.wait(t, id, 30*time.Second)
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if x.Status != workflow.ExecSuccess || x.NodeStates["asker"].Attempt != 2 || x.NodeStates["asker"].Worker != other {
		t.Fatalf("status %s error %q; asker %+v", x.Status, x.Error, x.NodeStates["asker"])
	}
	if got := commShape(x); !slices.Equal(got, wantComm) {
		t.Fatalf("communication log %q, want %q", got, wantComm)
	}

	r.workers[victim].waitHealthy(t)
	r.waitRegistered(t, "w1", "w2")
	r.quiet(t, 20*time.Second)
	// The record is final: what the resumed worker did after is not in it.
	if again := r.get(t, id); !reflect.DeepEqual(commShape(again), commShape(x)) || again.Usage != x.Usage {
		t.Fatalf("the record changed after the worker resumed: usage %+v → %+v, communication %q", x.Usage, again.Usage, commShape(again))
	}
	next := r.run(t, `{"async_execution":true}`)
	ran := []string{next.NodeStates["asker"].Worker, next.NodeStates["expert"].Worker}
	slices.Sort(ran)
	if next.Status != workflow.ExecSuccess || !slices.Equal(ran, []string{"w1", "w2"}) {
		t.Fatalf("the next execution: status %s on %v (%q)", next.Status, ran, next.PlacementFallbackReason)
	}
}
