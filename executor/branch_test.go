package executor_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// graphDoc builds a workflow of the given nodes (id:type, or id:condition
// with its expression after a second colon) and edges ("a>b", or
// "a>b=label"), every other node a transformer that outputs its id.
func graphDoc(name string, nodes []string, edges []string) string {
	var ns, es []string
	for _, n := range nodes {
		parts := strings.SplitN(n, ":", 3)
		id, typ := parts[0], parts[1]
		switch typ {
		case "start", "end":
			ns = append(ns, fmt.Sprintf(`{"id":%q,"type":%q}`, id, typ))
		case "condition", "filter":
			ns = append(ns, fmt.Sprintf(`{"id":%q,"type":%q,"config":{"condition":%q}}`, id, typ, parts[2]))
		case "fail":
			ns = append(ns, fmt.Sprintf(`{"id":%q,"type":"transformer","config":{"template":"{{no_such_input}}"}}`, id))
		default:
			ns = append(ns, fmt.Sprintf(`{"id":%q,"type":"transformer","config":{"template":%q}}`, id, id))
		}
	}
	for _, e := range edges {
		ft, label, _ := strings.Cut(e, "=")
		from, to, _ := strings.Cut(ft, ">")
		if label != "" {
			es = append(es, fmt.Sprintf(`{"from":%q,"to":%q,"when":%q}`, from, to, label))
		} else {
			es = append(es, fmt.Sprintf(`{"from":%q,"to":%q}`, from, to))
		}
	}
	return fmt.Sprintf(`{"name":%q,"nodes":[%s],"edges":[%s]}`, name, strings.Join(ns, ","), strings.Join(es, ","))
}

