package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
)

var askTool = llm.Tool{Name: "ask_node", Description: "Ask another agent.",
	Parameters: json.RawMessage(`{"type":"object","properties":{"node_id":{"type":"string","enum":["teacher"]},"question":{"type":"string"}},"required":["node_id","question"]}`)}

// TestChatToolCalls: the tools go out with the request, the model's tool calls come back
// whole, and a streamed reply's pieces (cut by index, the arguments a few characters at a
// time) are put back together; the next turn carries the assistant's calls and the tool
// results by id.
func TestChatToolCalls(t *testing.T) {
	calls := []llmtest.ToolCall{
		{ID: "call_1", Name: "ask_node", Arguments: `{"node_id":"teacher","question":"Why is the sky blue?"}`},
		{ID: "call_2", Name: "get_shared_context", Arguments: `{"key":"topic"}`},
	}
	want := []llm.ToolCall{
		{ID: "call_1", Name: "ask_node", Arguments: calls[0].Arguments},
		{ID: "call_2", Name: "get_shared_context", Arguments: calls[1].Arguments},
	}
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "streamed"}[stream], func(t *testing.T) {
			var c capture
			srv := llmtest.NewServer(t, c.handler(llmtest.Reply{Content: "Let me ask.", ToolCalls: calls}))
			client := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t))
			if !client.CallsTools("") {
				t.Fatal("CallsTools() = false")
			}
			req := userRequest("Why is the sky blue?")
			req.Tools = []llm.Tool{askTool}
			var deltas []string
			if stream {
				req.OnDelta = func(d string) { deltas = append(deltas, d) }
			}
			res, err := client.Chat(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.ToolCalls, want) {
				t.Errorf("ToolCalls = %#v, want %#v", res.ToolCalls, want)
			}
			if res.Content != "Let me ask." {
				t.Errorf("Content = %q", res.Content)
			}
			if stream && len(deltas) == 0 {
				t.Error("no content delta was streamed")
			}
			got := c.last(t)
			if len(got.Tools) != 1 || got.Tools[0].Function.Name != "ask_node" || got.Tools[0].Type != openai.ToolTypeFunction {
				t.Fatalf("request tools = %+v", got.Tools)
			}
			params, _ := json.Marshal(got.Tools[0].Function.Parameters)
			if !json.Valid(params) || !strings.Contains(string(params), `"enum":["teacher"]`) {
				t.Errorf("schema sent = %s", params)
			}

			// The next turn: the calls and their results.
			req.Messages = append(req.Messages,
				llm.Message{Role: llm.RoleAssistant, Content: res.Content, ToolCalls: res.ToolCalls},
				llm.Message{Role: llm.RoleTool, ToolCallID: "call_1", Content: "Teacher answered: Rayleigh scattering."},
				llm.Message{Role: llm.RoleTool, ToolCallID: "call_2", Content: "nothing stored"})
			if _, err := client.Chat(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			got = c.last(t)
			msgs := got.Messages
			if n := len(msgs); n != 5 {
				t.Fatalf("second request has %d messages, want 5", n)
			}
			if a := msgs[2]; a.Role != "assistant" || len(a.ToolCalls) != 2 || a.ToolCalls[1].ID != "call_2" || a.ToolCalls[0].Function.Arguments != calls[0].Arguments {
				t.Errorf("assistant message = %+v", a)
			}
			if m := msgs[3]; m.Role != "tool" || m.ToolCallID != "call_1" || m.Content != "Teacher answered: Rayleigh scattering." {
				t.Errorf("tool message = %+v", m)
			}
		})
	}
}

// TestChatToolsRefused: a server without function calling rejects the tools with a 400
// naming them; the error says so (ErrToolsRefused) and is not retried. A 400 about
// something else is not a refusal of the tools.
func TestChatToolsRefused(t *testing.T) {
	srv := llmtest.NewServer(t, llmtest.Sequence(
		llmtest.Reply{Status: http.StatusBadRequest, Content: "registry.ollama.ai/library/gemma:2b does not support tools"},
		llmtest.Reply{Status: http.StatusBadRequest, Content: "messages: too long"},
	))
	client := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t))
	req := userRequest("hi")
	req.Tools = []llm.Tool{askTool}
	_, err := client.Chat(context.Background(), req)
	if e := asError(t, err); e.Status != http.StatusBadRequest || e.Attempts != 1 || !errors.Is(err, llm.ErrToolsRefused) {
		t.Fatalf("err = %v, want a 400 wrapping ErrToolsRefused after one attempt", err)
	}
	if client.CallsTools("") || client.CallsTools(llm.DefaultModel) || !client.CallsTools("another-model") {
		t.Error("CallsTools should be false for the model that refused tools only")
	}
	req.Model = "another-model"
	_, err = client.Chat(context.Background(), req)
	if err == nil || errors.Is(err, llm.ErrToolsRefused) {
		t.Fatalf("err = %v, want a 400 that is not ErrToolsRefused", err)
	}
	if !client.CallsTools("another-model") {
		t.Error("a 400 about something else made CallsTools false")
	}
}

// TestChatToolTurnRefused: a 400 naming tools for a request that already holds tool calls is
// that conversation's problem (a bad tool turn), not a provider without tool calling.
func TestChatToolTurnRefused(t *testing.T) {
	srv := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply {
		return llmtest.Reply{Status: http.StatusBadRequest, Content: "tool_call_id call_9 has no matching tool call"}
	})
	client := llm.NewOpenAI(testConfig(srv.URL()), testLogger(t))
	req := userRequest("hi")
	req.Tools = []llm.Tool{askTool}
	req.Messages = append(req.Messages, llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "ask_node", Arguments: "{}"}}},
		llm.Message{Role: llm.RoleTool, ToolCallID: "call_9", Content: "x"})
	_, err := client.Chat(context.Background(), req)
	if asError(t, err).Status != http.StatusBadRequest || errors.Is(err, llm.ErrToolsRefused) || !client.CallsTools("") {
		t.Fatalf("err = %v, CallsTools %v; want a plain 400 and tools still offered", err, client.CallsTools(""))
	}
}
