package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// tool is a function an agent's model may call natively: its name,
// description and JSON schema, which the model sees, and what calling it
// does. call gets the arguments as the model wrote them, checked to be a
// JSON object, and returns the text the model reads, or an error, which
// the model reads too ("error: ..."): a tool's failure is the model's to
// handle, never the node's. The communication functions are tools; so can
// be any other function an agent is given.
type tool struct {
	def  llm.Tool
	call func(ctx context.Context, args json.RawMessage) (string, error)
	// limit is the most of a result the model reads, for a tool with a
	// cap of its own; 0 is maxToolResultBytes.
	limit int
	// meta goes into the metadata of the tool's tool_call entries (an MCP
	// tool's server and name there).
	meta map[string]any
}

// maxToolResultBytes bounds the result of one tool call that goes back to
// the model: a long answer or a large shared value would otherwise fill
// the model's context in one round.
const maxToolResultBytes = 32 << 10

// nativeNote replaces the communication guide in the system prompt of a
// node that talks natively: the tools describe themselves.
const nativeNote = "\n\nYou are one agent in a team. You can talk to the other agents while you work by calling the tools you are given " +
	"(ask_node, broadcast_message, set_shared_context, get_shared_context). " +
	"Their results come back to you; then write your final answer."

// toolMode is the mode a conversation of the agent uses: its node's, or
// else the executor's default, "auto" when neither says.
func (a *agent) toolMode() string {
	switch {
	case a.cfg.ToolMode != "":
		return a.cfg.ToolMode
	case a.defaultToolMode != "":
		return a.defaultToolMode
	}
	return workflow.ToolModeAuto
}

// native reports whether a conversation offers the tools: always in
// native mode, and in auto mode when the model client carries tools
// (llm.ToolCaller). A provider that then refuses them sends auto back to
// text (converse).
func (a *agent) native() bool {
	switch a.toolMode() {
	case workflow.ToolModeNative:
		return true
	case workflow.ToolModeAuto:
		tc, ok := a.model.(llm.ToolCaller)
		return ok && tc.CallsTools(a.cfg.Model)
	}
	return false
}

// toolRound runs the tool calls of resp in its order and returns msgs
// with the assistant's calls and their results as tool messages. When
// stop is set the calls are refused instead: the conversation has used its
// rounds, and the model gets one last turn to answer.
func (a *agent) toolRound(ctx context.Context, msgs []llm.Message, resp llm.Response, tools []tool, round int, stop bool) []llm.Message {
	calls := make([]llm.ToolCall, len(resp.ToolCalls))
	for i, tc := range resp.ToolCalls {
		if tc.ID == "" {
			// A server that sends no ids still needs the results matched to the calls.
			tc.ID = fmt.Sprintf("call_%d_%d", round, i)
		}
		calls[i] = tc
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Content: resp.Content, ToolCalls: calls})
	for _, tc := range calls {
		text := fmt.Sprintf("refused: this conversation has used its %d rounds of tool calls; write your final answer now, without calling tools", a.maxRounds)
		if !stop && ctx.Err() == nil {
			text = a.callTool(ctx, tools, tc)
		}
		msgs = append(msgs, llm.Message{Role: llm.RoleTool, ToolCallID: tc.ID, Content: text})
	}
	return msgs
}

// nativePrompt returns msgs with the communication guide of the system
// message, which teaches CALL: lines, replaced by a short note.
func nativePrompt(msgs []llm.Message) []llm.Message {
	// A node without a system_prompt has the guide at the start, its
	// leading blank line trimmed.
	guide, note := strings.TrimLeft(guideIntro, "\n"), strings.TrimLeft(nativeNote, "\n")
	if len(msgs) == 0 || msgs[0].Role != llm.RoleSystem || !strings.Contains(msgs[0].Content, guide) {
		return msgs
	}
	out := append([]llm.Message(nil), msgs...)
	out[0].Content = strings.Replace(out[0].Content, guide, note, 1)
	return out
}

