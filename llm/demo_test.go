package llm_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/llm"
)

const demoHint = "configure OPENAI_API_KEY or OPENAI_BASE_URL for a real model."

func demoRequest(agent, name string, purpose llm.Purpose, last string) llm.Request {
	return llm.Request{
		Agent:     agent,
		AgentName: name,
		Purpose:   purpose,
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "You are " + name + "."},
			{Role: llm.RoleUser, Content: "an earlier turn"},
			{Role: llm.RoleAssistant, Content: "an earlier reply"},
			{Role: llm.RoleUser, Content: last},
		},
	}
}

func demoChat(t *testing.T, r llm.Request) llm.Response {
	t.Helper()
	res, err := llm.NewDemo().Chat(t.Context(), r)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if !strings.HasPrefix(res.Content, "[demo model] ") {
		t.Errorf("reply %q does not start with the demo marker", res.Content)
	}
	if res.Model != llm.DemoModel || res.Attempts != 1 {
		t.Errorf("model=%q attempts=%d, want demo, 1", res.Model, res.Attempts)
	}
	return res
}

func TestDemoReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		req     llm.Request
		want    string
		wantSub []string // when want is empty: substrings the reply must contain
	}{
		{
			name: "task with a call",
			req:  demoRequest("student", "Student", llm.PurposeTask, "Learn about plants. Ask using: CALL: ask_node('teacher', 'Can you explain photosynthesis?')"),
			want: "[demo model] Student (student) will make these calls:\nCALL: ask_node('teacher', 'Can you explain photosynthesis?')",
		},
		{
			name: "calls mid-sentence, in text order",
			req: demoRequest("loader", "Loader", llm.PurposeTask,
				"If broken, ask using: CALL: ask_node('transformer', 'Found issue: [x]. Can you fix this?'). Otherwise, broadcast success using: CALL: broadcast_message('Data loaded', ['ai-processor']). Then stop."),
			want: "[demo model] Loader (loader) will make these calls:\n" +
				"CALL: ask_node('transformer', 'Found issue: [x]. Can you fix this?')\n" +
				"CALL: broadcast_message('Data loaded', ['ai-processor'])",
		},
		{
			name: "escaped and mixed quotes",
			req: demoRequest("student", "Student", llm.PurposeTask,
				`First CALL: ask_node("teacher", "What's \"chlorophyll\" (really)?") then CALL: set_shared_context('quote', 'He said "hi" and it\'s fine') done`),
			want: "[demo model] Student (student) will make these calls:\n" +
				`CALL: ask_node("teacher", "What's \"chlorophyll\" (really)?")` + "\n" +
				`CALL: set_shared_context('quote', 'He said "hi" and it\'s fine')`,
		},
		{
			name: "unterminated call skipped, later call kept",
			req:  demoRequest("a", "", llm.PurposeTask, "CALL: ask_node('b', 'never closed. Later: CALL: get_shared_context('topic')"),
			want: "[demo model] a will make these calls:\nCALL: get_shared_context('topic')",
		},
		{
			name: "answer repeats the question",
			req:  demoRequest("teacher", "Teacher", llm.PurposeAnswer, "Can you explain photosynthesis?"),
			want: `[demo model] Teacher (teacher) answering "Can you explain photosynthesis?": this is a canned demo answer; ` + demoHint,
		},
		{
			name: "answer with a call makes the call",
			req:  demoRequest("teacher", "Teacher", llm.PurposeAnswer, "Please CALL: ask_node('expert', 'Why green?')"),
			want: "[demo model] Teacher (teacher) will make these calls:\nCALL: ask_node('expert', 'Why green?')",
		},
		{
			name: "follow-up echoes results and defuses calls",
			req: demoRequest("student", "Student", llm.PurposeFollowUp,
				"ask_node('teacher') -> Plants use light.\nteacher said: CALL: ask_node('student', 'loop?')"),
			want: "[demo model] Final answer from Student (student), using the results of my calls:\n" +
				"ask_node('teacher') -> Plants use light.\nteacher said: CALL - ask_node('student', 'loop?')",
		},
		{
			name: "task without calls quotes the prompt",
			req:  demoRequest("writer", "Writer", llm.PurposeTask, "Write an article about {{topic}}."),
			want: `[demo model] Writer (writer) would now work on "Write an article about {{topic}}.": this is a canned demo reply; ` + demoHint,
		},
		{
			name:    "long task prompt is cut at 200 characters",
			req:     demoRequest("writer", "Writer", llm.PurposeTask, strings.Repeat("é", 199)+"XY"+strings.Repeat("z", 50)),
			wantSub: []string{"Writer (writer)", `"` + strings.Repeat("é", 199) + "X…" + `"`},
		},
		{
			name: "empty purpose is a task",
			req:  llm.Request{Agent: "n1", Messages: []llm.Message{{Role: llm.RoleUser, Content: "go"}}},
			want: `[demo model] n1 would now work on "go": this is a canned demo reply; ` + demoHint,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := demoChat(t, tt.req)
			if tt.want != "" && res.Content != tt.want {
				t.Errorf("reply:\n%s\nwant:\n%s", res.Content, tt.want)
			}
			for _, sub := range tt.wantSub {
				if !strings.Contains(res.Content, sub) {
					t.Errorf("reply %q does not contain %q", res.Content, sub)
				}
			}
			if tt.req.Purpose == llm.PurposeFollowUp && strings.Contains(res.Content, "CALL:") {
				t.Errorf("follow-up reply %q contains CALL:", res.Content)
			}
		})
	}
}

