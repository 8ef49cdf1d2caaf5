package web_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// workersBus is a BusView whose registry answers fixed workers, or err.
type workersBus struct {
	fakeBus
	workers []web.Worker
	err     error
}

func (b *workersBus) Workers(context.Context) ([]web.Worker, error) { return b.workers, b.err }

func TestWorkersAPI(t *testing.T) {
	t.Parallel()
	hb := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	reg := &workersBus{workers: []web.Worker{{Name: "w1", Host: "gpu-1", PID: 4242, Capacity: 8, InUse: 3,
		StartedAt: hb.Add(-time.Hour), LastHeartbeat: hb, Agents: []string{"node-6932f1a2000001aabbccddee-teacher"}, Instance: "ab12"},
		{Name: "w2", Host: "gpu-2", PID: 7, Capacity: 4}}}
	down := &workersBus{err: &workflow.Error{Code: workflow.CodeUnavailable, Message: "cannot list the workers: Redis at 10.0.0.5:6379 cannot be reached"}}
	for _, tc := range []struct {
		name       string
		bus        web.BusView
		wantStatus int
		wantBody   string
	}{
		{"registered", reg, 200, `{"workers":[{"name":"w1","host":"gpu-1","pid":4242,"capacity":8,"in_use":3,` +
			`"started_at":"2026-12-03T09:00:00Z","last_heartbeat":"2026-12-03T10:00:00Z","agents":["node-6932f1a2000001aabbccddee-teacher"],"instance":"ab12"},` +
			`{"name":"w2","host":"gpu-2","pid":7,"capacity":4,"in_use":0,"started_at":"0001-01-01T00:00:00Z","last_heartbeat":"0001-01-01T00:00:00Z","agents":[],"instance":""}]}`},
		{"none", &workersBus{}, 200, `{"workers":[]}`},
		{"no bus", nil, 200, `{"workers":[]}`},
		{"redis down", down, 503, `"detail":"cannot list the workers: Redis at 10.0.0.5:6379 cannot be reached"`},
	} {
		s := newServer(t, web.Config{Bus: tc.bus})
		code, body, _ := s.do(t, "GET", "/workers", "")
		if code != tc.wantStatus || !strings.Contains(strings.TrimSpace(string(body)), tc.wantBody) {
			t.Errorf("%s: GET /workers = %d %s, want %d with %s", tc.name, code, body, tc.wantStatus, tc.wantBody)
		}
	}
}

func TestWorkersAPINeedsToken(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{Bus: &workersBus{}, Token: "t0ken-for-workers"})
	if code, body, _ := s.do(t, "GET", "/workers", ""); code != 401 {
		t.Errorf("GET /workers without the token: %d %s", code, body)
	}
}

func TestUIBusWorkers(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	b := &workersBus{workers: []web.Worker{{Name: "w1", Host: "gpu-1", PID: 4242, Capacity: 8, InUse: 3,
		StartedAt: now.Add(-time.Hour), LastHeartbeat: now.Add(-4 * time.Second),
		Agents: []string{"node-6932f1a2000001aabbccddee-teacher", "outside-agent"}}}}
	_, c := newUI(t, web.Config{Bus: b})
	code, page, _ := c.get("/ui/bus")
	if code != 200 {
		t.Fatalf("bus page: %d", code)
	}
	mustContain(t, "bus page", page, `id="bus-workers" hx-get="/ui/bus/workers" hx-trigger="every 5s"`,
		`data-worker="w1"`, `<code>gpu-1</code>`, "pid 4242", "3 / 8", `<rect class="usage-fill" width="37"`,
		`data-format="relative"`, "4 s ago", `<span class="agent-count">2</span>`,
		`href="/ui/executions/6932f1a2000001aabbccddee"`, "6932f1a2…/teacher", "<code>outside-agent</code>")
	if strings.Contains(page, "No worker is registered") {
		t.Errorf("the bus page says no worker is registered next to one")
	}

	// No worker: the calm empty state with the command, for the bus's URL
	// with its password masked.
	_, c = newUI(t, web.Config{Bus: &workersBus{}})
	_, frag, _ := c.do("GET", "/ui/bus/workers", nil, map[string]string{"HX-Request": "true"})
	mustContain(t, "empty workers fragment", frag, "No worker is registered",
		"switchboard worker --redis-url redis://app:xxxxx@10.0.0.5:6379/0")
	if strings.Contains(frag, "s3cret-pw") {
		t.Errorf("the empty state shows the Redis password:\n%s", frag)
	}

	// Redis down: the reason, not a broken page.
	_, c = newUI(t, web.Config{Bus: &workersBus{err: &workflow.Error{Code: workflow.CodeUnavailable, Message: "cannot list the workers: Redis at 10.0.0.5:6379 cannot be reached"}}})
	_, frag, _ = c.do("GET", "/ui/bus/workers", nil, map[string]string{"HX-Request": "true"})
	mustContain(t, "workers fragment with Redis down", frag, "Cannot list the workers:", "Redis at 10.0.0.5:6379 cannot be reached")
}

