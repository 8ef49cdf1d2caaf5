package llm

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DemoModel is the model name the Demo client reports.
const DemoModel = "demo"

// demoPrefix starts every demo reply, so nobody mistakes canned text for a model's work.
const demoPrefix = "[demo model] "

// demoHint ends the canned replies. It must contain no quote and no closing bracket: the
// echoed text before it holds no complete CALL statement, and the hint must not be able to
// complete one (FuzzDemoScan checks this).
const demoHint = "configure OPENAI_API_KEY or OPENAI_BASE_URL for a real model."

// demoQuoteLimit is how many characters of a task prompt the demo reply quotes.
const demoQuoteLimit = 200

// Demo is the built-in offline model, used when no API key or base URL is configured. It makes
// a workflow run end to end with no network: it is deterministic (the same request always gets
// the same reply), honest (every reply starts with "[demo model] "), and plays its part in node
// communication. Looking at the last user message:
//
//   - with Request.Tools, any purpose but PurposeFollowUp, when the message holds CALL
//     statements of the tools offered: native tool calls, one per statement and in order, the
//     statement's arguments filling the tool's parameters (see demoToolCalls);
//   - PurposeFollowUp after tool calls: a final answer naming the node that lists the tool
//     results, "CALL:" defused;
//   - PurposeFollowUp: a final answer naming the node that echoes the call results, with
//     "CALL:" defused to "CALL -" so the answer cannot trigger another round of calls;
//   - any other purpose, when the message holds complete CALL statements: the statements, one
//     per line, verbatim and in order, so the executor carries them out;
//   - PurposeAnswer: a canned answer that repeats the question verbatim;
//   - otherwise (PurposeTask): a canned reply quoting the first 200 characters of the prompt.
//
// Usage counts words as tokens, an estimate (it has no tokenizer), so it is marked Estimated.
// With Request.OnDelta the reply is delivered word by word.
//
// Set Latency before the first Chat and do not change it afterwards; with that, a Demo is safe
// for concurrent use.
type Demo struct {
	// Latency is slept before each reply, or until the context ends. It lets benchmarks and
	// tests give the demo model the shape of a real one.
	Latency time.Duration
	// WordDelay is slept between the words of a streamed reply, so a person
	// watching the dashboard sees the text arrive as from a real model.
	WordDelay time.Duration
}

// NewDemo returns a demo model with no latency.
func NewDemo() *Demo { return &Demo{} }

// Info reports the demo provider. Safe for concurrent use.
func (d *Demo) Info() Info { return Info{Provider: ProviderDemo, Model: DemoModel} }

// Chat returns the demo reply for r (see Demo). It fails only when r has no messages
// (ErrNoMessages, wrapped in *Error) or ctx ends before or during the reply (the error wraps
// ctx's error). Safe for concurrent use.
func (d *Demo) Chat(ctx context.Context, r Request) (Response, error) {
	if len(r.Messages) == 0 {
		return Response{}, wrapForAgent(r.Agent, &Error{Err: ErrNoMessages})
	}
	if err := ctx.Err(); err != nil {
		return Response{}, wrapForAgent(r.Agent, context.Cause(ctx))
	}
	if d.Latency > 0 {
		if err := sleepCtx(ctx, d.Latency); err != nil {
			return Response{}, wrapForAgent(r.Agent, err)
		}
	}
	content, calls := demoReply(r), []ToolCall(nil)
	if len(r.Tools) > 0 && r.Purpose != PurposeFollowUp {
		if calls = demoToolCalls(lastUserMessage(r.Messages), r.Tools); calls != nil {
			content = demoPrefix + defuseCalls(describeAgent(r.Agent, r.AgentName)) + " calls its tools."
		}
	}
	if r.OnDelta != nil {
		for _, chunk := range wordChunks(content) {
			if ctx.Err() != nil {
				return Response{}, wrapForAgent(r.Agent, context.Cause(ctx))
			}
			r.OnDelta(chunk)
			if d.WordDelay > 0 {
				if err := sleepCtx(ctx, d.WordDelay); err != nil {
					return Response{}, wrapForAgent(r.Agent, err)
				}
			}
		}
	}
	prompt := 0
	for _, m := range r.Messages {
		prompt += len(strings.Fields(m.Content))
	}
	completion := len(strings.Fields(content))
	for _, c := range calls {
		completion += len(strings.Fields(c.Arguments))
	}
	return Response{
		Content:   content,
		ToolCalls: calls,
		Model:     DemoModel,
		Usage:     Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion, Estimated: true},
		Attempts:  1,
	}, nil
}

// demoReply builds the deterministic reply for r.
func demoReply(r Request) string {
	who := defuseCalls(describeAgent(r.Agent, r.AgentName))
	last := lastUserMessage(r.Messages)
	if res := toolResults(r.Messages); r.Purpose == PurposeFollowUp && res != "" {
		return demoPrefix + "Final answer from " + who + ", using the results of my tool calls:\n" + defuseCalls(res)
	}
	if r.Purpose == PurposeFollowUp {
		return demoPrefix + "Final answer from " + who + ", using the results of my calls:\n" + defuseCalls(last)
	}
	if calls := scanCalls(last); len(calls) > 0 {
		return demoPrefix + who + " will make these calls:\n" + strings.Join(calls, "\n")
	}
	if r.Purpose == PurposeAnswer {
		return demoPrefix + who + ` answering "` + last + `": this is a canned demo answer; ` + demoHint
	}
	return demoPrefix + who + ` would now work on "` + truncateRunes(last, demoQuoteLimit) +
		`": this is a canned demo reply; ` + demoHint
}

// defuseCalls rewrites "CALL:" so echoed text cannot be parsed as new CALL statements.
func defuseCalls(s string) string { return strings.ReplaceAll(s, callMarker, "CALL -") }

// lastUserMessage returns the content of the last user message, or of the last message when no
// message has the user role.
func lastUserMessage(msgs []Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == RoleUser {
			return msgs[i].Content
		}
	}
	return msgs[len(msgs)-1].Content
}

// truncateRunes cuts s to n characters (never inside a UTF-8 sequence), marking a cut with "…".
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

// wordChunks splits s into pieces of one word plus the whitespace after it (leading whitespace
// is a piece of its own), so the pieces concatenate back to exactly s.
func wordChunks(s string) []string {
	var chunks []string
	start, inSpace := 0, false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if !space && inSpace && i > start {
			chunks = append(chunks, s[start:i])
			start = i
		}
		inSpace = space
	}
	if start < len(s) {
		chunks = append(chunks, s[start:])
	}
	return chunks
}
