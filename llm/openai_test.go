package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
)

// testConfig is a fast configuration: tiny backoff, generous timeout.
func testConfig(baseURL string) llm.Config {
	return llm.Config{
		APIKey:     "sk-test-secret",
		BaseURL:    baseURL,
		Timeout:    5 * time.Second,
		MaxRetries: 3,
		Backoff:    time.Millisecond,
	}
}

func userRequest(text string) llm.Request {
	return llm.Request{
		Agent:    "student",
		Messages: []llm.Message{{Role: llm.RoleSystem, Content: "You are a student."}, {Role: llm.RoleUser, Content: text}},
	}
}

// asError extracts the *llm.Error or fails the test.
func asError(t *testing.T, err error) *llm.Error {
	t.Helper()
	if err == nil {
		t.Fatal("Chat succeeded, want an error")
	}
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *llm.Error", err, err)
	}
	return e
}

// capture records the requests a server receives.
type capture struct {
	mu   sync.Mutex
	reqs []openai.ChatCompletionRequest
}

func (c *capture) handler(reply llmtest.Reply) llmtest.Handler {
	return func(req openai.ChatCompletionRequest) llmtest.Reply {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.reqs = append(c.reqs, req)
		return reply
	}
}

func (c *capture) last(t *testing.T) openai.ChatCompletionRequest {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		t.Fatal("server received no request")
	}
	return c.reqs[len(c.reqs)-1]
}

func TestOpenAIReplyWithUsage(t *testing.T) {
	t.Parallel()
	var cp capture
	usage := &openai.Usage{PromptTokens: 17, CompletionTokens: 5, TotalTokens: 22}
	srv := llmtest.NewServer(t, cp.handler(llmtest.Reply{Content: "Photosynthesis turns light into sugar.", Usage: usage}))
	c := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t))

	temp := 0.0
	r := userRequest("Explain photosynthesis.")
	r.Model = "gpt-test"
	r.Temperature = &temp
	r.MaxTokens = 50
	res, err := c.Chat(t.Context(), r)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	want := llm.Response{
		Content:  "Photosynthesis turns light into sugar.",
		Model:    "gpt-test",
		Usage:    llm.Usage{PromptTokens: 17, CompletionTokens: 5, TotalTokens: 22},
		Attempts: 1,
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("Chat = %+v, want %+v", res, want)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
	got := cp.last(t)
	if got.Model != "gpt-test" || got.MaxTokens != 50 || got.Stream {
		t.Errorf("request model=%q max_tokens=%d stream=%v, want gpt-test, 50, false", got.Model, got.MaxTokens, got.Stream)
	}
	// An explicit temperature 0 must reach the server rather than vanish as omitempty.
	if got.Temperature <= 0 || got.Temperature > 1e-6 {
		t.Errorf("request temperature = %g, want ~0 but present", got.Temperature)
	}
	if len(got.Messages) != 2 || got.Messages[0].Role != "system" || got.Messages[1].Content != "Explain photosynthesis." {
		t.Errorf("request messages = %+v", got.Messages)
	}
}

func TestOpenAIDefaultModelAndEstimatedUsage(t *testing.T) {
	t.Parallel()
	var cp capture
	// Zero usage from the server (as some compatible servers do) makes the client estimate.
	srv := llmtest.NewServer(t, cp.handler(llmtest.Reply{Content: "12345678", Usage: &openai.Usage{}}))
	c := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t))
	res, err := c.Chat(t.Context(), userRequest("abcd"))
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if got := cp.last(t).Model; got != llm.DefaultModel {
		t.Errorf("request model = %q, want %q", got, llm.DefaultModel)
	}
	if res.Usage.CompletionTokens != 2 || res.Usage.PromptTokens == 0 || !res.Usage.Estimated ||
		res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
		t.Errorf("estimated usage = %+v, want completion 2 and a consistent total", res.Usage)
	}
}