// recordingRunner remembers the options of every run it starts.
type recordingRunner struct {
	web.Runner
	mu   sync.Mutex
	opts []executor.Options
}

func (r *recordingRunner) Start(wf *workflow.Workflow, opts executor.Options) (*executor.Run, error) {
	r.mu.Lock()
	r.opts = append(r.opts, opts)
	r.mu.Unlock()
	return r.Runner.Start(wf, opts)
}

func (r *recordingRunner) last() executor.Options {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.opts) == 0 {
		return executor.Options{}
	}
	return r.opts[len(r.opts)-1]
}

func TestUIRunFormPlacement(t *testing.T) {
	t.Parallel()
	rec := &recordingRunner{}
	s, c := newUI(t, web.Config{}, withRunner(func(r web.Runner) web.Runner { rec.Runner = r; return rec }))
	wid := createWorkflow(t, s, uiDoc)
	_, page, _ := c.get("/ui/workflows/" + wid)
	mustContain(t, "run form", page, `<select id="run-placement" name="placement"`,
		`<option value="auto" selected>workers when available (auto)</option>`, `<option value="local">this server (local)</option>`)

	for _, placement := range []string{"local", "auto"} {
		code, body, hdr := c.post("/ui/workflows/"+wid+"/run", url.Values{"mode": {"pubsub"}, "placement": {placement}})
		if code != 200 || !strings.HasPrefix(hdr.Get("HX-Location"), "/ui/executions/") {
			t.Fatalf("run with placement %s: %d %s", placement, code, body)
		}
		if got := rec.last(); got.Placement != placement || got.Mode != workflow.ModePubSub {
			t.Errorf("run form posted placement %s: the runner got mode %q placement %q", placement, got.Mode, got.Placement)
		}
	}
	code, body, _ := c.post("/ui/workflows/"+wid+"/run", url.Values{"mode": {"pubsub"}, "placement": {"moon"}})
	if code != 422 || !strings.Contains(body, "placement") || !strings.Contains(body, `must be &#34;auto&#34; or &#34;local&#34;`) {
		t.Errorf("unknown placement: %d %s", code, body)
	}
}

