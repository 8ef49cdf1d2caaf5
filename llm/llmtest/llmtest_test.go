package llmtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm/llmtest"
)

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

func TestServerPlainReply(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Echo)
	for _, path := range []string{"/chat/completions", "/v1/chat/completions"} {
		base := strings.TrimSuffix(srv.URL(), "/v1")
		resp, body := post(t, base+path, `{"model":"m","messages":[{"role":"user","content":"one two"}]}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, resp.StatusCode, body)
		}
		var got openai.ChatCompletionResponse
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		if len(got.Choices) != 1 || got.Choices[0].Message.Content != "echo: one two" || got.Model != "m" {
			t.Errorf("%s: reply %+v", path, got)
		}
		if got.Usage.PromptTokens != 2 || got.Usage.CompletionTokens != 3 || got.Usage.TotalTokens != 5 {
			t.Errorf("%s: estimated usage %+v, want 2+3=5", path, got.Usage)
		}
	}
	if n := srv.Requests(); n != 2 {
		t.Errorf("Requests() = %d, want 2", n)
	}
}

func TestServerErrorBody(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Sequence(llmtest.Reply{Status: http.StatusTooManyRequests}))
	resp, body := post(t, srv.URL()+"/chat/completions", `{"model":"m","messages":[]}`)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
	var got struct {
		Error struct{ Message, Type string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Error.Type != "rate_limit_error" || got.Error.Message == "" {
		t.Errorf("error body %s (%v), want an OpenAI-style rate limit error", body, err)
	}
	resp, _ = post(t, srv.URL()+"/chat/completions", `not json`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("invalid JSON: status %d, want 400", resp.StatusCode)
	}
}

func TestServerStream(t *testing.T) {
	t.Parallel()
	usage := &openai.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}
	srv := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply {
		return llmtest.Reply{Content: "a b c", Usage: usage}
	})
	_, body := post(t, srv.URL()+"/chat/completions",
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`)
	var (
		content string
		gotUse  *openai.Usage
		done    bool
	)
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not an SSE data line", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var chunk openai.ChatCompletionStreamResponse
		if err := json.NewDecoder(bytes.NewReader([]byte(data))).Decode(&chunk); err != nil {
			t.Fatalf("decode chunk %q: %v", data, err)
		}
		for _, c := range chunk.Choices {
			content += c.Delta.Content
		}
		if chunk.Usage != nil {
			gotUse = chunk.Usage
		}
	}
	if content != "a b c" || !done || gotUse == nil || *gotUse != *usage {
		t.Errorf("stream content %q, done %v, usage %+v; body:\n%s", content, done, gotUse, body)
	}
	if parts := llmtest.Split("a b c"); strings.Join(parts, "|") != "a |b |c" {
		t.Errorf("Split = %q", parts)
	}
}

func TestServerChunksAndNoUsage(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		return llmtest.Reply{Content: "héllo world", Chunk: 3, NoUsage: true}
	})
	_, body := post(t, srv.URL()+"/chat/completions",
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`)
	var deltas []string
	for line := range strings.Lines(body) {
		data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var chunk openai.ChatCompletionStreamResponse
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("decode chunk %q: %v", data, err)
		}
		if chunk.Usage != nil {
			t.Errorf("a usage chunk with NoUsage: %s", data)
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				deltas = append(deltas, c.Delta.Content)
			}
		}
	}
	if got := strings.Join(deltas, "|"); got != "hél|lo |wor|ld" {
		t.Errorf("deltas %q, want every 3 characters", got)
	}
	if got := strings.Join(llmtest.SplitEvery("abcde", 2), "|"); got != "ab|cd|e" {
		t.Errorf("SplitEvery = %q", got)
	}
	_, plain := post(t, srv.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if strings.Contains(plain, `"usage"`) || !strings.Contains(plain, "héllo world") {
		t.Errorf("plain reply with NoUsage: %s", plain)
	}
}
