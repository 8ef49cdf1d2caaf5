package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// broadcastTeamDoc: the announcer broadcasts, then the asker asks the expert ten
// questions in one reply, then the expert does its own part. maxCalls is
// the execution's max_llm_calls.
func broadcastTeamDoc(maxCalls int) string {
	return fmt.Sprintf(`{"name": "team on workers", "metadata": {"communication_mode": "pubsub", "max_asks_per_pair": 50, "max_llm_calls": %d},
	"nodes": [
		{"id": "start", "type": "start"},
		{"id": "announcer", "type": "ai-processor", "config": {"name": "Announcer", "system_prompt": "ROLE announcer", "prompt": "Announce the deadline.", "can_communicate": true}},
		{"id": "asker", "type": "ai-processor", "config": {"name": "Asker", "system_prompt": "ROLE asker", "prompt": "Ask the expert.", "can_communicate": true}},
		{"id": "expert", "type": "ai-processor", "config": {"name": "Expert", "description": "knows dates", "system_prompt": "ROLE expert", "prompt": "Sum up.", "can_communicate": true}},
		{"id": "end", "type": "end"}],
	"edges": [{"from": "start", "to": "announcer"}, {"from": "announcer", "to": "asker"},
		{"from": "asker", "to": "expert"}, {"from": "expert", "to": "end"}]}`, maxCalls)
}

// broadcastTeamModel answers teamDoc's agents, the asker asking the expert
// questions questions, and records every system prompt it is sent.
func broadcastTeamModel(t *testing.T, questions int) (executor.LLM, func() []string) {
	var mu sync.Mutex
	var systems []string
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		sys, user := req.Messages[0].Content, req.Messages[len(req.Messages)-1].Content
		mu.Lock()
		systems = append(systems, sys)
		mu.Unlock()
		switch {
		case strings.HasPrefix(user, "Results of your calls"):
			return llmtest.Reply{Content: "done"}
		case strings.Contains(sys, "asks you the question"):
			return llmtest.Reply{Content: "answer to " + user}
		case strings.HasPrefix(sys, "ROLE announcer"):
			return llmtest.Reply{Content: "CALL: broadcast_message('the deadline is Friday')"}
		case strings.HasPrefix(sys, "ROLE asker"):
			var b strings.Builder
			for i := range questions {
				fmt.Fprintf(&b, "CALL: ask_node('expert', 'Question %d: when is it due?')\n", i+1)
			}
			return llmtest.Reply{Content: b.String()}
		}
		return llmtest.Reply{Content: "summed up"}
	})
	return model, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(systems)
		slices.Sort(out)
		return out
	}
}

// An agent on a worker builds its system prompt there, with the
// broadcasts the server sends it: every prompt the model gets, its own
// runs' and its answers', is the one it gets with the agents in the
// server, and it asks the server for none. The worker asks the server for
// model calls a few at a time, not for each: the expert's ten answers and
// its own run take two admit_call queries.
func TestWorkerPromptsAndCallGrants(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		local, localSystems := broadcastTeamModel(t, 10)
		remote, remoteSystems := broadcastTeamModel(t, 10)
		we := newWorkerEnv(t, url, local, 5*time.Second)
		we.startWorker(t, "w1", remote, 5*time.Second)
		we.startWorker(t, "w2", remote, 5*time.Second)
		we.startWorker(t, "w3", remote, 5*time.Second)
		we.waitWorkers(t, "w1", "w2", "w3")
		admits := countQueries(t, we, "admit_call")
		prompts := countQueries(t, we, "system_prompt")

		w := parse(t, broadcastTeamDoc(200))
		x := we.run(t, w, executor.Options{})
		if x.Status != workflow.ExecSuccess || x.Placement != workflow.PlacementWorkers {
			t.Fatalf("status %s placement %s (%s) error %q\nlogs %+v", x.Status, x.Placement, x.PlacementFallbackReason, x.Error, x.Logs)
		}
		for _, id := range []string{"announcer", "asker", "expert"} {
			if x.NodeStates[id].Worker == "" {
				t.Fatalf("node %s ran in the server", id)
			}
		}
		calls := 0
		for _, s := range x.NodeStates {
			calls += s.Calls
		}
		if calls != 15 { // announcer 2, asker 2, expert 10 answers and its own run
			t.Fatalf("%d model calls, want 15", calls)
		}
		// One grant each for the announcer's and the asker's workers, two
		// for the expert's eleven calls.
		if n := admits(); n != 4 {
			t.Errorf("%d admit_call queries for 15 model calls on three workers, want 4", n)
		}
		if n := prompts(); n != 0 {
			t.Errorf("%d system_prompt queries, want none", n)
		}
		answers := 0
		for _, s := range remoteSystems() {
			if strings.Contains(s, "asks you the question") {
				answers++
				if !strings.Contains(s, "Messages broadcast to the team so far:\n- from announcer: the deadline is Friday") {
					t.Fatalf("an answer on a worker without the broadcast in its system prompt:\n%s", s)
				}
			}
		}
		if answers != 10 {
			t.Fatalf("%d answers on the workers, want 10", answers)
		}

		in := we.run(t, w, executor.Options{Placement: workflow.PlacementLocal})
		if in.Status != workflow.ExecSuccess || in.Placement != workflow.PlacementLocal {
			t.Fatalf("in the server: status %s placement %s error %q", in.Status, in.Placement, in.Error)
		}
		if got, want := remoteSystems(), localSystems(); !slices.Equal(got, want) {
			t.Errorf("system prompts on workers:\n%q\nin the server:\n%q", got, want)
		}
		we.quiet(t, "w1", "w2", "w3")
	})
}