// TestUIExecutionWhereNodesRan renders a record of a run whose agents were
// placed on workers: each node says where it ran, a node run again after a
// worker was lost says its attempt, and the header says the placement.
func TestUIExecutionWhereNodesRan(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	wid := createWorkflow(t, s, uiDoc)
	now := time.Now().UTC()
	record := func(x *workflow.Execution, nodes ...*workflow.NodeState) {
		t.Helper()
		x.WorkflowID, x.WorkflowName, x.Status, x.CreatedAt, x.StartTime, x.EndTime = wid, "qa", workflow.ExecSuccess, now, &now, &now
		x.RequestedMode, x.Mode = workflow.ModePubSub, workflow.ModePubSub
		evs := []workflow.Event{{ExecutionID: x.ID, Seq: 1, Time: now, Kind: workflow.EventExecution, Execution: x}}
		for i, n := range nodes {
			n.StartedAt, n.FinishedAt, n.Status = &now, &now, workflow.NodeCompleted
			evs = append(evs, workflow.Event{ExecutionID: x.ID, Seq: int64(i + 2), Time: now, Kind: workflow.EventNode, Node: n})
		}
		for _, ev := range evs {
			if err := s.db.Record(t.Context(), ev); err != nil {
				t.Fatal(err)
			}
		}
	}

	onWorkers := &workflow.Execution{ID: workflow.NewID(), Placement: workflow.PlacementWorkers}
	record(onWorkers,
		&workflow.NodeState{NodeID: "start", Type: workflow.NodeStart},
		&workflow.NodeState{NodeID: "student", Type: workflow.NodeAIProcessor, Worker: "gpu-box-1"},
		&workflow.NodeState{NodeID: "teacher", Type: workflow.NodeAIProcessor, Worker: "gpu-box-2", Attempt: 2})
	_, page, _ := c.get("/ui/executions/" + onWorkers.ID)
	mustContain(t, "execution on workers", page,
		`<dd class="placement">on workers</dd>`,
		`title="Ran on the worker gpu-box-1">on gpu-box-1</span>`,
		`title="Ran on the worker gpu-box-2">on gpu-box-2</span>`,
		`>attempt 2</span>`,
		`title="Ran in the server, not on a worker">on server</span>`, // start
		`<text class="node-worker" x="186" y="63" text-anchor="end">on gpu-box-1</text>`,
		"· ran on gpu-box-2</title>")
	if strings.Count(page, ">attempt ") != 1 {
		t.Errorf("only the teacher ran twice; the page shows %d attempts", strings.Count(page, ">attempt "))
	}
	if strings.Contains(page, "banner-placement") {
		t.Errorf("a placement banner on a run whose agents ran on workers")
	}

	fellBack := &workflow.Execution{ID: workflow.NewID(), Placement: workflow.PlacementLocal,
		PlacementFallbackReason: "the workers could not be listed: connection refused"}
	record(fellBack, &workflow.NodeState{NodeID: "student", Type: workflow.NodeAIProcessor})
	_, page, _ = c.get("/ui/executions/" + fellBack.ID)
	mustContain(t, "execution that fell back to the server", page,
		`<dd class="placement">in the server</dd>`, "banner-placement",
		"No worker could take this run's agents, so they ran in the server.",
		"Reason: the workers could not be listed: connection refused")
	if strings.Contains(page, "tag-where") {
		t.Errorf("node badges on a run whose agents all ran in the server")
	}

	// A server used alone, with no worker registered, runs every pubsub
	// execution's agents itself: the header says so, without a warning.
	alone := &workflow.Execution{ID: workflow.NewID(), Placement: workflow.PlacementLocal,
		PlacementFallbackReason: executor.NoWorkersReason}
	record(alone, &workflow.NodeState{NodeID: "student", Type: workflow.NodeAIProcessor})
	_, page, _ = c.get("/ui/executions/" + alone.ID)
	mustContain(t, "execution of a server without workers", page,
		`<dd class="placement">in the server <span class="muted">(no worker registered)</span></dd>`)
	if strings.Contains(page, "banner-placement") {
		t.Errorf("a placement warning on a run of a server that has no workers")
	}

	// A simple run says nothing of placement.
	simple := &workflow.Execution{ID: workflow.NewID()}
	record(simple, &workflow.NodeState{NodeID: "student", Type: workflow.NodeAIProcessor})
	_, page, _ = c.get("/ui/executions/" + simple.ID)
	for _, u := range []string{`class="placement"`, "tag-where", "banner-placement", "node-worker"} {
		if strings.Contains(page, u) {
			t.Errorf("simple run page contains %q", u)
		}
	}
}