func TestOpenAIRetries429ThenSucceeds(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Sequence(
		llmtest.Reply{Status: http.StatusTooManyRequests, Content: "slow down"},
		llmtest.Reply{Content: "ok"},
	))
	c := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t))
	res, err := c.Chat(t.Context(), userRequest("hi"))
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if res.Content != "ok" || res.Attempts != 2 {
		t.Errorf("Chat = %+v, want content ok after 2 attempts", res)
	}
	if n := srv.Requests(); n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
}

func TestOpenAIRetryableStatusExhaustsRetries(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := llmtest.NewServer(t, llmtest.Sequence(llmtest.Reply{Status: status}))
			cfg := testConfig(srv.URL())
			cfg.MaxRetries = 2
			_, err := llm.NewOpenAI(cfg, testLogger(t)).Chat(t.Context(), userRequest("hi"))
			e := asError(t, err)
			if e.Status != status || !e.Retryable || e.Attempts != cfg.MaxRetries+1 {
				t.Errorf("error = %+v, want status %d, retryable, %d attempts", e, status, cfg.MaxRetries+1)
			}
			if n := srv.Requests(); n != cfg.MaxRetries+1 {
				t.Errorf("server got %d requests, want %d", n, cfg.MaxRetries+1)
			}
			if !strings.Contains(err.Error(), `chat completion for node "student"`) {
				t.Errorf("error %q does not name the node", err)
			}
			var apiErr *openai.APIError
			if !errors.As(err, &apiErr) {
				t.Errorf("error %v does not wrap the provider's *openai.APIError", err)
			}
		})
	}
}

func TestOpenAIRequestErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := llmtest.NewServer(t, llmtest.Sequence(llmtest.Reply{Status: status, Content: "bad request"}))
			_, err := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t)).Chat(t.Context(), userRequest("hi"))
			e := asError(t, err)
			if e.Status != status || e.Retryable || e.Attempts != 1 {
				t.Errorf("error = %+v, want status %d, not retryable, 1 attempt", e, status)
			}
			if n := srv.Requests(); n != 1 {
				t.Errorf("server got %d requests, want 1", n)
			}
		})
	}
}

func TestOpenAIHungServerTimesOut(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Sequence(llmtest.Reply{Delay: time.Hour, Content: "never"}))
	cfg := testConfig(srv.URL())
	cfg.Timeout = 200 * time.Millisecond
	cfg.MaxRetries = 1
	_, err := llm.NewOpenAI(cfg, testLogger(t)).Chat(t.Context(), userRequest("hi"))
	e := asError(t, err)
	if !e.Retryable || e.Status != 0 || e.Attempts != 2 {
		t.Errorf("error = %+v, want retryable, no status, 2 attempts", e)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not match context.DeadlineExceeded", err)
	}
	// A provider timeout must not look like the caller cancelling.
	if errors.Is(err, context.Canceled) {
		t.Errorf("error %v matches context.Canceled", err)
	}
	if n := srv.Requests(); n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
}

func TestOpenAIStreamTimesOutWhenStalled(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Sequence(llmtest.Reply{Delay: time.Hour, Content: "never"}))
	cfg := testConfig(srv.URL())
	cfg.Timeout = 200 * time.Millisecond
	cfg.MaxRetries = -1
	r := userRequest("hi")
	r.OnDelta = func(string) { t.Error("OnDelta called on a hung stream") }
	_, err := llm.NewOpenAI(cfg, testLogger(t)).Chat(t.Context(), r)
	e := asError(t, err)
	if !e.Retryable || e.Attempts != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %+v (%v), want a retryable timeout after 1 attempt", e, err)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("server got %d requests, want 1 (negative MaxRetries means none)", n)
	}
}

// signalHandler is a slog.Handler that closes ch when a record with message msg is logged,
// so a test can act at a precise point of the client's work without sleeping.
type signalHandler struct {
	msg  string
	ch   chan struct{}
	once *sync.Once
}

func newSignal(msg string) *signalHandler {
	return &signalHandler{msg: msg, ch: make(chan struct{}), once: new(sync.Once)}
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }

