package executor_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// askFlow is a workflow where a asks b; a's tool mode is mode ("" for
// the executor's default), extra goes into its metadata.
func askFlow(t *testing.T, mode, extra string) *workflow.Workflow {
	tm := ""
	if mode != "" {
		tm = `,"tool_mode":"` + mode + `"`
	}
	return parse(t, `{"name":"tools","metadata":{"communication_mode":"simple"`+extra+`},"nodes":[
		{"id":"start","type":"start"},
		{"id":"a","type":"ai-processor","config":{"name":"Asker","prompt":"Find out 6 times 7.","can_communicate":true`+tm+`}},
		{"id":"b","type":"ai-processor","config":{"name":"Calculator","prompt":"Wait for questions.","can_communicate":true}},
		{"id":"end","type":"end"}],
		"edges":[{"from":"start","to":"a"},{"from":"start","to":"b"},{"from":"a","to":"end"},{"from":"b","to":"end"}]}`)
}

// toolResults is what the last turn of a request carries back: its tool
// messages, joined.
func toolResults(req openai.ChatCompletionRequest) (string, bool) {
	var out []string
	for i := len(req.Messages) - 1; i >= 0 && req.Messages[i].Role == openai.ChatMessageRoleTool; i-- {
		out = append([]string{req.Messages[i].ToolCallID + ": " + req.Messages[i].Content}, out...)
	}
	return strings.Join(out, "\n"), len(out) > 0
}

// nativeModel answers a's run with the tool calls calls, b's answer
// with 42, and a's follow-up with the tool results it got. It fails the
// request when a's first request is not a native one: tools offered,
// ask_node's node_id listing b, no CALL: guide.
func nativeModel(t *testing.T, calls ...llmtest.ToolCall) llmtest.Handler {
	return func(req openai.ChatCompletionRequest) llmtest.Reply {
		sys := req.Messages[0].Content
		if res, ok := toolResults(req); ok {
			return llmtest.Reply{Content: "Asker found: " + res}
		}
		if strings.Contains(sys, "asks you the question") {
			return llmtest.Reply{Content: "42"}
		}
		if !strings.HasPrefix(req.Messages[len(req.Messages)-1].Content, "Find out") {
			return llmtest.Reply{Content: "b's own run"}
		}
		var ask string
		for _, tl := range req.Tools {
			if tl.Function.Name == "ask_node" {
				b, _ := json.Marshal(tl.Function.Parameters)
				ask = string(b)
			}
		}
		if len(req.Tools) != 4 || !strings.Contains(ask, `"enum":["b"]`) || strings.Contains(sys, "CALL: ask_node") || !strings.Contains(sys, "calling the tools") {
			return llmtest.Reply{Content: fmt.Sprintf("not a native request: %d tools, ask_node %s, system %q", len(req.Tools), ask, sys)}
		}
		return llmtest.Reply{Content: "Let me ask.", ToolCalls: calls}
	}
}