// Near max_llm_calls a worker's calls are admitted one at a time, and a
// worker hands back the calls granted ahead that a node's run did not
// make, so the limit refuses the same calls on workers as in the server:
// below the point where calls are granted ahead (9), and above it (33: the
// announcer's worker is granted 8 calls and makes 2; were the other 6 kept
// there, the asker and the expert on the other workers would be refused
// at 27).
func TestWorkerCallLimitIsExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ limit, questions int }{{9, 10}, {33, 40}} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			t.Parallel()
			url := bustest.Start(t, bustest.Miniredis).URL()
			local, _ := broadcastTeamModel(t, tc.questions)
			remote, _ := broadcastTeamModel(t, tc.questions)
			we := newWorkerEnv(t, url, local, 5*time.Second)
			we.startWorker(t, "w1", remote, 5*time.Second)
			we.startWorker(t, "w2", remote, 5*time.Second)
			we.startWorker(t, "w3", remote, 5*time.Second)
			we.waitWorkers(t, "w1", "w2", "w3")
			w := parse(t, broadcastTeamDoc(tc.limit))
			shape := func(x *workflow.Execution) (string, int) {
				var b strings.Builder
				total := 0
				for _, id := range []string{"announcer", "asker", "expert"} {
					s := x.NodeStates[id]
					fmt.Fprintf(&b, "%s %s; ", id, s.Status)
					total += s.Calls
				}
				failed := 0
				for _, c := range x.CommunicationLog {
					if c.Type == workflow.CommResponse && c.Metadata["success"] == false {
						failed++
					}
				}
				fmt.Fprintf(&b, "%d asks without an answer", failed)
				return b.String(), total
			}
			on := we.run(t, w, executor.Options{})
			in := we.run(t, w, executor.Options{Placement: workflow.PlacementLocal})
			if on.Placement != workflow.PlacementWorkers {
				t.Fatalf("placement %s (%s)", on.Placement, on.PlacementFallbackReason)
			}
			for _, id := range []string{"announcer", "asker"} {
				if on.NodeStates[id].Worker == "" {
					t.Fatalf("node %s ran in the server", id)
				}
			}
			a, n := shape(on)
			b, m := shape(in)
			// The asker fails when its last call is refused, and the
			// execution ends with it: an answer admitted a moment before
			// may be cancelled before its usage is recorded, in either
			// place, so a run may count one call under the limit.
			if a != b || n > tc.limit || n < tc.limit-1 || m > tc.limit || m < tc.limit-1 {
				t.Fatalf("max_llm_calls %d\non workers (%d calls): %s\nin the server (%d calls): %s", tc.limit, n, a, m, b)
			}
			we.quiet(t, "w1", "w2", "w3")
		})
	}
}

// countQueries counts the queries asking op that reach any server's
// channel from now on; the count it returns is complete up to its call.
func countQueries(t *testing.T, we *workerEnv, op string) func() int {
	t.Helper()
	ctx := t.Context()
	ps := we.rdb.PSubscribe(ctx, bus.Channel("server-*"))
	t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	return func() int {
		t.Helper()
		// A marker published now arrives after every query published
		// before it.
		marker := bus.Channel("server-marker-" + op)
		if err := we.rdb.Publish(ctx, marker, "marker").Err(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			m, err := ps.ReceiveMessage(rctx)
			cancel()
			if err != nil {
				t.Fatalf("reading the servers' channels: %v", err)
			}
			if m.Channel == marker {
				return n
			}
			var msg bus.Message
			if err := json.Unmarshal([]byte(m.Payload), &msg); err == nil && msg.IsQuery() && msg.Question() == op {
				n++
			}
		}
	}
}