// TestBranchingMatrix runs diamonds and joins behind conditions and
// filters: the branch not taken is skipped with a reason naming the
// condition, a node reached only through skipped branches is skipped, a
// join runs when one parent ran and the others were skipped, and a failure
// still skips what follows it and fails the execution.
func TestBranchingMatrix(t *testing.T) {
	t.Parallel()
	diamond := []string{"s:start", "c:condition:inputs.x > 1", "a:t", "b:t", "j:t", "e:end"}
	diamondEdges := []string{"s>c", "c>a=true", "c>b=false", "a>j", "b>j", "j>e"}
	nested := []string{"s:start", "c1:condition:inputs.x > 1", "c2:condition:inputs.x > 10", "a:t", "b:t", "d:t", "j:t", "e:end"}
	nestedEdges := []string{"s>c1", "c1>c2=true", "c1>d=false", "c2>a=true", "c2>b=false", "a>j", "b>j", "d>j", "j>e"}
	cases := []struct {
		name   string
		nodes  []string
		edges  []string
		x      any
		status string
		want   map[string]string // node → status
		reason map[string]string // node → a part of its skip reason
	}{
		{"diamond true", diamond, diamondEdges, 5, workflow.ExecSuccess,
			map[string]string{"c": "completed", "a": "completed", "b": "skipped", "j": "completed", "e": "completed"},
			map[string]string{"b": `condition "c" took branch "true", not "false"`}},
		{"diamond false", diamond, diamondEdges, 0, workflow.ExecSuccess,
			map[string]string{"a": "skipped", "b": "completed", "j": "completed", "e": "completed"},
			map[string]string{"a": `condition "c" took branch "false", not "true"`}},
		{"nested true,false", nested, nestedEdges, 5, workflow.ExecSuccess,
			map[string]string{"c2": "completed", "a": "skipped", "b": "completed", "d": "skipped", "j": "completed"}, nil},
		{"nested true,true", nested, nestedEdges, 50, workflow.ExecSuccess,
			map[string]string{"c2": "completed", "a": "completed", "b": "skipped", "d": "skipped", "j": "completed"}, nil},
		{"nested false skips the inner condition and its branches", nested, nestedEdges, 0, workflow.ExecSuccess,
			map[string]string{"c2": "skipped", "a": "skipped", "b": "skipped", "d": "completed", "j": "completed"},
			map[string]string{"a": `only reached through skipped branches (node "c2" was skipped)`}},
		{"join of taken and a longer skipped branch",
			[]string{"s:start", "c:condition:inputs.x > 1", "a:t", "b1:t", "b2:t", "j:t"},
			[]string{"s>c", "c>a=true", "c>b1=false", "b1>b2", "a>j", "b2>j"}, 5, workflow.ExecSuccess,
			map[string]string{"a": "completed", "b1": "skipped", "b2": "skipped", "j": "completed"},
			map[string]string{"b2": `node "b1" was skipped`}},
		{"join of two skipped branches is skipped",
			[]string{"s:start", "c:condition:inputs.x", "a:t", "b:t", "j:t", "e:end"},
			[]string{"s>c", "c>a=yes", "c>b=no", "a>j", "b>j", "j>e"}, "other", workflow.ExecSuccess,
			map[string]string{"c": "completed", "a": "skipped", "b": "skipped", "j": "skipped", "e": "skipped"},
			map[string]string{"j": "only reached through skipped branches"}},
		{"a join with an unconditional parent runs",
			[]string{"s:start", "c:condition:inputs.x > 1", "a:t", "j:t"},
			[]string{"s>c", "c>a=true", "a>j", "s>j"}, 0, workflow.ExecSuccess,
			map[string]string{"a": "skipped", "j": "completed"}, nil},
		{"case labels and default",
			[]string{"s:start", "c:condition:inputs.x", "r:t", "g:t", "o:t"},
			[]string{"s>c", "c>r=red", "c>g=green", "c>o=default"}, "blue", workflow.ExecSuccess,
			map[string]string{"r": "skipped", "g": "skipped", "o": "completed"}, nil},
		{"a matching label does not take default",
			[]string{"s:start", "c:condition:inputs.x", "r:t", "o:t"},
			[]string{"s>c", "c>r=red", "c>o=default"}, "red", workflow.ExecSuccess,
			map[string]string{"r": "completed", "o": "skipped"}, nil},
		{"whole-number labels",
			[]string{"s:start", "c:condition:inputs.x + 1", "a:t", "b:t"},
			[]string{"s>c", "c>a=3", "c>b=4"}, 2, workflow.ExecSuccess,
			map[string]string{"a": "completed", "b": "skipped"}, nil},
		{"failure on the taken branch skips the join and fails the run",
			[]string{"s:start", "c:condition:inputs.x > 1", "a:fail", "b:t", "j:t", "e:end"},
			[]string{"s>c", "c>a=true", "c>b=false", "a>j", "b>j", "j>e"}, 5, workflow.ExecError,
			map[string]string{"a": "error", "b": "skipped", "j": "skipped", "e": "skipped"},
			map[string]string{"j": `node "a" did not complete`}},
		{"failure on the branch not taken never runs",
			[]string{"s:start", "c:condition:inputs.x > 1", "a:fail", "b:t", "j:t"},
			[]string{"s>c", "c>a=true", "c>b=false", "a>j", "b>j"}, 0, workflow.ExecSuccess,
			map[string]string{"a": "skipped", "b": "completed", "j": "completed"}, nil},
		{"a condition that cannot choose fails",
			[]string{"s:start", "c:condition:inputs.x", "a:t"},
			[]string{"s>c", "c>a=true"}, []any{1}, workflow.ExecError,
			map[string]string{"c": "error", "a": "skipped"}, nil},
		{"filter stops",
			[]string{"s:start", "f:filter:inputs.x > 1", "a:t", "e:end"},
			[]string{"s>f", "f>a", "a>e"}, 0, workflow.ExecSuccess,
			map[string]string{"f": "completed", "a": "skipped", "e": "skipped"},
			map[string]string{"a": `filter "f" stopped`}},
		{"filter passes",
			[]string{"s:start", "f:filter:inputs.x > 1", "a:t", "e:end"},
			[]string{"s>f", "f>a", "a>e"}, 5, workflow.ExecSuccess,
			map[string]string{"f": "completed", "a": "completed", "e": "completed"}, nil},
	}
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := parse(t, graphDoc(tc.name, tc.nodes, tc.edges))
			x := e.run(t, w, executor.Options{Inputs: map[string]any{"x": tc.x}})
			if x.Status != tc.status {
				t.Errorf("execution %s (%s), want %s", x.Status, x.Error, tc.status)
			}
			for id, st := range tc.want {
				if got := x.NodeStates[id]; got.Status != st {
					t.Errorf("node %s: %s (%s), want %s", id, got.Status, got.Error, st)
				}
			}
			for id, part := range tc.reason {
				if got := x.NodeStates[id].Error; !strings.Contains(got, part) {
					t.Errorf("node %s: reason %q, want it to hold %q", id, got, part)
				}
			}
		})
	}
}