func commOf(x *workflow.Execution, typ string) []workflow.CommEntry {
	var out []workflow.CommEntry
	for _, c := range x.CommunicationLog {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

func hasLog(x *workflow.Execution, sub string) bool {
	for _, l := range x.Logs {
		if strings.Contains(l.Message, sub) {
			return true
		}
	}
	return false
}

// checkNativeAsk checks a run of askFlow where a asked b natively.
func checkNativeAsk(t *testing.T, x *workflow.Execution) {
	t.Helper()
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s\nlogs %+v", x.Status, x.Error, x.Logs)
	}
	out, _ := x.NodeStates["a"].Output.(string)
	if !strings.Contains(out, "Asker found: call_1: Calculator (b) answered: 42") {
		t.Fatalf("a's output %q does not use b's answer", out)
	}
	asks, resps, tools := commOf(x, workflow.CommAsk), commOf(x, workflow.CommResponse), commOf(x, workflow.CommToolCall)
	if len(asks) != 1 || asks[0].To != "b" || asks[0].Content != "What is 6 times 7?" || len(resps) != 1 || resps[0].Content != "42" {
		t.Fatalf("asks %+v responses %+v", asks, resps)
	}
	if len(tools) != 1 {
		t.Fatalf("tool_call entries %+v", tools)
	}
	tc := tools[0]
	args, _ := tc.Metadata["arguments"].(map[string]any)
	if tc.From != "a" || tc.To != "a" || tc.Metadata["tool"] != "ask_node" || args["node_id"] != "b" || tc.Metadata["success"] != true ||
		tc.Metadata["tool_mode"] != "native" || tc.Content != "Calculator (b) answered: 42" {
		t.Fatalf("tool_call entry %+v", tc)
	}
	if _, ok := tc.Metadata["latency_ms"].(float64); !ok {
		t.Errorf("tool_call entry has no latency: %+v", tc.Metadata)
	}
	if !hasLog(x, "Node a completed in") || !hasLog(x, "(tool_mode native)") {
		t.Errorf("no log line says a used native tool calls: %+v", x.Logs)
	}
	if m := x.NodeStates["a"].ToolMode; m != workflow.ToolModeNative {
		t.Errorf("a's node state says tool mode %q", m)
	}
}

var askB = llmtest.ToolCall{ID: "call_1", Name: "ask_node", Arguments: `{"node_id":"b","question":"What is 6 times 7?"}`}

// TestNativeAsk: a asks b with a native tool call (streamed: a's own run
// streams) and a's output uses the answer, in simple and pubsub mode; the
// tool call is in the communication log next to the ask and its answer.
func TestNativeAsk(t *testing.T) {
	t.Parallel()
	t.Run("simple", func(t *testing.T) {
		t.Parallel()
		model, _ := openAIModel(t, nativeModel(t, askB))
		e := newEnv(t, model, nil, executor.Config{})
		checkNativeAsk(t, e.run(t, askFlow(t, "native", ""), executor.Options{}))
	})
	t.Run("pubsub", func(t *testing.T) {
		t.Parallel()
		bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
			model, _ := openAIModel(t, nativeModel(t, askB))
			e := newEnv(t, model, connectBus(t, url), executor.Config{})
			x := e.run(t, askFlow(t, "", ""), executor.Options{Mode: workflow.ModePubSub})
			if x.Mode != workflow.ModePubSub {
				t.Fatalf("mode %s (%s)", x.Mode, x.FallbackReason)
			}
			checkNativeAsk(t, x)
		})
	})
}

// TestNativeAskOnWorkers: the same with both agents hosted by a worker,
// its model the real client; max_tool_calls is counted by the server.
func TestNativeAskOnWorkers(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		server, _ := openAIModel(t, func(openai.ChatCompletionRequest) llmtest.Reply {
			return llmtest.Reply{Content: "the server's model was called"}
		})
		worker, _ := openAIModel(t, nativeModel(t, askB, askB))
		we := newWorkerEnv(t, url, server, 5*time.Second)
		we.startWorker(t, "w1", worker, 5*time.Second)
		we.waitWorkers(t, "w1")
		x := we.run(t, askFlow(t, "native", `,"max_tool_calls":1`), executor.Options{Mode: workflow.ModePubSub})
		if x.Placement != workflow.PlacementWorkers || x.NodeStates["a"].Worker != "w1" {
			t.Fatalf("placement %s (%s), a ran on %q", x.Placement, x.PlacementFallbackReason, x.NodeStates["a"].Worker)
		}
		out, _ := x.NodeStates["a"].Output.(string)
		if !strings.Contains(out, "call_1: Calculator (b) answered: 42") || !strings.Contains(out, "limit of 1 tool calls (metadata.max_tool_calls)") {
			t.Fatalf("a's output %q: want b's answer, then the second call refused", out)
		}
		tools := commOf(x, workflow.CommToolCall)
		if len(tools) != 2 || tools[0].Metadata["success"] != true || tools[1].Metadata["success"] != false {
			t.Fatalf("tool_call entries %+v", tools)
		}
		if !hasLog(x, "(tool_mode native)") {
			t.Errorf("no log line says a used native tool calls: %+v", x.Logs)
		}
	})
}

