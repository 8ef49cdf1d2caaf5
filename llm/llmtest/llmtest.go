// Package llmtest provides a real HTTP server that speaks the OpenAI chat-completions protocol,
// for tests that exercise the real llm.OpenAI client (and anything built on it) without a
// network or an API key. Point OPENAI_BASE_URL (or llm.Config.BaseURL) at Server.URL.
//
// It implements POST /v1/chat/completions (and /chat/completions): plain JSON replies with
// usage or without, server-sent-event streams with several content deltas (one per word, or
// every n characters) and an optional final usage chunk, OpenAI-style JSON error bodies for
// any status, tool calls (whole, or streamed in pieces by index as OpenAI does), and delays
// that end when the client gives up — enough to test replies, streaming, tool calling,
// 429/5xx retries, rejected requests and hangs.
package llmtest

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"
)

// Reply is what a Handler wants the server to answer.
type Reply struct {
	// Content is the assistant's reply. For a non-200 Status it is the error message (empty
	// means the status text).
	Content string
	// Status is the HTTP status; 0 means 200. Any other status answers an OpenAI-style JSON
	// error body {"error": {"message", "type", "code"}}.
	Status int
	// Delay is waited before answering; the wait ends early, with no answer, when the client
	// cancels the request or the server closes. Use a long Delay to simulate a hung provider.
	Delay time.Duration
	// Usage is reported as the token usage; nil reports an estimate (one token per word).
	Usage *openai.Usage
	// NoUsage leaves the usage out, as some OpenAI-compatible servers do: a plain reply has
	// no "usage" object and a stream no usage chunk, even when the client asks for one.
	NoUsage bool
	// Chunk, when positive, streams Content in pieces of Chunk characters (runes) instead of
	// one piece per word (see Split and SplitEvery).
	Chunk int
	// ToolCalls, when set, are the tools the model asks to be called, after Content (which
	// may be empty); the finish reason is then "tool_calls". A stream sends each call in
	// pieces under its index: the id and name first, then the arguments 7 characters at a
	// time, the way providers cut them.
	ToolCalls []ToolCall
}

// ToolCall is one tool call of a Reply. Arguments is sent as it is, so a test can send
// malformed JSON.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// toolCallPiece is how many characters of a call's arguments one streamed piece carries.
const toolCallPiece = 7

// Handler decides the reply to one request. The server calls it from its own goroutines,
// possibly concurrently, so it must be safe for concurrent use.
type Handler func(req openai.ChatCompletionRequest) Reply

// Echo is a Handler that answers "echo: " followed by the last user message.
func Echo(req openai.ChatCompletionRequest) Reply {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == openai.ChatMessageRoleUser {
			return Reply{Content: "echo: " + req.Messages[i].Content}
		}
	}
	return Reply{Content: "echo:"}
}

// Sequence returns a Handler that gives the replies in order, one per request, and then keeps
// giving the last one: Sequence(Reply{Status: 429}, Reply{Content: "ok"}) fails once, then
// succeeds. It panics when called with no replies. The Handler is safe for concurrent use.
func Sequence(replies ...Reply) Handler {
	if len(replies) == 0 {
		panic("llmtest.Sequence: no replies")
	}
	var (
		mu sync.Mutex
		n  int
	)
	return func(openai.ChatCompletionRequest) Reply {
		mu.Lock()
		defer mu.Unlock()
		r := replies[min(n, len(replies)-1)]
		n++
		return r
	}
}

// Server is a running fake chat-completions server. Its methods are safe for concurrent use.
type Server struct {
	ts       *httptest.Server
	handler  Handler
	requests atomic.Int64
	quit     chan struct{}
	once     sync.Once
}

// NewServer starts a server answering with h and registers Close with t.Cleanup. A request
// that is not valid JSON is answered 400 and never reaches h.
func NewServer(t testing.TB, h Handler) *Server {
	t.Helper()
	s := &Server{handler: h, quit: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", s.serveChat)
	mux.HandleFunc("/chat/completions", s.serveChat)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "llmtest: no route for "+r.URL.Path)
	})
	s.ts = httptest.NewUnstartedServer(mux)
	// The server's own complaints (a broken connection, a bad write) show
	// with the test that caused them, not on the process's stderr.
	s.ts.Config.ErrorLog = log.New(t.Output(), "llmtest: ", 0)
	s.ts.Start()
	t.Cleanup(s.Close)
	return s
}

// URL returns the base URL ending in /v1, as OPENAI_BASE_URL expects it.
func (s *Server) URL() string { return s.ts.URL + "/v1" }