// chatAsync runs Chat in a goroutine and returns a channel with its error.
func chatAsync(ctx context.Context, c llm.Client, r llm.Request) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := c.Chat(ctx, r)
		done <- err
	}()
	return done
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Chat did not return after the context was cancelled")
		return nil
	}
}

func TestOpenAICancelDuringBackoffStopsRetries(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Sequence(llmtest.Reply{Status: http.StatusServiceUnavailable}))
	sig := newSignal("llm attempt failed; retrying")
	cfg := testConfig(srv.URL())
	cfg.Backoff = time.Minute // capped at 10 s: only a ctx-aware wait returns promptly
	c := llm.NewOpenAI(cfg, slog.New(sig))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := chatAsync(ctx, c, userRequest("hi"))
	select {
	case <-sig.ch:
	case err := <-done:
		t.Fatalf("Chat returned before retrying: %v", err)
	}
	cancel()
	err := waitErr(t, done)
	e := asError(t, err)
	if !errors.Is(err, context.Canceled) || e.Retryable || e.Attempts != 1 {
		t.Errorf("error = %+v (%v), want cancelled, not retryable, 1 attempt", e, err)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestOpenAICancelDuringRequestStopsRetries(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	srv := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply {
		arrived <- struct{}{}
		return llmtest.Reply{Delay: time.Hour}
	})
	c := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := chatAsync(ctx, c, userRequest("hi"))
	<-arrived
	cancel()
	err := waitErr(t, done)
	e := asError(t, err)
	if !errors.Is(err, context.Canceled) || e.Retryable {
		t.Errorf("error = %+v (%v), want cancelled and not retryable", e, err)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestOpenAINetworkErrorIsRetryable(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Echo)
	srv.Close() // nothing listens at the URL any more: connection refused
	cfg := testConfig(srv.URL())
	cfg.MaxRetries = 2
	_, err := llm.NewOpenAI(cfg, testLogger(t)).Chat(t.Context(), userRequest("hi"))
	e := asError(t, err)
	if !e.Retryable || e.Status != 0 || e.Attempts != 3 {
		t.Errorf("error = %+v, want retryable, no status, 3 attempts", e)
	}
}

// rawServer is an httptest server with a hand-written handler, for replies llmtest does not
// produce (they are malformed on purpose). It counts requests.
func rawServer(t *testing.T, h http.HandlerFunc) (url string, count *atomic.Int64) {
	t.Helper()
	count = new(atomic.Int64)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/v1", count
}

func TestOpenAINoChoicesIsAnError(t *testing.T) {
	t.Parallel()
	url, count := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","object":"chat.completion","model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}`)
	})
	_, err := llm.NewOpenAI(testConfig(url), testLogger(t)).Chat(t.Context(), userRequest("hi"))
	e := asError(t, err)
	if !errors.Is(err, llm.ErrNoChoices) || e.Retryable {
		t.Errorf("error = %+v (%v), want ErrNoChoices, not retryable", e, err)
	}
	if n := count.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestOpenAIEmptyMessages(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Echo)
	_, err := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t)).Chat(t.Context(), llm.Request{Agent: "a"})
	if !errors.Is(err, llm.ErrNoMessages) {
		t.Errorf("error = %v, want ErrNoMessages", err)
	}
	if n := srv.Requests(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestOpenAIStreaming(t *testing.T) {
	t.Parallel()
	var cp capture
	content := "Light, water and CO2\nbecome sugar and oxygen."
	usage := &openai.Usage{PromptTokens: 11, CompletionTokens: 9, TotalTokens: 20}
	srv := llmtest.NewServer(t, cp.handler(llmtest.Reply{Content: content, Usage: usage}))
	var deltas []string
	r := userRequest("Explain photosynthesis.")
	r.OnDelta = func(d string) { deltas = append(deltas, d) }
	res, err := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t)).Chat(t.Context(), r)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if want := llmtest.Split(content); strings.Join(deltas, "|") != strings.Join(want, "|") {
		t.Errorf("deltas = %q, want %q", deltas, want)
	}
	if len(deltas) < 2 {
		t.Errorf("got %d deltas, want several", len(deltas))
	}
	if strings.Join(deltas, "") != res.Content || res.Content != content {
		t.Errorf("content = %q, deltas join to %q, want %q", res.Content, strings.Join(deltas, ""), content)
	}
	if res.Usage != (llm.Usage{PromptTokens: 11, CompletionTokens: 9, TotalTokens: 20}) || res.Attempts != 1 || res.Model != llm.DefaultModel {
		t.Errorf("Chat = %+v, want the server's usage, 1 attempt, default model", res)
	}
	got := cp.last(t)
	if !got.Stream || got.StreamOptions == nil || !got.StreamOptions.IncludeUsage {
		t.Errorf("request stream=%v stream_options=%+v, want a stream with include_usage", got.Stream, got.StreamOptions)
	}
}

func TestOpenAIStreamRetriesBeforeFirstDelta(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Sequence(
		llmtest.Reply{Status: http.StatusServiceUnavailable},
		llmtest.Reply{Content: "second time lucky"},
	))
	var deltas []string
	r := userRequest("hi")
	r.OnDelta = func(d string) { deltas = append(deltas, d) }
	res, err := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t)).Chat(t.Context(), r)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if res.Attempts != 2 || strings.Join(deltas, "") != "second time lucky" || res.Content != "second time lucky" {
		t.Errorf("Chat = %+v with deltas %q, want 2 attempts and each delta once", res, deltas)
	}
}

func TestOpenAIStreamWithoutUsageIsEstimated(t *testing.T) {
	t.Parallel()
	url, _ := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, d := range []string{"abcd", "efgh"} {
			b, _ := json.Marshal(map[string]any{
				"id": "x", "object": "chat.completion.chunk", "model": "local",
				"choices": []map[string]any{{"index": 0, "delta": map[string]string{"content": d}}},
			})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	r := userRequest("hi")
	r.OnDelta = func(string) {}
	res, err := llm.NewOpenAI(testConfig(url), testLogger(t)).Chat(t.Context(), r)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if res.Content != "abcdefgh" || res.Model != "local" || res.Usage.CompletionTokens != 2 || res.Usage.PromptTokens == 0 || !res.Usage.Estimated {
		t.Errorf("Chat = %+v, want content abcdefgh, model local, estimated usage", res)
	}
}

// A server that reports no usage, streamed or not, gets an estimate marked
// as one; reported usage is not marked.
func TestOpenAIUsageEstimatedOnlyWhenNotReported(t *testing.T) {
	t.Parallel()
	reported := &openai.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}
	for _, tc := range []struct {
		name   string
		reply  llmtest.Reply
		stream bool
		want   bool
	}{
		{"plain, no usage", llmtest.Reply{Content: "a reply", NoUsage: true}, false, true},
		{"stream, no usage chunk", llmtest.Reply{Content: "a reply", NoUsage: true}, true, true},
		{"plain, usage", llmtest.Reply{Content: "a reply", Usage: reported}, false, false},
		{"stream, usage chunk", llmtest.Reply{Content: "a reply", Usage: reported}, true, false},
	} {
		srv := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply { return tc.reply })
		r := userRequest("hi")
		if tc.stream {
			r.OnDelta = func(string) {}
		}
		res, err := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t)).Chat(t.Context(), r)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.Usage.Estimated != tc.want || res.Usage.TotalTokens == 0 {
			t.Errorf("%s: usage %+v, want estimated %v", tc.name, res.Usage, tc.want)
		}
	}
}

func TestOpenAIInfo(t *testing.T) {
	t.Parallel()
	c := llm.NewOpenAI(llm.Config{APIKey: "sk-secret", BaseURL: "http://user:pw@localhost:11434/v1"}, testLogger(t))
	info := c.Info()
	if info.Provider != llm.ProviderOpenAICompatible || info.Model != llm.DefaultModel {
		t.Errorf("Info = %+v", info)
	}
	b, _ := json.Marshal(info)
	if strings.Contains(string(b), "sk-secret") || strings.Contains(string(b), "pw@") {
		t.Errorf("Info %s leaks a credential", b)
	}
	if got := llm.NewOpenAI(llm.Config{}, testLogger(t)).Info().BaseURL; got != llm.DefaultBaseURL {
		t.Errorf("default BaseURL = %q, want %q", got, llm.DefaultBaseURL)
	}
}

func TestOpenAIConcurrentUse(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Echo)
	c := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			r := userRequest(fmt.Sprintf("question %d", i))
			if i%2 == 0 {
				r.OnDelta = func(string) {}
			}
			res, err := c.Chat(t.Context(), r)
			if err != nil {
				t.Errorf("Chat %d: %v", i, err)
				return
			}
			if want := fmt.Sprintf("echo: question %d", i); res.Content != want {
				t.Errorf("Chat %d = %q, want %q", i, res.Content, want)
			}
		})
	}
	wg.Wait()
	if n := srv.Requests(); n != 16 {
		t.Errorf("server got %d requests, want 16", n)
	}
}

// streamChunk is one SSE data line carrying a content delta.
func streamChunk(delta string) string {
	b, _ := json.Marshal(map[string]any{
		"id": "x", "object": "chat.completion.chunk", "model": "m",
		"choices": []map[string]any{{"index": 0, "delta": map[string]string{"content": delta}}},
	})
	return fmt.Sprintf("data: %s\n\n", b)
}

func TestOpenAIStreamBrokenAfterDeltaIsNotRetried(t *testing.T) {
	t.Parallel()
	url, count := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, streamChunk("partial "))
		w.(http.Flusher).Flush()
		// Drop the connection mid-stream: no "data: [DONE]", no end of the chunked body.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	})
	var deltas []string
	r := userRequest("hi")
	r.OnDelta = func(d string) { deltas = append(deltas, d) }
	_, err := llm.NewOpenAI(testConfig(url), testLogger(t)).Chat(t.Context(), r)
	e := asError(t, err)
	if !e.Retryable || e.Attempts != 1 {
		t.Errorf("error = %+v (%v), want a retryable network failure after 1 attempt", e, err)
	}
	if n := count.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1: a stream that delivered text must not be repeated", n)
	}
	if strings.Join(deltas, "") != "partial " {
		t.Errorf("deltas = %q, want the one delivered before the break", deltas)
	}
}

// TestOpenAIStreamTimeoutIsPerChunk streams for longer than the attempt timeout in total, but
// with every gap well under it: a stream that keeps arriving is not cut off.
func TestOpenAIStreamTimeoutIsPerChunk(t *testing.T) {
	t.Parallel()
	const pieces = 8
	url, _ := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for range pieces {
			fmt.Fprint(w, streamChunk("x"))
			w.(http.Flusher).Flush()
			select { // a slow model: 100 ms per token, 800 ms in all
			case <-time.After(100 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	cfg := testConfig(url)
	cfg.Timeout = 500 * time.Millisecond
	cfg.MaxRetries = -1
	r := userRequest("hi")
	r.OnDelta = func(string) {}
	res, err := llm.NewOpenAI(cfg, testLogger(t)).Chat(t.Context(), r)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if res.Content != strings.Repeat("x", pieces) {
		t.Errorf("content = %q, want %d x", res.Content, pieces)
	}
}

func TestOpenAIStreamStalledMidwayTimesOut(t *testing.T) {
	t.Parallel()
	url, _ := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, streamChunk("first "))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // stall until the client gives up
	})
	cfg := testConfig(url)
	cfg.Timeout = 200 * time.Millisecond
	var deltas []string
	r := userRequest("hi")
	r.OnDelta = func(d string) { deltas = append(deltas, d) }
	_, err := llm.NewOpenAI(cfg, testLogger(t)).Chat(t.Context(), r)
	e := asError(t, err)
	if !e.Retryable || e.Attempts != 1 || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Errorf("error = %+v (%v), want a retryable timeout after 1 attempt, not a cancellation", e, err)
	}
	if strings.Join(deltas, "") != "first " {
		t.Errorf("deltas = %q", deltas)
	}
}
