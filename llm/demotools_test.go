package llm_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/llm"
)

func schemaOf(required []string, props ...string) json.RawMessage {
	p := map[string]any{}
	for _, k := range props {
		p[k] = map[string]any{"type": "string"}
	}
	b, _ := json.Marshal(map[string]any{"type": "object", "properties": p, "required": required})
	return b
}

var demoTools = []llm.Tool{
	{Name: "ask_node", Parameters: schemaOf([]string{"node_id", "question"}, "node_id", "question", "context")},
	{Name: "broadcast_message", Parameters: schemaOf([]string{"message"}, "message", "target_types")},
	{Name: "get_shared_context", Parameters: schemaOf([]string{"key"}, "key", "default")},
}

// TestDemoCallsTools: offered tools, the demo model turns the CALL statements of the prompt into
// native tool calls, arguments filling the parameters in schema order; after the tool results it
// gives a final answer listing them. Streamed or not, the reply is the same.
func TestDemoCallsTools(t *testing.T) {
	t.Parallel()
	if !llm.NewDemo().CallsTools("") {
		t.Fatal("CallsTools() = false")
	}
	r := demoRequest("student", "Student", llm.PurposeTask,
		`First CALL: ask_node('teacher', "Why is it \"green\"?", {'topic': 'plants', 'n': 2}) then
CALL: broadcast_message('done', ['ai-processor']) and CALL: get_shared_context('k')`)
	r.Tools = demoTools
	want := []llm.ToolCall{
		{ID: "call_demo_1", Name: "ask_node", Arguments: `{"context":{"n":2,"topic":"plants"},"node_id":"teacher","question":"Why is it \"green\"?"}`},
		{ID: "call_demo_2", Name: "broadcast_message", Arguments: `{"message":"done","target_types":["ai-processor"]}`},
		{ID: "call_demo_3", Name: "get_shared_context", Arguments: `{"key":"k"}`},
	}
	res := demoChat(t, r)
	if !reflect.DeepEqual(res.ToolCalls, want) {
		t.Fatalf("ToolCalls = %#v\nwant %#v", res.ToolCalls, want)
	}
	var deltas strings.Builder
	r.OnDelta = func(d string) { deltas.WriteString(d) }
	if streamed := demoChat(t, r); !reflect.DeepEqual(streamed, res) || deltas.String() != res.Content {
		t.Errorf("streamed reply %+v differs from %+v (deltas %q)", streamed, res, deltas.String())
	}

	r.OnDelta = nil
	r.Purpose = llm.PurposeFollowUp
	r.Messages = append(r.Messages, llm.Message{Role: llm.RoleAssistant, Content: res.Content, ToolCalls: res.ToolCalls},
		llm.Message{Role: llm.RoleTool, ToolCallID: "call_demo_1", Content: "Teacher answered: chlorophyll. CALL: x()"},
		llm.Message{Role: llm.RoleTool, ToolCallID: "call_demo_2", Content: "delivered"})
	fin := demoChat(t, r)
	if len(fin.ToolCalls) != 0 || fin.Content != "[demo model] Final answer from Student (student), using the results of my tool calls:\n"+
		"- Teacher answered: chlorophyll. CALL - x()\n- delivered" {
		t.Errorf("follow-up = %+v", fin)
	}

	// A statement of a tool not offered: the statements stay text, as without tools.
	r = demoRequest("student", "Student", llm.PurposeTask, "CALL: set_shared_context('k', 'v')")
	r.Tools = demoTools
	if res := demoChat(t, r); len(res.ToolCalls) != 0 || !strings.Contains(res.Content, "CALL: set_shared_context('k', 'v')") {
		t.Errorf("reply with an unoffered tool = %+v", res)
	}
}
