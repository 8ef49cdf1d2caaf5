package executor

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// testLogger writes what the code under test logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recordingTeam is the agent's team as a test sees it: it answers every ask with a fixed text
// and keeps what it was asked.
type recordingTeam struct {
	mu    sync.Mutex
	asked []string
}

func (r *recordingTeam) ask(_ context.Context, from *workflow.Node, target, question string, _ map[string]any, chain []string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, from.ID+"→"+target+": "+question+" "+strings.Join(chain, ","))
	return "librarian (librarian) answered: 1871"
}
func (r *recordingTeam) broadcast(context.Context, *workflow.Node, string, []string) string {
	return ""
}
func (r *recordingTeam) setShared(string, string, any)        {}
func (r *recordingTeam) getShared(string) (any, bool)         { return nil, false }
func (r *recordingTeam) comm(workflow.CommEntry)              {}
func (r *recordingTeam) systemPrompt(n *workflow.Node) string { return "You are " + n.ID + "." }

// TestAgentAnswersWithoutAnExecution: an agent is a value that answers a question with only its
// node config, a model client, a guard handle, an emit func and its team; no execution exists.
func TestAgentAnswersWithoutAnExecution(t *testing.T) {
	t.Parallel()
	w, err := workflow.Parse([]byte(`{"name":"a","nodes":[
		{"id":"student","type":"ai-processor","config":{"name":"Student"}},
		{"id":"expert","type":"ai-processor","config":{"name":"Expert","model":"m1","can_communicate":true}},
		{"id":"librarian","type":"ai-processor","config":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	srv := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		last := req.Messages[len(req.Messages)-1].Content
		if strings.HasPrefix(last, "Results of your calls") {
			return llmtest.Reply{Content: "It opened in 1871.", Usage: &openai.Usage{PromptTokens: 5, CompletionTokens: 5, TotalTokens: 10}}
		}
		if !strings.Contains(req.Messages[0].Content, "Student (student) asks you the question") || req.Model != "m1" {
			return llmtest.Reply{Content: "wrong request: " + req.Messages[0].Content}
		}
		return llmtest.Reply{Content: "CALL: ask_node('librarian', 'When did it open?')", Usage: &openai.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}}
	})
	model := llm.NewOpenAI(llm.Config{BaseURL: srv.URL(), APIKey: "test", Timeout: 10 * time.Second, MaxRetries: -1}, testLogger(t))
	g := w.Graph()
	i := g.Index["expert"]
	var mu sync.Mutex
	var events []agentEvent
	team := &recordingTeam{}
	guard := newGuard(Limits{}.withDefaults())
	a := agent{node: &w.Nodes[i], cfg: &g.AI[i], wf: w, graph: g, model: model, guard: guard,
		emit: func(ev agentEvent) { mu.Lock(); events = append(events, ev); mu.Unlock() },
		team: team, maxRounds: 3}

	answer, err := a.answer(t.Context(), askRequest{from: "student", to: "expert", question: "When did the library open?", chain: []string{"student"}})
	if err != nil || answer != "It opened in 1871." {
		t.Fatalf("answer = %q, %v", answer, err)
	}
	if len(team.asked) != 1 || team.asked[0] != "expert→librarian: When did it open? student,expert" {
		t.Errorf("the agent's call reached its team as %q", team.asked)
	}
	var tokens, calls int
	for _, ev := range events {
		if ev.usage != nil && ev.node == "expert" {
			tokens += ev.usage.usage.TotalTokens
			calls++
		}
	}
	if calls != 2 || tokens != 17 {
		t.Errorf("emitted %d model calls and %d tokens, want 2 and 17: %+v", calls, tokens, events)
	}
	if total, _ := guard.spend(t.Context(), 0); total != 17 || guard.llmCalls != 2 {
		t.Errorf("the guard counted %d tokens and %d calls, want 17 and 2", total, guard.llmCalls)
	}
}