// TestBadToolCalls: an unknown tool, arguments that are not JSON, a wrong
// node id, a missing argument and calls over max_tool_calls each get an
// error result the model reads; the node still completes. An oversized
// result is cut with a note.
func TestBadToolCalls(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 40<<10)
	calls := []llmtest.ToolCall{
		{ID: "c1", Name: "fly_to_the_moon", Arguments: `{}`},
		{ID: "c2", Name: "ask_node", Arguments: `{"node_id": "b", "question": `},
		{ID: "c3", Name: "ask_node", Arguments: `{"node_id":"zzz","question":"Hello?"}`},
		{ID: "c4", Name: "ask_node", Arguments: `{"node_id":"b"}`},
		{ID: "c5", Name: "set_shared_context", Arguments: `{"key":"big","value":"` + big + `"}`},
		{ID: "c6", Name: "get_shared_context", Arguments: `{"key":"big"}`},
		{ID: "c7", Name: "get_shared_context", Arguments: `{"key":42}`},
		{ID: "c8", Name: "get_shared_context", Arguments: `{"key":"none"}`},
	}
	model, _ := openAIModel(t, nativeModel(t, calls...))
	e := newEnv(t, model, nil, executor.Config{})
	x := e.run(t, askFlow(t, "native", `,"max_tool_calls":7`), executor.Options{})
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	out, _ := x.NodeStates["a"].Output.(string)
	for _, want := range []string{
		`c1: error: there is no tool "fly_to_the_moon"; the tools are: ask_node, broadcast_message, set_shared_context, get_shared_context`,
		"c2: error: the arguments of ask_node must be a JSON object matching its schema",
		`c3: error: "zzz" is not an ai-processor or human node of this workflow; you can ask: b`,
		"c4: error: ask_node needs node_id and question",
		`c5: stored "big" in the shared context`,
		"[cut: the result is 40968 bytes; only the first 32768 are shown]",
		"c7: error: argument key must be a JSON string, not number",
		"c8: error: refused: this execution has used its limit of 7 tool calls (metadata.max_tool_calls)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("a's output lacks %q", want)
		}
	}
	tools := commOf(x, workflow.CommToolCall)
	if len(tools) != len(calls) {
		t.Fatalf("%d tool_call entries, want %d", len(tools), len(calls))
	}
	for i, tc := range tools {
		ok := i == 4 || i == 5
		if tc.Metadata["success"] != ok || (!ok && tc.Metadata["error"] == nil) {
			t.Errorf("entry %d: %+v", i, tc.Metadata)
		}
	}
	if tools[1].Metadata["arguments"] != calls[1].Arguments || tools[5].Metadata["truncated"] != true {
		t.Errorf("malformed arguments kept as %v; truncated %v", tools[1].Metadata["arguments"], tools[5].Metadata["truncated"])
	}
	if n := len(commOf(x, workflow.CommAsk)); n != 0 {
		t.Errorf("%d asks were made, want none", n)
	}
}

// TestAutoFallsBackToText: a provider that refuses the tools gets the
// same node in the text protocol, and the record says so.
func TestAutoFallsBackToText(t *testing.T) {
	t.Parallel()
	var (
		mu                 sync.Mutex
		refused, answering int // requests with tools; b's answers offered tools
	)
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		last := req.Messages[len(req.Messages)-1].Content
		switch {
		case len(req.Tools) > 0:
			mu.Lock()
			refused++
			if strings.Contains(req.Messages[0].Content, "asks you the question") {
				answering++
			}
			mu.Unlock()
			return llmtest.Reply{Status: http.StatusBadRequest, Content: "model llama2 does not support tools"}
		case strings.HasPrefix(last, "Results of your calls"):
			return llmtest.Reply{Content: "Asker found: " + strings.ReplaceAll(last, "CALL:", "CALL -")}
		case strings.Contains(req.Messages[0].Content, "asks you the question"):
			return llmtest.Reply{Content: "42"}
		case strings.HasPrefix(last, "Find out") && strings.Contains(req.Messages[0].Content, "CALL: ask_node('node_id'"):
			return llmtest.Reply{Content: "CALL: ask_node('b', 'What is 6 times 7?')"}
		}
		return llmtest.Reply{Content: "done"}
	})
	e := newEnv(t, model, nil, executor.Config{ToolMode: workflow.ToolModeAuto})
	x := e.run(t, askFlow(t, "", ""), executor.Options{})
	out, _ := x.NodeStates["a"].Output.(string)
	if x.Status != workflow.ExecSuccess || !strings.Contains(out, "Calculator (b) answered: 42") {
		t.Fatalf("status %s, a's output %q", x.Status, out)
	}
	if !hasLog(x, "Node a: the model refused native tools") || !hasLog(x, "(tool_mode text)") {
		t.Errorf("the log does not say a fell back to text: %+v", x.Logs)
	}
	if m := x.NodeStates["a"].ToolMode; m != workflow.ToolModeText {
		t.Errorf("a's node state says tool mode %q after the fallback", m)
	}
	if n := len(commOf(x, workflow.CommToolCall)); n != 0 {
		t.Errorf("%d tool_call entries in text mode", n)
	}
	// a's run and b's, at the same time, may both offer tools; b's answer,
	// after a's refusal, no longer does.
	mu.Lock()
	defer mu.Unlock()
	if refused < 1 || refused > 2 || answering != 0 {
		t.Errorf("%d requests offered tools (%d of them b's answer), want 1 or 2 (and none)", refused, answering)
	}
}

