package executor_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// teamToken is the secret the weather server of mcpTeamFlow asks for.
const teamToken = "team-t0ken-4417"

// mcpTeamFlow is a workflow where a asks b natively, and b may use the
// weather tool of an MCP server at url, which wants the secret variable
// token in its Authorization header.
func mcpTeamFlow(t *testing.T, url string) *workflow.Workflow {
	servers, _ := json.Marshal([]map[string]any{{"name": "weather", "url": url, "headers": map[string]string{"Authorization": "Bearer {{token}}"}}})
	return parse(t, `{"name":"team","metadata":{"mcp_servers":`+string(servers)+`},
		"variables":[{"name":"token","value":"`+teamToken+`","type":"string","secret":true}],
		"nodes":[{"id":"start","type":"start"},
		{"id":"a","type":"ai-processor","config":{"name":"Asker","prompt":"Find out the weather in Oslo.","can_communicate":true,"tool_mode":"native"}},
		{"id":"b","type":"ai-processor","config":{"name":"Forecaster","prompt":"Wait for questions.","can_communicate":true,"tool_mode":"native","tools":["weather.*"]}},
		{"id":"end","type":"end"}],
		"edges":[{"from":"start","to":"a"},{"from":"start","to":"b"},{"from":"a","to":"end"},{"from":"b","to":"end"}]}`)
}

// teamModel: a asks b with ask_node; b, asked, calls the MCP tool
// weather__weather_lookup and answers with its result; a answers with
// what b said. Any other request says what it lacked.
func teamModel(req openai.ChatCompletionRequest) llmtest.Reply {
	sys := req.Messages[0].Content
	last := req.Messages[len(req.Messages)-1].Content
	res, hasResults := toolResults(req)
	var names []string
	for _, tl := range req.Tools {
		names = append(names, tl.Function.Name)
	}
	switch {
	case strings.Contains(sys, "asks you the question") && hasResults:
		return llmtest.Reply{Content: "Forecaster says: " + strings.TrimPrefix(res, "w1: ")}
	case strings.Contains(sys, "asks you the question"):
		if !slices.Contains(names, "weather__weather_lookup") {
			return llmtest.Reply{Content: "b has no weather tool, only " + strings.Join(names, ",")}
		}
		return llmtest.Reply{Content: "Looking it up.", ToolCalls: []llmtest.ToolCall{{ID: "w1", Name: "weather__weather_lookup", Arguments: `{"city":"Oslo"}`}}}
	case hasResults:
		return llmtest.Reply{Content: "Asker found: " + res}
	case strings.HasPrefix(last, "Find out"):
		if !slices.Contains(names, "ask_node") || slices.Contains(names, "weather__weather_lookup") {
			return llmtest.Reply{Content: "a is offered " + strings.Join(names, ",")}
		}
		return llmtest.Reply{Content: "Let me ask.", ToolCalls: []llmtest.ToolCall{{ID: "call_1", Name: "ask_node", Arguments: `{"node_id":"b","question":"What is the weather in Oslo?"}`}}}
	}
	return llmtest.Reply{Content: "b's own run"}
}

// checkMCPTeam checks that a's output holds b's answer, which holds the
// MCP tool's result, and that the record has both tool calls, the ask
// and its answer, and no secret.
func checkMCPTeam(t *testing.T, x *workflow.Execution) {
	t.Helper()
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s (%s)\nlogs %+v", x.Status, x.Error, x.Logs)
	}
	out, _ := x.NodeStates["a"].Output.(string)
	if want := "Asker found: call_1: Forecaster (b) answered: Forecaster says: sunny in Oslo"; out != want {
		t.Fatalf("a's output %q, want %q", out, want)
	}
	calls := commOf(x, workflow.CommToolCall)
	var mcpCall, askCall bool
	for _, c := range calls {
		switch {
		case c.From == "a" && c.Metadata["tool"] == "ask_node" && c.Metadata["success"] == true:
			askCall = true
		case c.From == "b" && c.Metadata["mcp_server"] == "weather" && c.Metadata["mcp_tool"] == "weather.lookup" &&
			c.Metadata["success"] == true && c.Content == "sunny in Oslo":
			mcpCall = true
		}
	}
	if len(calls) != 2 || !mcpCall || !askCall {
		t.Fatalf("tool_call entries %+v", calls)
	}
	if asks, answers := commOf(x, workflow.CommAsk), commOf(x, workflow.CommResponse); len(asks) != 1 || len(answers) != 1 ||
		answers[0].Content != "Forecaster says: sunny in Oslo" {
		t.Fatalf("asks %+v, answers %+v", asks, answers)
	}
	if rec := mustJSON(t, x); strings.Contains(rec, teamToken) {
		t.Errorf("the record shows the secret")
	}
}

// TestMCPToolInAnswer: agent a asks b natively; b answers with an MCP
// tool (over streamable HTTP, its token a secret variable in a header),
// and a's output holds b's answer with the tool's result: in simple mode,
// in pubsub mode over miniredis and a real redis-server, and with both
// agents hosted by a worker.
func TestMCPToolInAnswer(t *testing.T) {
	t.Parallel()
	url := authMCPServer(t, teamToken)
	loopback := executor.HTTPConfig{AllowPrivate: []string{"127.0.0.1"}}
	t.Run("simple", func(t *testing.T) {
		t.Parallel()
		model, _ := openAIModel(t, teamModel)
		e := newEnv(t, model, nil, executor.Config{HTTP: loopback})
		x := e.run(t, mcpTeamFlow(t, url), executor.Options{})
		if x.Mode != workflow.ModeSimple {
			t.Fatalf("mode %s", x.Mode)
		}
		checkMCPTeam(t, x)
	})
	t.Run("pubsub", func(t *testing.T) {
		t.Parallel()
		bustest.ForEach(t, func(t *testing.T, redisURL string, ctl bustest.Controller) {
			model, _ := openAIModel(t, teamModel)
			e := newEnv(t, model, connectBus(t, redisURL), executor.Config{HTTP: loopback})
			x := e.run(t, mcpTeamFlow(t, url), executor.Options{Mode: workflow.ModePubSub})
			if x.Mode != workflow.ModePubSub {
				t.Fatalf("mode %s (%s)", x.Mode, x.FallbackReason)
			}
			checkMCPTeam(t, x)
		})
	})
	t.Run("workers", func(t *testing.T) {
		t.Parallel()
		bustest.ForEach(t, func(t *testing.T, redisURL string, ctl bustest.Controller) {
			server, _ := openAIModel(t, func(openai.ChatCompletionRequest) llmtest.Reply {
				return llmtest.Reply{Content: "the server's model was called"}
			})
			worker, _ := openAIModel(t, teamModel)
			we := newWorkerEnv(t, redisURL, server, 5*time.Second)
			we.http = loopback
			we.startWorker(t, "w1", worker, 5*time.Second)
			we.waitWorkers(t, "w1")
			x := we.run(t, mcpTeamFlow(t, url), executor.Options{Mode: workflow.ModePubSub})
			if x.Placement != workflow.PlacementWorkers || x.NodeStates["a"].Worker != "w1" || x.NodeStates["b"].Worker != "w1" {
				t.Fatalf("placement %s (%s), a ran on %q, b on %q", x.Placement, x.PlacementFallbackReason, x.NodeStates["a"].Worker, x.NodeStates["b"].Worker)
			}
			checkMCPTeam(t, x)
		})
	})
}
