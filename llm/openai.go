package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"
)

// Defaults of Config.
const (
	// DefaultModel is the model used when neither Config.Model nor Request.Model is set.
	DefaultModel = "gpt-4o-mini"
	// DefaultTimeout is the per-attempt timeout used when Config.Timeout is 0.
	DefaultTimeout = 120 * time.Second
	// DefaultMaxRetries is the number of retries after the first attempt when
	// Config.MaxRetries is 0.
	DefaultMaxRetries = 3
	// DefaultBackoff is the base retry wait used when Config.Backoff is 0.
	DefaultBackoff = 500 * time.Millisecond
	// DefaultBaseURL is the API base URL used when Config.BaseURL is empty.
	DefaultBaseURL = "https://api.openai.com/v1"

	// maxBackoff caps the exponential backoff: beyond ~10 s a waiting node looks hung, and a
	// provider that is still failing by then is better reported than waited for.
	maxBackoff = 10 * time.Second
	// placeholderAPIKey is sent when no key is configured. Local servers (Ollama, LM Studio)
	// ignore the key, but some OpenAI-compatible proxies reject a request that has no
	// Authorization header at all, and go-openai omits the header for an empty key.
	placeholderAPIKey = "switchboard-no-key"
)

// Config configures an OpenAI client. Zero values select the defaults.
type Config struct {
	// APIKey is the bearer token. Empty sends a placeholder, which is what local
	// OpenAI-compatible servers (Ollama, LM Studio) expect.
	APIKey string
	// BaseURL is the API base URL including the version path, e.g.
	// "http://localhost:11434/v1"; empty means DefaultBaseURL.
	BaseURL string
	// Model is the default model; empty means DefaultModel.
	Model string
	// Timeout bounds each attempt (default DefaultTimeout). For a streamed completion it
	// bounds the wait for the first chunk and then for each next chunk, so a long reply that
	// keeps arriving is never cut off, while a stalled stream is.
	Timeout time.Duration
	// MaxRetries is the number of retries after the first attempt: 0 means DefaultMaxRetries,
	// a negative value means no retries.
	MaxRetries int
	// Backoff is the base wait before the first retry (default DefaultBackoff); it doubles on
	// each retry, with jitter, capped at 10 s.
	Backoff time.Duration
	// HTTPClient sends the requests; nil means a new client on http.DefaultTransport. Its own
	// Timeout, if any, applies on top of the per-attempt timeout.
	HTTPClient *http.Client
}

// OpenAI is a Client for the OpenAI chat-completions API and every server that speaks it
// (Ollama, LM Studio, vLLM, LiteLLM, ...), built on github.com/sashabaranov/go-openai.
//
// Chat applies a timeout to each attempt and retries, with exponential backoff and jitter,
// only the failures that may pass: HTTP 429, 5xx, network errors and attempt timeouts. A
// request the server rejects (400, 401, 404, ...) fails at once. The final failure is an
// *Error wrapped with the node id.
//
// An OpenAI is immutable after NewOpenAI, but for the models it learns refuse tools, and safe
// for concurrent use.
type OpenAI struct {
	client     *openai.Client
	model      string
	timeout    time.Duration
	maxRetries int
	backoff    time.Duration
	info       Info
	logger     *slog.Logger
	// toolsRefused holds the models whose provider refused a request with tools.
	toolsRefused sync.Map
}