func TestDemoIsDeterministic(t *testing.T) {
	t.Parallel()
	for _, p := range []llm.Purpose{llm.PurposeTask, llm.PurposeAnswer, llm.PurposeFollowUp} {
		r := demoRequest("student", "Student", p, "Mixed: CALL: ask_node('teacher', \"it's\") and more")
		a, b := demoChat(t, r), demoChat(t, r)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("purpose %s: replies differ:\n%+v\n%+v", p, a, b)
		}
	}
}

func TestDemoUsageCountsWords(t *testing.T) {
	t.Parallel()
	r := llm.Request{Agent: "t", Purpose: llm.PurposeAnswer, Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "one two three"},
		{Role: llm.RoleUser, Content: "four five"},
	}}
	res := demoChat(t, r)
	words := len(strings.Fields(res.Content))
	if res.Usage != (llm.Usage{PromptTokens: 5, CompletionTokens: words, TotalTokens: 5 + words, Estimated: true}) {
		t.Errorf("usage = %+v, want prompt 5, completion %d, estimated", res.Usage, words)
	}
}

func TestDemoStreaming(t *testing.T) {
	t.Parallel()
	r := demoRequest("teacher", "Teacher", llm.PurposeAnswer, "Why  is the sky\nblue?")
	var deltas []string
	r.OnDelta = func(d string) { deltas = append(deltas, d) }
	res := demoChat(t, r)
	if len(deltas) < 5 {
		t.Errorf("got %d deltas, want word by word", len(deltas))
	}
	if got := strings.Join(deltas, ""); got != res.Content {
		t.Errorf("deltas join to %q, want %q", got, res.Content)
	}
	for _, d := range deltas {
		if d == "" || strings.TrimSpace(d) != strings.Fields(d)[0] {
			t.Errorf("delta %q is not one word with its trailing space", d)
		}
	}
}

func TestDemoRespectsContext(t *testing.T) {
	t.Parallel()
	d := llm.NewDemo()
	d.Latency = time.Hour
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := d.Chat(ctx, demoRequest("a", "A", llm.PurposeTask, "hi"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want context.DeadlineExceeded", err)
	}

	cancelled, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := llm.NewDemo().Chat(cancelled, demoRequest("a", "A", llm.PurposeTask, "hi")); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if _, err := llm.NewDemo().Chat(t.Context(), llm.Request{}); !errors.Is(err, llm.ErrNoMessages) {
		t.Errorf("error = %v, want ErrNoMessages", err)
	}
}

func TestDemoConcurrentUse(t *testing.T) {
	t.Parallel()
	d := llm.NewDemo()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			r := demoRequest("student", "Student", llm.PurposeTask, "CALL: ask_node('teacher', 'x')")
			r.OnDelta = func(string) {}
			if _, err := d.Chat(t.Context(), r); err != nil {
				t.Errorf("Chat: %v", err)
			}
		})
	}
	wg.Wait()
	if info := d.Info(); info.Provider != llm.ProviderDemo || info.Model != llm.DemoModel || info.BaseURL != "" {
		t.Errorf("Info = %+v", info)
	}
}
