package llm_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
)

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		want     llm.Info
		wantLogs []string
	}{
		{
			name:     "nothing set: demo",
			env:      nil,
			want:     llm.Info{Provider: llm.ProviderDemo, Model: llm.DemoModel},
			wantLogs: []string{"provider=demo"},
		},
		{
			name:     "blank values count as unset",
			env:      map[string]string{"OPENAI_API_KEY": "  ", "OPENAI_BASE_URL": ""},
			want:     llm.Info{Provider: llm.ProviderDemo, Model: llm.DemoModel},
			wantLogs: []string{"provider=demo"},
		},
		{
			name:     "key only: OpenAI",
			env:      map[string]string{"OPENAI_API_KEY": "sk-very-secret"},
			want:     llm.Info{Provider: llm.ProviderOpenAICompatible, BaseURL: llm.DefaultBaseURL, Model: llm.DefaultModel},
			wantLogs: []string{"provider=openai-compatible", "api_key_set=true", "timeout=2m0s"},
		},
		{
			name: "base URL only: local server, model and timeout",
			env: map[string]string{
				"OPENAI_BASE_URL":         "http://localhost:11434/v1",
				"SWITCHBOARD_MODEL":       "llama3.2",
				"SWITCHBOARD_LLM_TIMEOUT": "45s",
			},
			want:     llm.Info{Provider: llm.ProviderOpenAICompatible, BaseURL: "http://localhost:11434/v1", Model: "llama3.2"},
			wantLogs: []string{"api_key_set=false", "timeout=45s", "model=llama3.2"},
		},
		{
			name: "invalid timeout falls back to the default",
			env: map[string]string{
				"OPENAI_API_KEY":          "sk-very-secret",
				"SWITCHBOARD_LLM_TIMEOUT": "soon",
			},
			want:     llm.Info{Provider: llm.ProviderOpenAICompatible, BaseURL: llm.DefaultBaseURL, Model: llm.DefaultModel},
			wantLogs: []string{"ignoring invalid SWITCHBOARD_LLM_TIMEOUT", "timeout=2m0s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c, info := llm.FromEnv(envFunc(tt.env), slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil)))
			if info != tt.want || c.Info() != tt.want {
				t.Errorf("info = %+v, client info = %+v, want %+v", info, c.Info(), tt.want)
			}
			switch tt.want.Provider {
			case llm.ProviderDemo:
				if _, ok := c.(*llm.Demo); !ok {
					t.Errorf("client is %T, want *llm.Demo", c)
				}
			default:
				if _, ok := c.(*llm.OpenAI); !ok {
					t.Errorf("client is %T, want *llm.OpenAI", c)
				}
			}
			for _, want := range tt.wantLogs {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("logs %q do not contain %q", logs.String(), want)
				}
			}
			if strings.Contains(logs.String(), "sk-very-secret") {
				t.Errorf("logs leak the API key: %s", logs.String())
			}
		})
	}
	if c, info := llm.FromEnv(nil, nil); info.Provider != llm.ProviderDemo || c == nil {
		t.Errorf("FromEnv(nil, nil) = %T, %+v, want the demo model", c, info)
	}
}

// TestFromEnvTalksToServer checks the key actually sent: the configured one, or a placeholder
// when only a base URL is set (Ollama, LM Studio).
func TestFromEnvTalksToServer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ key, wantAuth string }{
		{key: "sk-abc", wantAuth: "Bearer sk-abc"},
		{key: "", wantAuth: "Bearer "}, // any non-empty placeholder
	} {
		t.Run(fmt.Sprintf("key=%q", tt.key), func(t *testing.T) {
			auth := make(chan string, 1)
			url, _ := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
				auth <- r.Header.Get("Authorization")
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"model":"local","choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}]}`)
			})
			c, _ := llm.FromEnv(envFunc(map[string]string{"OPENAI_API_KEY": tt.key, "OPENAI_BASE_URL": url}), testLogger(t))
			res, err := c.Chat(t.Context(), userRequest("hi"))
			if err != nil || res.Content != "hello" {
				t.Fatalf("Chat = %+v, %v", res, err)
			}
			got := <-auth
			if !strings.HasPrefix(got, tt.wantAuth) || len(got) <= len("Bearer ") {
				t.Errorf("Authorization = %q, want %q...", got, tt.wantAuth)
			}
		})
	}
}

func TestFromEnvWithLLMTestServer(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Echo)
	c, info := llm.FromEnv(envFunc(map[string]string{"OPENAI_BASE_URL": srv.URL(), "SWITCHBOARD_MODEL": "m1"}), testLogger(t))
	if info.BaseURL != srv.URL() || info.Model != "m1" {
		t.Errorf("info = %+v", info)
	}
	res, err := c.Chat(t.Context(), userRequest("ping"))
	if err != nil || res.Content != "echo: ping" || res.Model != "m1" {
		t.Errorf("Chat = %+v, %v, want echo: ping from m1", res, err)
	}
}