// NewOpenAI returns a client for cfg, filling in defaults. It does not contact the server, so
// a wrong BaseURL or key shows up as an error of the first Chat. A nil logger discards logs.
func NewOpenAI(cfg Config, logger *slog.Logger) *OpenAI {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.APIKey == "" {
		cfg.APIKey = placeholderAPIKey
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = cfg.BaseURL
	if cfg.HTTPClient != nil {
		oc.HTTPClient = cfg.HTTPClient
	}
	return &OpenAI{
		client:     openai.NewClientWithConfig(oc),
		model:      cfg.Model,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		backoff:    cfg.Backoff,
		info: Info{
			Provider: ProviderOpenAICompatible,
			BaseURL:  redactURL(cfg.BaseURL),
			Model:    cfg.Model,
		},
		logger: logger,
	}
}

// Info describes the client: provider, base URL (credentials redacted) and default model. It
// never contains the API key. Safe for concurrent use.
func (c *OpenAI) Info() Info { return c.info }

// Chat sends r and returns the completion. With r.OnDelta set the completion is streamed and
// OnDelta receives each content delta; a stream is retried only while no delta has been
// delivered, so OnDelta never sees text twice.
//
// Errors: an empty r.Messages (ErrNoMessages), a reply without choices (ErrNoChoices), a
// rejected request, or a transient failure that outlasted the retries are returned as a
// wrapped *Error. When ctx ends the error wraps ctx's error (errors.Is(err, context.Canceled)
// holds) and is not Retryable. Token usage comes from the provider; when it reports none, it
// is estimated at about one token per four characters and marked Estimated. Safe for
// concurrent use.
func (c *OpenAI) Chat(ctx context.Context, r Request) (Response, error) {
	if len(r.Messages) == 0 {
		return Response{}, wrapForAgent(r.Agent, &Error{Err: ErrNoMessages})
	}
	if err := ctx.Err(); err != nil {
		return Response{}, wrapForAgent(r.Agent, &Error{Err: context.Cause(ctx)})
	}
	req := c.request(r)
	for attempt := 1; ; attempt++ {
		res, delivered, err := c.attempt(ctx, req, r.OnDelta)
		if err == nil {
			res.Attempts = attempt
			c.logger.DebugContext(ctx, "chat completion",
				"agent", r.Agent, "model", res.Model, "attempts", attempt,
				"prompt_tokens", res.Usage.PromptTokens, "completion_tokens", res.Usage.CompletionTokens)
			return res, nil
		}
		status, retryable := classify(err)
		if ctx.Err() != nil {
			// The caller gave up: never retry, and make sure the error says so even when the
			// attempt failed for another reason at the same moment.
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (stopped: %w)", err, context.Cause(ctx))
			}
			return Response{}, wrapForAgent(r.Agent, &Error{Status: status, Attempts: attempt, Err: err})
		}
		if !retryable && len(r.Tools) > 0 && !hasToolTurns(r.Messages) && toolsRefused(status, err) {
			// Only a request without tool calls in it yet: a rejected tool turn is a problem
			// of that conversation, not a provider without tool calling.
			err = fmt.Errorf("%w: %w", ErrToolsRefused, err)
			c.toolsRefused.Store(req.Model, true)
		}
		if !retryable || delivered || attempt > c.maxRetries {
			return Response{}, wrapForAgent(r.Agent, &Error{Status: status, Retryable: retryable, Attempts: attempt, Err: err})
		}
		wait := c.backoffFor(attempt)
		c.logger.WarnContext(ctx, "llm attempt failed; retrying",
			"agent", r.Agent, "model", req.Model, "attempt", attempt, "status", status,
			"backoff", wait, "err", err)
		if werr := sleepCtx(ctx, wait); werr != nil {
			return Response{}, wrapForAgent(r.Agent, &Error{Status: status, Attempts: attempt,
				Err: fmt.Errorf("waiting to retry after %w: %w", err, werr)})
		}
	}
}

