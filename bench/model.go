package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/llm"
)

// benchModel is the model of every in-process figure. It answers at once
// (latency 0: the overhead figures) or after a fixed latency (the overlap
// figure), with canned replies shaped so that the executor does all its usual
// work:
//
//   - a task whose prompt holds CALL statements gets the prompt back, so the
//     node makes those calls (the Q&A student asks the teacher);
//   - any other task gets "Done.";
//   - a question gets a one-line answer; a follow-up turn a final answer
//     without calls.
//
// It streams its reply as one delta, as a streaming model's shortest reply
// would. When rec is set, the arrival time of every request of rec's purpose
// is recorded, which is how the bench times asks and nodes from inside the
// engine. It is safe for concurrent use.
type benchModel struct {
	latency time.Duration
	rec     *arrivals
}

const (
	answerText   = "An answer, in one sentence."
	followUpText = "Final answer, using the results of my calls."
	doneText     = "Done."
)

func (m *benchModel) Chat(ctx context.Context, r llm.Request) (llm.Response, error) {
	if m.latency > 0 {
		t := time.NewTimer(m.latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return llm.Response{}, context.Cause(ctx)
		}
	}
	if m.rec != nil {
		m.rec.add(r.Purpose, r.Agent)
	}
	var content string
	switch r.Purpose {
	case llm.PurposeFollowUp:
		content = followUpText
	case llm.PurposeAnswer:
		content = answerText
	default:
		last := r.Messages[len(r.Messages)-1].Content
		if strings.Contains(last, "CALL:") {
			content = last
		} else {
			content = doneText
		}
	}
	if r.OnDelta != nil {
		r.OnDelta(content)
	}
	return llm.Response{Content: content, Model: "bench", Usage: llm.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}}, nil
}

// arrivals records when requests of one purpose reach the model.
type arrivals struct {
	purpose llm.Purpose

	mu    sync.Mutex
	times []time.Time
}

func (a *arrivals) add(p llm.Purpose, _ string) {
	if p != a.purpose {
		return
	}
	now := time.Now()
	a.mu.Lock()
	a.times = append(a.times, now)
	a.mu.Unlock()
}

// take returns the recorded times and forgets them.
func (a *arrivals) take() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.times
	a.times = nil
	return t
}