// callTool runs one tool call and returns what the model reads. Every
// call is counted against max_tool_calls and recorded in the
// communication log as a tool_call, whatever becomes of it.
func (a *agent) callTool(ctx context.Context, tools []tool, tc llm.ToolCall) string {
	started := time.Now()
	meta := map[string]any{"tool": tc.Name, "tool_call_id": tc.ID, "tool_mode": workflow.ToolModeNative}
	var args any = tc.Arguments
	var m map[string]any
	if err := json.Unmarshal([]byte(tc.Arguments), &m); err == nil {
		args = m
	}
	meta["arguments"] = args
	tctx, span := a.tel.startTool(ctx, tc.Name, tc.ID)
	text, err := a.runTool(tctx, tools, tc)
	endSpan(span, err)
	if err != nil {
		text = "error: " + err.Error()
	}
	limit := maxToolResultBytes
	for _, t := range tools {
		if t.def.Name == tc.Name && t.limit > 0 {
			limit = t.limit
		}
		if t.def.Name == tc.Name {
			for k, v := range t.meta {
				meta[k] = v
			}
		}
	}
	if n := len(text); n > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + fmt.Sprintf("\n[cut: the result is %d bytes; only the first %d are shown]", n, cut)
		meta["truncated"] = true
	}
	meta["latency_ms"] = float64(time.Since(started).Microseconds()) / 1000
	switch {
	case err != nil:
		meta["success"], meta["error"] = false, err.Error()
	case strings.HasPrefix(text, "error: "), strings.HasPrefix(text, "refused: "):
		// The communication functions answer their failures as text, the
		// way the text protocol reads them.
		meta["success"], meta["error"] = false, text
	default:
		meta["success"] = true
	}
	// The entry is from and to the calling node: a tool is no node, and
	// an entry to none would be drawn to nowhere on the dashboard.
	a.team.comm(workflow.CommEntry{From: a.node.ID, To: a.node.ID, Type: workflow.CommToolCall, Content: summary(text), Metadata: meta})
	return text
}

// runTool checks a tool call and calls the tool.
func (a *agent) runTool(ctx context.Context, tools []tool, tc llm.ToolCall) (string, error) {
	if err := a.guard.admitToolCall(ctx); err != nil {
		a.log(slog.LevelWarn, "%s", workflow.ErrorMessage(err))
		return "", errors.New(workflow.ErrorMessage(err))
	}
	var t *tool
	names := make([]string, len(tools))
	for i := range tools {
		names[i] = tools[i].def.Name
		if tools[i].def.Name == tc.Name {
			t = &tools[i]
		}
	}
	if t == nil {
		a.log(slog.LevelWarn, "Node %s called an unknown tool %q", a.node.ID, tc.Name)
		return "", fmt.Errorf("there is no tool %q; the tools are: %s", tc.Name, strings.Join(names, ", "))
	}
	args := json.RawMessage(strings.TrimSpace(tc.Arguments))
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil {
		a.log(slog.LevelWarn, "Node %s called %s with arguments that are not a JSON object: %v", a.node.ID, tc.Name, err)
		return "", fmt.Errorf("the arguments of %s must be a JSON object matching its schema: %v", tc.Name, err)
	}
	return t.call(ctx, args)
}