// TestBranchingExample runs examples/05_branching.json with the demo
// model for each audience: one answerer runs, the other is skipped, and
// the transformer after the join shapes the answer of the one that ran.
func TestBranchingExample(t *testing.T) {
	t.Parallel()
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
	for audience, ran := range map[string]string{"child": "kid", " Child ": "kid", "physicist": "expert"} {
		x := e.run(t, example(t, "05_branching.json"), executor.Options{Inputs: map[string]any{"audience": audience}})
		skipped := map[string]string{"kid": "expert", "expert": "kid"}[ran]
		if x.Status != workflow.ExecSuccess || x.NodeStates[ran].Status != workflow.NodeCompleted || x.NodeStates[skipped].Status != workflow.NodeSkipped {
			t.Fatalf("%q: status %s (%s); %s %s, %s %s", audience, x.Status, x.Error, ran, x.NodeStates[ran].Status, skipped, x.NodeStates[skipped].Status)
		}
		out, _ := x.NodeStates["end"].Output.(map[string]any)
		if answer, _ := out["answer"].(string); answer != x.NodeStates[ran].Output || out["audience"] != map[string]string{"kid": "child", "expert": "expert"}[ran] {
			t.Errorf("%q: end output %v", audience, out)
		}
	}
}

// TestActionNodesStayInTheServer runs the branching example in pubsub mode
// with a worker: its agent runs on the worker, its condition and
// transformer in the server, and the skipped agent is placed nowhere.
func TestActionNodesStayInTheServer(t *testing.T) {
	t.Parallel()
	we := newWorkerEnv(t, bustest.Start(t, bustest.Miniredis).URL(), llm.NewDemo(), 5*time.Second)
	we.startWorker(t, "w1", llm.NewDemo(), 5*time.Second)
	we.waitWorkers(t, "w1")
	x := we.run(t, example(t, "05_branching.json"), executor.Options{Mode: workflow.ModePubSub, Inputs: map[string]any{"audience": "physicist"}})
	if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
		t.Fatalf("status %s (%s) placement %s (%s)", x.Status, x.Error, x.Placement, x.PlacementFallbackReason)
	}
	for id, where := range map[string]string{"expert": "w1", "route": "", "shape": "", "kid": ""} {
		if got := x.NodeStates[id].Worker; got != where {
			t.Errorf("node %s ran on %q, want %q", id, got, where)
		}
	}
	if x.NodeStates["kid"].Status != workflow.NodeSkipped || x.NodeStates["shape"].Status != workflow.NodeCompleted {
		t.Errorf("kid %s, shape %s", x.NodeStates["kid"].Status, x.NodeStates["shape"].Status)
	}
}

// TestResumeEvaluatesConditionsAgain: a resumed execution takes over the
// outputs of its completed nodes but runs its conditions again, so the
// branch not taken stays skipped (an output alone does not say which
// branch was taken).
func TestResumeEvaluatesConditionsAgain(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "not yet", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, `{"ok": true}`)
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, llm.NewDemo(), nil, executor.Config{HTTP: loopbackOK})
	w := parse(t, `{"name":"resume","nodes":[{"id":"s","type":"start"},
		{"id":"c","type":"condition","config":{"condition":"inputs.x > 1"}},
		{"id":"yes","type":"transformer","config":{"template":"yes"}},
		{"id":"no","type":"transformer","config":{"template":"no"}},
		{"id":"call","type":"http","config":{"url":"`+srv.URL+`"}}],
		"edges":[{"from":"s","to":"c"},{"from":"c","to":"yes","when":"true"},{"from":"c","to":"no","when":"false"},{"from":"yes","to":"call"}],
		"variables":[{"name":"x","value":5}]}`)
	failed := e.run(t, w, executor.Options{})
	if failed.Status != workflow.ExecError || failed.NodeStates["no"].Status != workflow.NodeSkipped {
		t.Fatalf("first run: %s (%s), no %s", failed.Status, failed.Error, failed.NodeStates["no"].Status)
	}
	x := e.run(t, w, executor.Options{Resume: failed})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("resumed: %s (%s)", x.Status, x.Error)
	}
	for id, st := range map[string]string{"c": "completed", "yes": "completed", "no": "skipped", "call": "completed"} {
		if got := x.NodeStates[id].Status; got != st {
			t.Errorf("resumed node %s: %s (%s), want %s", id, got, x.NodeStates[id].Error, st)
		}
	}
	reused := map[string]bool{}
	for _, l := range x.Logs {
		if strings.Contains(l.Message, "reused its output") {
			reused[l.NodeID] = true
		}
	}
	if !reused["yes"] || reused["c"] {
		t.Errorf("reused %v: want yes taken over and the condition run again", reused)
	}
}
