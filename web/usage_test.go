package web_test

import (
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/web"
)

// The dashboard shows token counts the model server did not report as
// approximate, in the execution list, the execution's facts and the node's,
// and reported counts as they are.
func TestDashboardMarksEstimatedTokens(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if strings.Contains(req.Messages[len(req.Messages)-1].Content, "unreported") {
			return llmtest.Reply{Content: "a reply", NoUsage: true}
		}
		return llmtest.Reply{Content: "a reply", Usage: &openai.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}
	})
	s, _ := newUI(t, web.Config{}, withModel(llm.NewOpenAI(llm.Config{BaseURL: srv.URL(), Timeout: 10 * time.Second, MaxRetries: -1}, testLogger(t))))
	for _, tc := range []struct {
		prompt string
		want   bool
	}{{"unreported", true}, {"reported", false}} {
		code, body, _ := s.do(t, "POST", "/workflows/", `{"name":"tokens","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"`+tc.prompt+`"}}]}`)
		if code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
		id := decode[map[string]any](t, body)["id"].(string)
		code, body, _ = s.do(t, "POST", "/workflows/"+id+"/execute", `{}`)
		x := decode[map[string]any](t, body)
		usage, _ := x["usage"].(map[string]any)
		if code != 200 || x["status"] != "success" || (usage["estimated"] == true) != tc.want {
			t.Fatalf("%s: execute: %d %s", tc.prompt, code, body)
		}
		_, page, _ := s.do(t, "GET", "/ui/executions/"+x["execution_id"].(string), "")
		_, list, _ := s.do(t, "GET", "/ui/executions", "")
		for where, html := range map[string]string{"execution page": string(page), "execution list": string(list)} {
			got := strings.Count(html, "≈ ")
			switch {
			case tc.want && (got == 0 || !strings.Contains(html, `title="Estimated: the model server did not report token usage`)):
				t.Errorf("%s: the %s shows estimated tokens as exact:\n%s", tc.prompt, where, html)
			case !tc.want && where == "execution page" && got != 0:
				t.Errorf("%s: the %s shows reported tokens as estimated:\n%s", tc.prompt, where, html)
			}
		}
		if tc.want && strings.Count(string(page), "≈ ") < 2 {
			t.Errorf("the execution page should mark the execution's and the node's tokens:\n%s", page)
		}
	}
}