// TestToolCallSecretsAreMasked: a secret the model puts in a tool call's
// arguments, and gets back in its result, is masked in the record's
// tool_call entries like everywhere else.
func TestToolCallSecretsAreMasked(t *testing.T) {
	t.Parallel()
	const secret = "sk-live-ZYXW987654"
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if res, ok := toolResults(req); ok {
			return llmtest.Reply{Content: "done: " + res}
		}
		if len(req.Tools) > 0 && strings.Contains(req.Messages[len(req.Messages)-1].Content, secret) {
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{
				{ID: "s1", Name: "set_shared_context", Arguments: `{"key":"k","value":"` + secret + `"}`},
				{ID: "s2", Name: "get_shared_context", Arguments: `{"key":"k"}`}}}
		}
		return llmtest.Reply{Content: "nothing to do"}
	})
	e := newEnv(t, model, nil, executor.Config{ToolMode: workflow.ToolModeNative})
	w := parse(t, `{"name":"secret","nodes":[
		{"id":"a","type":"ai-processor","config":{"can_communicate":true,"prompt":"use {{api_key}}"}},
		{"id":"b","type":"ai-processor","config":{"can_communicate":true}}],
		"variables":[{"name":"api_key","value":"placeholder","secret":true}]}`)
	x := e.run(t, w, executor.Options{Inputs: map[string]any{"api_key": secret}})
	tools := commOf(x, workflow.CommToolCall)
	if x.Status != workflow.ExecSuccess || len(tools) != 2 {
		t.Fatalf("status %s, tool calls %+v", x.Status, tools)
	}
	record, _ := json.Marshal(x)
	if strings.Contains(string(record), secret) {
		t.Fatalf("the record leaks the secret: %s", record)
	}
	if args, _ := tools[0].Metadata["arguments"].(map[string]any); args["value"] != workflow.Mask || !strings.Contains(tools[1].Content, workflow.Mask) {
		t.Errorf("tool_call entries %+v", tools)
	}
}

// TestToolRoundsAreBounded: a model that keeps calling tools gets their
// results for 3 follow-up rounds, then its calls are refused for one last
// turn, and its reply then is the node's output whatever it holds.
func TestToolRoundsAreBounded(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		last string
	)
	model, srv := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		if res, ok := toolResults(req); ok {
			mu.Lock()
			last = res
			mu.Unlock()
		}
		return llmtest.Reply{Content: "still calling", ToolCalls: []llmtest.ToolCall{{ID: "g", Name: "get_shared_context", Arguments: `{"key":"k"}`}}}
	})
	e := newEnv(t, model, nil, executor.Config{ToolMode: workflow.ToolModeNative})
	x := e.run(t, parse(t, `{"name":"loop","nodes":[{"id":"a","type":"ai-processor","config":{"can_communicate":true}}]}`), executor.Options{})
	if x.Status != workflow.ExecSuccess || x.NodeStates["a"].Output != "still calling" {
		t.Fatalf("status %s, output %v", x.Status, x.NodeStates["a"].Output)
	}
	if n := srv.Requests(); n != 5 {
		t.Errorf("%d model requests, want 5 (the task, 3 rounds of results, 1 of refusals)", n)
	}
	if n := len(commOf(x, workflow.CommToolCall)); n != 3 {
		t.Errorf("%d tool calls were made, want 3", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(last, "refused: this conversation has used its 3 rounds of tool calls") || !hasLog(x, "still called tools after 3 follow-up rounds") {
		t.Errorf("last tool results %q; logs %+v", last, x.Logs)
	}
}