// Requests returns how many chat-completion requests the server has received so far,
// counted on arrival (before any Delay), including those answered with an error.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// Close ends pending Delays and shuts the server down, waiting for its handlers to return.
// Calling it more than once is harmless; later requests fail to connect.
func (s *Server) Close() {
	s.once.Do(func() {
		// Release delayed handlers first: httptest.Server.Close waits for active requests.
		close(s.quit)
		s.ts.Close()
	})
}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "llmtest: use POST")
		return
	}
	s.requests.Add(1)
	var req openai.ChatCompletionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "llmtest: decode request: "+err.Error())
		return
	}
	reply := s.handler(req)
	if reply.Delay > 0 {
		t := time.NewTimer(reply.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		}
	}
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status != http.StatusOK {
		msg := reply.Content
		if msg == "" {
			msg = http.StatusText(status)
		}
		writeError(w, status, msg)
		return
	}
	usage := reply.Usage
	if usage == nil {
		usage = estimate(req, reply.Content)
	}
	model := req.Model
	if model == "" {
		model = "llmtest"
	}
	if reply.NoUsage {
		usage = nil
	}
	if req.Stream {
		pieces := Split(reply.Content)
		if reply.Chunk > 0 {
			pieces = SplitEvery(reply.Content, reply.Chunk)
		}
		s.writeStream(w, req, model, pieces, reply.ToolCalls, usage)
		return
	}
	msg := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: reply.Content}
	finish := openai.FinishReasonStop
	for _, tc := range reply.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{ID: tc.ID, Type: openai.ToolTypeFunction,
			Function: openai.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
		finish = openai.FinishReasonToolCalls
	}
	resp := openai.ChatCompletionResponse{
		ID:      "chatcmpl-llmtest",
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   model,
		Choices: []openai.ChatCompletionChoice{{
			Index:        0,
			Message:      msg,
			FinishReason: finish,
		}},
	}
	w.Header().Set("Content-Type", "application/json")
	if usage == nil {
		// go-openai's Usage is a struct, not a pointer: marshal and drop it, so the body
		// really has no "usage" key.
		var body map[string]any
		b, _ := json.Marshal(resp)
		_ = json.Unmarshal(b, &body)
		delete(body, "usage")
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	resp.Usage = *usage
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) writeStream(w http.ResponseWriter, req openai.ChatCompletionRequest, model string, pieces []string, calls []ToolCall, usage *openai.Usage) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	send := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("llmtest: encode chunk: %v", err)) // our own types always encode
		}
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	chunk := func(delta openai.ChatCompletionStreamChoiceDelta, finish openai.FinishReason) openai.ChatCompletionStreamResponse {
		return openai.ChatCompletionStreamResponse{
			ID:      "chatcmpl-llmtest",
			Object:  "chat.completion.chunk",
			Created: time.Now().Unix(),
			Model:   model,
			Choices: []openai.ChatCompletionStreamChoice{{Index: 0, Delta: delta, FinishReason: finish}},
		}
	}
	send(chunk(openai.ChatCompletionStreamChoiceDelta{Role: openai.ChatMessageRoleAssistant}, ""))
	for _, piece := range pieces {
		send(chunk(openai.ChatCompletionStreamChoiceDelta{Content: piece}, ""))
	}
	finish := openai.FinishReasonStop
	for i, tc := range calls {
		index := i
		send(chunk(openai.ChatCompletionStreamChoiceDelta{ToolCalls: []openai.ToolCall{{Index: &index, ID: tc.ID,
			Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: tc.Name}}}}, ""))
		for _, piece := range SplitEvery(tc.Arguments, toolCallPiece) {
			send(chunk(openai.ChatCompletionStreamChoiceDelta{ToolCalls: []openai.ToolCall{{Index: &index,
				Function: openai.FunctionCall{Arguments: piece}}}}, ""))
		}
		finish = openai.FinishReasonToolCalls
	}
	send(chunk(openai.ChatCompletionStreamChoiceDelta{}, finish))
	if usage != nil && req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(openai.ChatCompletionStreamResponse{
			ID:      "chatcmpl-llmtest",
			Object:  "chat.completion.chunk",
			Created: time.Now().Unix(),
			Model:   model,
			Choices: []openai.ChatCompletionStreamChoice{},
			Usage:   usage,
		})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

// Split returns the deltas the server streams for content: one per word, each word with the
// whitespace after it, so a test can predict the deltas a client should see. Their
// concatenation is content.
func Split(content string) []string {
	var parts []string
	for len(content) > 0 {
		i := strings.IndexAny(content, " \n\t")
		if i < 0 {
			parts = append(parts, content)
			break
		}
		j := i
		for j < len(content) && strings.ContainsRune(" \n\t", rune(content[j])) {
			j++
		}
		parts = append(parts, content[:j])
		content = content[j:]
	}
	return parts
}

// SplitEvery returns the deltas the server streams for content with Reply.Chunk = n: pieces of
// n characters (runes), the last one shorter. Their concatenation is content. n < 1 counts
// as 1.
func SplitEvery(content string, n int) []string {
	n = max(n, 1)
	var parts []string
	for len(content) > 0 {
		i, k := 0, 0
		for i < len(content) && k < n {
			_, size := utf8.DecodeRuneInString(content[i:])
			i += size
			k++
		}
		parts = append(parts, content[:i])
		content = content[i:]
	}
	return parts
}

func estimate(req openai.ChatCompletionRequest, content string) *openai.Usage {
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(strings.Fields(m.Content))
	}
	completion := len(strings.Fields(content))
	return &openai.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

// writeError answers an OpenAI-style error body, which go-openai decodes into *openai.APIError.
func writeError(w http.ResponseWriter, status int, msg string) {
	typ, code := "invalid_request_error", ""
	switch {
	case status == http.StatusTooManyRequests:
		typ, code = "rate_limit_error", "rate_limit_exceeded"
	case status == http.StatusUnauthorized:
		typ, code = "authentication_error", "invalid_api_key"
	case status >= 500:
		typ, code = "server_error", "server_error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": msg, "type": typ, "code": code, "param": nil},
	})
}
