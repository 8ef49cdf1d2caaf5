// Package llm is Switchboard's chat-model layer: the Client interface the executor talks to, an
// OpenAI-compatible implementation on github.com/sashabaranov/go-openai (OpenAI, Ollama,
// LM Studio, vLLM, ...) with per-attempt timeouts and retries, and Demo, a deterministic
// offline model that lets the whole product run with no configuration at all.
//
// The package imports no other internal package of the project, so it can be reused by the
// coordinator and by future worker processes alike.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Message roles, as the OpenAI chat-completions protocol spells them.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	// RoleTool is a tool's result, answering the tool call its ToolCallID names.
	RoleTool = "tool"
)

// Message is one turn of a chat. It is a plain value, safe to copy and share as long as
// nobody changes ToolCalls in place.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ToolCalls are the tool calls of an assistant message (its Content may then be empty).
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID names the call a RoleTool message answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// Tool is a function offered to the model: a name, what it does, and a JSON schema (an
// object schema) for its arguments.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// ToolCall is the model asking for one tool to be called. Arguments is the JSON text the model
// wrote, unchecked: it may be malformed, and the caller must say so to the model.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolCaller is implemented by clients that carry Request.Tools to the model and return its
// tool calls. CallsTools reports whether tools are worth offering to the model named (""
// for the client's default): false once the provider refused them for it. A client that
// does not implement it (or returns false) ignores Tools.
type ToolCaller interface {
	CallsTools(model string) bool
}

// ErrToolsRefused is wrapped by the error of a request with tools that the provider rejected
// because of the tools (a 4xx whose message names them), before any tool call was made in the
// conversation: the model or server does not do native tool calling, and the same request
// without tools may succeed.
var ErrToolsRefused = errors.New("the provider refused the tools")

// Purpose says why a request is made. Real models ignore it; the Demo model uses it to produce
// a reply that keeps a workflow moving (calls, answers, final answers).
type Purpose string

// Purposes of a request.
const (
	// PurposeTask is a node running its own prompt.
	PurposeTask Purpose = "task"
	// PurposeAnswer is a node answering another node's question; the last user message is the
	// question.
	PurposeAnswer Purpose = "answer"
	// PurposeFollowUp is a turn carrying the results of the node's CALL statements; the last
	// user message holds them.
	PurposeFollowUp Purpose = "followup"
)

// Request is one chat completion request. A Request is read, never modified, by a Client, so
// the same value may be passed to several concurrent calls as long as OnDelta is safe for that.
type Request struct {
	// Model names the model; empty means the client's default model.
	Model string
	// Messages is the conversation; it must not be empty.
	Messages []Message
	// Temperature is the sampling temperature; nil means the provider default. A pointer so
	// that an explicit 0 (deterministic output) can be told apart from "not set".
	Temperature *float64
	// MaxTokens bounds the completion length; 0 means the provider default.
	MaxTokens int
	// Agent is the id of the node making the call; it appears in logs and errors and is used
	// by the Demo model.
	Agent string
	// AgentName is the node's display name, used by the Demo model.
	AgentName string
	// Purpose says why the request is made (see Purpose).
	Purpose Purpose
	// Tools are offered to the model; the reply may then carry ToolCalls instead of, or
	// besides, Content.
	Tools []Tool
	// OnDelta, when non-nil, makes the client stream the completion and call OnDelta with each
	// content delta in order, from the goroutine that called Chat. The concatenation of the
	// deltas equals Response.Content. OnDelta must not block for long: it holds up the stream.
	OnDelta func(delta string)
}

// Usage counts tokens of one completion. A plain value, safe to copy and share.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	// Estimated says the counts are an estimate made here, not counts the model server
	// reported: it reported none (see the implementations).
	Estimated bool `json:"estimated,omitempty"`
}

// Response is the result of a successful chat completion. A plain value, safe to copy and
// share.
type Response struct {
	// Content is the assistant's reply.
	Content string
	// ToolCalls are the tools the model asks to be called, in its order; empty when it asked
	// for none. A streamed reply's pieces are assembled here.
	ToolCalls []ToolCall
	// Model is the model that answered, as reported by the provider.
	Model string
	// Usage is the token usage of the request.
	Usage Usage
	// Attempts is how many attempts it took (1 when the first one succeeded).
	Attempts int
}

// Provider names reported in Info.
const (
	ProviderDemo             = "demo"
	ProviderOpenAICompatible = "openai-compatible"
)

// Info describes a client for logs and the settings page. It never contains the API key, so
// it is safe to log and to show to users.
type Info struct {
	// Provider is ProviderDemo or ProviderOpenAICompatible.
	Provider string `json:"provider"`
	// BaseURL is the API base URL (with any user:password redacted); empty for the demo model.
	BaseURL string `json:"base_url,omitempty"`
	// Model is the default model.
	Model string `json:"model"`
}

// Client is a chat model. Implementations in this package are safe for concurrent use.
//
// Chat returns an error when the request is invalid, when ctx ends, or when the provider
// fails; provider failures are (wrapped) *Error values, so callers can use errors.As to tell a
// transient outage (Error.Retryable) from a problem with the request itself.
type Client interface {
	Chat(ctx context.Context, r Request) (Response, error)
	Info() Info
}

// ErrNoChoices is wrapped by the error returned when a provider answers successfully but with
// no choices: an empty reply is a failure, not an empty success.
var ErrNoChoices = errors.New("model returned no choices")

// ErrNoMessages is wrapped by the error returned for a Request without messages.
var ErrNoMessages = errors.New("request has no messages")

// Error is a failed chat completion after all attempts. It is returned wrapped with context
// (e.g. `chat completion for node "student": ...`); use errors.As to get it.
//
// Retryable reports that the last failure was of a transient kind (HTTP 429, a 5xx status, a
// network error or an attempt timeout): the provider is unavailable right now and the same
// request may succeed later. When Retryable is false the request itself is at fault (400, 401,
// 404, a malformed or empty reply, ...) or the caller's context ended, and repeating the
// request as it is will not help.
//
// An *Error is immutable once returned and safe to share between goroutines.
type Error struct {
	// Status is the HTTP status of the last attempt's response, 0 when no response arrived
	// (network error, timeout, cancellation).
	Status int
	// Retryable reports a transient failure (see the type's documentation).
	Retryable bool
	// Attempts is how many attempts were made.
	Attempts int
	// Err is the underlying error of the last attempt.
	Err error
}

// Error describes the failure with its status, kind and number of attempts.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("llm")
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Retryable {
		b.WriteString(" (unavailable, retryable)")
	}
	if e.Attempts > 0 {
		plural := "s"
		if e.Attempts == 1 {
			plural = ""
		}
		fmt.Fprintf(&b, " after %d attempt%s", e.Attempts, plural)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error, so errors.Is(err, context.Canceled) and friends work.
func (e *Error) Unwrap() error { return e.Err }

// describeAgent names a node for replies and errors: "Student (student)", or whichever of the
// two is known.
func describeAgent(id, name string) string {
	switch {
	case name != "" && id != "" && name != id:
		return name + " (" + id + ")"
	case name != "":
		return name
	case id != "":
		return id
	default:
		return "the agent"
	}
}

// wrapForAgent adds the node to an error so logs say which node failed.
func wrapForAgent(agent string, err error) error {
	if agent == "" {
		return fmt.Errorf("chat completion: %w", err)
	}
	return fmt.Errorf("chat completion for node %q: %w", agent, err)
}