// request translates r into the go-openai request once, so retries send identical bodies.
func (c *OpenAI) request(r Request) openai.ChatCompletionRequest {
	model := r.Model
	if model == "" {
		model = c.model
	}
	msgs := make([]openai.ChatCompletionMessage, len(r.Messages))
	for i, m := range r.Messages {
		msgs[i] = openai.ChatCompletionMessage{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			msgs[i].ToolCalls = append(msgs[i].ToolCalls, openai.ToolCall{ID: tc.ID, Type: openai.ToolTypeFunction,
				Function: openai.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
		}
	}
	req := openai.ChatCompletionRequest{Model: model, Messages: msgs}
	for _, t := range r.Tools {
		params := t.Parameters
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		req.Tools = append(req.Tools, openai.Tool{Type: openai.ToolTypeFunction,
			Function: &openai.FunctionDefinition{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	if r.Temperature != nil {
		t := float32(*r.Temperature)
		if t == 0 {
			// go-openai tags temperature omitempty, so a literal 0 would silently become the
			// provider default (1.0); the smallest float32 is 0 in practice and is sent.
			t = math.SmallestNonzeroFloat32
		}
		req.Temperature = t
	}
	if r.MaxTokens > 0 {
		if reasoningModel(model) {
			// These models refuse max_tokens (go-openai even rejects it before sending).
			req.MaxCompletionTokens = r.MaxTokens
		} else {
			// max_tokens, not max_completion_tokens: it is the field every OpenAI-compatible
			// server (Ollama, LM Studio, vLLM) understands.
			req.MaxTokens = r.MaxTokens
		}
	}
	if r.OnDelta != nil {
		req.Stream = true
		req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	return req
}

// toolsRefused reports a rejection that names the tools: how OpenAI-compatible servers
// without function calling (older Ollama models, some vLLM and LM Studio setups) answer a
// request with "tools", e.g. 400 "registry.ollama.ai/library/x does not support tools".
func toolsRefused(status int, err error) bool {
	if status < 400 || status >= 500 {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "tool") || strings.Contains(msg, "function")
}

// hasToolTurns reports whether msgs hold tool calls or results.
func hasToolTurns(msgs []Message) bool {
	for _, m := range msgs {
		if m.Role == RoleTool || len(m.ToolCalls) > 0 {
			return true
		}
	}
	return false
}

// CallsTools reports whether to offer tools to model ("" for the default model; see
// ToolCaller): true until a request with tools for that model was refused (ErrToolsRefused),
// so that a server without tool calling costs one refused request per model, not one per
// conversation. Safe for concurrent use.
func (c *OpenAI) CallsTools(model string) bool {
	if model == "" {
		model = c.model
	}
	_, refused := c.toolsRefused.Load(model)
	return !refused
}

// reasoningModel reports the OpenAI model families that take max_completion_tokens only.
func reasoningModel(model string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// attempt makes one attempt under its own timeout. delivered reports whether any delta reached
// OnDelta, after which the attempt must not be repeated.
func (c *OpenAI) attempt(ctx context.Context, req openai.ChatCompletionRequest, onDelta func(string)) (res Response, delivered bool, err error) {
	tErr := &timeoutError{d: c.timeout}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A timer rather than context.WithTimeout because a stream re-arms it on every chunk.
	timer := time.AfterFunc(c.timeout, func() { cancel(tErr) })
	defer timer.Stop()

	if req.Stream {
		res, delivered, err = c.stream(actx, req, onDelta, func() { timer.Reset(c.timeout) })
	} else {
		res, err = c.complete(actx, req)
	}
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), tErr) && !errors.Is(err, tErr) {
		// net/http reports the cause (tErr) itself, but a read of the body or stream may only
		// say context.Canceled. Replace that chain on purpose: a caller testing
		// errors.Is(err, context.Canceled) must not mistake a provider timeout for its own
		// cancellation. tErr matches context.DeadlineExceeded instead.
		err = fmt.Errorf("%w: %s", tErr, err.Error())
	}
	return res, delivered, err
}

func (c *OpenAI) complete(ctx context.Context, req openai.ChatCompletionRequest) (Response, error) {
	resp, err := c.client.CreateChatCompletion(ctx, req)
	if err != nil {
		return Response{}, err
	}
	if len(resp.Choices) == 0 {
		return Response{}, ErrNoChoices
	}
	res := Response{Content: resp.Choices[0].Message.Content, Model: resp.Model}
	for _, tc := range resp.Choices[0].Message.ToolCalls {
		res.ToolCalls = append(res.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	if res.Model == "" {
		res.Model = req.Model
	}
	res.Usage = Usage{
		PromptTokens:     resp.Usage.PromptTokens,
		CompletionTokens: resp.Usage.CompletionTokens,
		TotalTokens:      resp.Usage.TotalTokens,
	}
	if res.Usage == (Usage{}) {
		// Some compatible servers omit usage; an estimate, marked so, beats reporting a free
		// call.
		res.Usage = estimateUsage(req.Messages, res.Content+toolCallsText(res.ToolCalls))
	}
	return res, nil
}

func (c *OpenAI) stream(ctx context.Context, req openai.ChatCompletionRequest, onDelta func(string), progress func()) (Response, bool, error) {
	st, err := c.client.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return Response{}, false, err
	}
	defer st.Close()

	var (
		content   strings.Builder
		usage     *openai.Usage
		model     string
		chunks    int
		choices   bool
		delivered bool
		calls     toolCallAssembler
	)
	for {
		chunk, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Response{}, delivered, fmt.Errorf("read stream: %w", err)
		}
		progress()
		chunks++
		if chunk.Model != "" {
			model = chunk.Model
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			choices = true
			if d := ch.Delta.Content; d != "" {
				content.WriteString(d)
				delivered = true
				onDelta(d)
			}
			for _, tc := range ch.Delta.ToolCalls {
				calls.add(tc)
			}
		}
	}
	if chunks == 0 {
		// go-openai reports a connection closed before "data: [DONE]" as a clean EOF; with
		// nothing received at all this is a broken stream worth retrying, not a reply.
		return Response{}, false, fmt.Errorf("read stream: no data before end of stream: %w", io.ErrUnexpectedEOF)
	}
	if !choices {
		return Response{}, delivered, ErrNoChoices
	}
	res := Response{Content: content.String(), Model: model, ToolCalls: calls.calls()}
	if res.Model == "" {
		res.Model = req.Model
	}
	if usage != nil {
		res.Usage = Usage{PromptTokens: usage.PromptTokens, CompletionTokens: usage.CompletionTokens, TotalTokens: usage.TotalTokens}
	}
	if res.Usage == (Usage{}) {
		// A server that ignores stream_options.include_usage sends no usage chunk.
		res.Usage = estimateUsage(req.Messages, res.Content+toolCallsText(res.ToolCalls))
	}
	return res, delivered, nil
}

// toolCallAssembler puts streamed tool calls together. A provider streams each call in
// pieces that share its index: the first piece carries the id and the name, the next ones
// more of the arguments' JSON text. A piece without an index (some servers send whole calls
// that way) is a call of its own.
type toolCallAssembler struct {
	list    []*ToolCall
	byIndex map[int]*ToolCall
}

func (a *toolCallAssembler) add(tc openai.ToolCall) {
	var cur *ToolCall
	if tc.Index != nil {
		cur = a.byIndex[*tc.Index]
	}
	if cur == nil {
		cur = &ToolCall{}
		a.list = append(a.list, cur)
		if tc.Index != nil {
			if a.byIndex == nil {
				a.byIndex = map[int]*ToolCall{}
			}
			a.byIndex[*tc.Index] = cur
		}
	}
	if tc.ID != "" {
		cur.ID = tc.ID
	}
	if cur.Name == "" {
		// Some servers repeat the name in every piece; it is never split.
		cur.Name = tc.Function.Name
	}
	cur.Arguments += tc.Function.Arguments
}

// calls returns the assembled calls in the order their first pieces came.
func (a *toolCallAssembler) calls() []ToolCall {
	if len(a.list) == 0 {
		return nil
	}
	out := make([]ToolCall, len(a.list))
	for i, c := range a.list {
		out[i] = *c
	}
	return out
}

// toolCallsText is the text of tool calls, for estimating their tokens.
func toolCallsText(calls []ToolCall) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.Name)
		b.WriteString(c.Arguments)
	}
	return b.String()
}

// classify tells the HTTP status of a failed attempt, and whether the failure may pass by
// itself (429, 5xx, network, timeout) or is the request's fault.
func classify(err error) (status int, retryable bool) {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) && apiErr.HTTPStatusCode != 0 {
		return apiErr.HTTPStatusCode, retryableStatus(apiErr.HTTPStatusCode)
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) && reqErr.HTTPStatusCode != 0 {
		return reqErr.HTTPStatusCode, retryableStatus(reqErr.HTTPStatusCode)
	}
	if errors.Is(err, ErrNoChoices) {
		return http.StatusOK, false
	}
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
		netErr net.Error
	)
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr):
		return 0, true
	case errors.As(err, &netErr) && netErr.Timeout():
		return 0, true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The server closed the connection mid-request or mid-body.
		return 0, true
	}
	// Anything else (bad URL, malformed JSON, local validation) will fail the same way again.
	return 0, false
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// backoffFor returns the wait before retry number n (1-based): base·2^(n-1), capped, with
// "equal jitter" — half fixed so a retry never fires at once, half random so nodes that hit
// the same 429 together do not come back together.
func (c *OpenAI) backoffFor(n int) time.Duration {
	d := c.backoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepCtx waits d or until ctx ends, whichever is first, returning ctx's cause in the latter
// case.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// timeoutError is an attempt that ran out of time. It matches context.DeadlineExceeded and is
// a net.Error-style timeout, so generic timeout checks recognise it.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string   { return fmt.Sprintf("attempt timed out after %s", e.d) }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded
}

// estimateUsage approximates token counts at one token per four characters, the usual rule
// of thumb for English text with OpenAI tokenizers.
func estimateUsage(msgs []openai.ChatCompletionMessage, completion string) Usage {
	prompt := 0
	for _, m := range msgs {
		prompt += estimateTokens(m.Content)
		for _, tc := range m.ToolCalls {
			prompt += estimateTokens(tc.Function.Name + tc.Function.Arguments)
		}
	}
	out := estimateTokens(completion)
	return Usage{PromptTokens: prompt, CompletionTokens: out, TotalTokens: prompt + out, Estimated: true}
}

func estimateTokens(s string) int {
	return (utf8.RuneCountInString(s) + 3) / 4
}

// redactURL hides any user:password in a base URL so Info can be logged and shown.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}