// summary is a tool result as the communication log shows it: the
// first 500 characters.
func summary(s string) string {
	const n = 500
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

// commTools are the communication functions as tools, for a conversation
// whose waiting nodes are chain. ask_node's schema lists the nodes the
// agent may ask, and is left out when there are none.
func (a *agent) commTools(chain []string) []tool {
	var askable []string
	for i := range a.wf.Nodes {
		if n := &a.wf.Nodes[i]; (n.Type == workflow.NodeAIProcessor || n.Type == workflow.NodeHuman) && n.ID != a.node.ID && a.graph.Index[n.ID] == i {
			askable = append(askable, n.ID)
		}
	}
	node := a.node
	var tools []tool
	if len(askable) > 0 {
		tools = append(tools, tool{
			def: llm.Tool{Name: workflow.CallAsk,
				Description: "Ask another agent of the team a question and get its answer.",
				Parameters: schema(map[string]any{
					"node_id":  map[string]any{"type": "string", "enum": askable, "description": "the id of the agent to ask"},
					"question": map[string]any{"type": "string", "description": "the question, complete in itself"},
					"context":  map[string]any{"type": "object", "description": "optional facts that go with the question"},
				}, "node_id", "question")},
			call: func(ctx context.Context, raw json.RawMessage) (string, error) {
				var args struct {
					NodeID   string         `json:"node_id"`
					Question string         `json:"question"`
					Context  map[string]any `json:"context"`
				}
				if err := decodeArgs(raw, &args); err != nil {
					return "", err
				}
				if args.NodeID == "" || strings.TrimSpace(args.Question) == "" {
					return "", errors.New("ask_node needs node_id and question")
				}
				return a.team.ask(ctx, node, args.NodeID, args.Question, args.Context, chain), nil
			},
		})
	}
	tools = append(tools,
		tool{
			def: llm.Tool{Name: workflow.CallBroadcast,
				Description: "Tell every other agent of the team something (or only the agents of the node types listed).",
				Parameters:  broadcastSchema},
			call: func(ctx context.Context, raw json.RawMessage) (string, error) {
				var args struct {
					Message     string   `json:"message"`
					TargetTypes []string `json:"target_types"`
				}
				if err := decodeArgs(raw, &args); err != nil {
					return "", err
				}
				if strings.TrimSpace(args.Message) == "" {
					return "", errors.New("broadcast_message needs a message")
				}
				return a.team.broadcast(ctx, node, args.Message, args.TargetTypes), nil
			},
		},
		tool{
			def: llm.Tool{Name: workflow.CallSetContext,
				Description: "Store a value under a key in the context every agent of the team can read.",
				Parameters:  setContextSchema},
			call: func(_ context.Context, raw json.RawMessage) (string, error) {
				var args struct {
					Key   string `json:"key"`
					Value *any   `json:"value"`
				}
				if err := decodeArgs(raw, &args); err != nil {
					return "", err
				}
				if args.Key == "" || args.Value == nil {
					return "", errors.New("set_shared_context needs key and value")
				}
				a.team.setShared(node.ID, args.Key, *args.Value)
				return fmt.Sprintf("stored %q in the shared context", args.Key), nil
			},
		},
		tool{
			def: llm.Tool{Name: workflow.CallGetContext,
				Description: "Read a value of the shared context.",
				Parameters:  getContextSchema},
			call: func(_ context.Context, raw json.RawMessage) (string, error) {
				var args struct {
					Key     string `json:"key"`
					Default *any   `json:"default"`
				}
				if err := decodeArgs(raw, &args); err != nil {
					return "", err
				}
				if args.Key == "" {
					return "", errors.New("get_shared_context needs a key")
				}
				v, ok := a.team.getShared(args.Key)
				switch {
				case !ok && args.Default != nil:
					return fmt.Sprintf("%q = %s (nothing is stored under it yet: this is the default you gave)", args.Key, renderValue(*args.Default)), nil
				case !ok:
					return fmt.Sprintf("nothing is stored under %q yet", args.Key), nil
				}
				return fmt.Sprintf("%q = %s", args.Key, renderValue(v)), nil
			},
		})
	return tools
}

// The schemas of the communication tools that name no node are the same
// for every conversation, so they are made once.
var (
	broadcastSchema = schema(map[string]any{
		"message":      map[string]any{"type": "string"},
		"target_types": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "optional node types, e.g. [\"ai-processor\"]"},
	}, "message")
	setContextSchema = schema(map[string]any{
		"key":   map[string]any{"type": "string"},
		"value": map[string]any{"type": "string", "description": "the value (any JSON value is kept as it is)"},
	}, "key", "value")
	getContextSchema = schema(map[string]any{
		"key":     map[string]any{"type": "string"},
		"default": map[string]any{"type": "string", "description": "optional: what to get when nothing is stored under the key"},
	}, "key")
)

// schema is the JSON schema of an object with the given properties, in
// sorted key order (encoding/json sorts map keys), the required ones
// listed.
func schema(props map[string]any, required ...string) json.RawMessage {
	data, err := json.Marshal(map[string]any{"type": "object", "properties": props, "required": required})
	if err != nil {
		panic(fmt.Sprintf("tool schema: %v", err)) // the schemas are literals above
	}
	return data
}

// decodeArgs reads a tool call's arguments into v, saying which argument
// has the wrong type.
func decodeArgs(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("argument %s must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Errorf("the arguments cannot be read: %v", err)
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice":
		return "array"
	case "map", "struct":
		return "object"
	}
	return goKind
}
