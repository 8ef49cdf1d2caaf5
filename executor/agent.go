package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// runAI runs an ai-processor node: its rendered prompt, then the calls of its
// reply, then follow-up turns with their results. Its output is the final
// reply.
func (x *execution) runAI(ctx context.Context, node *workflow.Node) (any, error) {
	cfg := x.aiOf(node)
	prompt, err := workflow.Render(cfg.Prompt, x.scope(cfg.Prompt))
	if err != nil {
		return nil, fmt.Errorf("render prompt of node %q: %w", node.ID, err)
	}
	if n, max := len(prompt), x.guard.limits().MaxPromptBytes; n > max {
		return nil, workflow.Errorf(workflow.CodeInvalid, "the rendered prompt of node %q is %d bytes; the limit is %d", node.ID, n, max)
	}
	if strings.TrimSpace(prompt) == "" {
		prompt = "Do your part of the work described in your instructions."
	}
	msgs := make([]llm.Message, 0, 2)
	if sys := x.systemPrompt(node); sys != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: sys})
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: prompt})
	if pl := x.placement; pl != nil {
		if out, remote, err := pl.run(ctx, node.ID, msgs); remote {
			return out, err
		}
	}
	return x.agentOf(node).converse(ctx, msgs, llm.PurposeTask, []string{node.ID}, true)
}

// scope is what a prompt of this execution can refer to. Variables and
// shared values are copied under the lock, and only those text's
// placeholders name: copying everything for every node made long chains
// quadratic. Outputs are not copied at all but read when the prompt is
// rendered (output): a node's output is set once, before its children
// start, and a prompt may only name its ancestors' (Validate), so reading
// them then gives what a copy gave, without a map per node.
func (x *execution) scope(text string) workflow.Scope {
	sc := workflow.Scope{ExecutionID: x.rec.ID, WorkflowID: x.wf.ID, Output: x.output, Trigger: x.rec.Trigger}
	names := workflow.Placeholders(text)
	if len(names) == 0 {
		return sc
	}
	var shared map[string]any
	x.mu.Lock()
	for _, name := range names {
		head, rest, _ := strings.Cut(name, ".")
		key, _, _ := strings.Cut(rest, ".")
		switch {
		case head == "outputs" && key != "", head == "trigger" && key != "":
		case head == "shared" && key != "":
			if v, ok := x.shared[key]; ok {
				if shared == nil {
					shared = map[string]any{}
				}
				shared[key] = v
			}
		default:
			if v, ok := x.vars[head]; ok {
				if sc.Vars == nil {
					sc.Vars = make(map[string]any, len(names))
				}
				sc.Vars[head] = v
			}
		}
	}
	x.mu.Unlock()
	// Shared is set even when nothing is found, so that {{shared.key}}
	// reads the shared context, never a variable named shared.
	if shared == nil {
		sc.Shared = func(string) (any, bool) { return nil, false }
	} else {
		sc.Shared = func(k string) (any, bool) { v, ok := shared[k]; return v, ok }
	}
	return sc
}

// output returns the output of a node that has finished.
func (x *execution) output(id string) (any, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	v, ok := x.outputs[id]
	return v, ok
}

// agent is one ai-processor node as an agent: what it needs to hold its
// conversations and answer questions, and nothing of the execution that
// coordinates it. It holds its node's config, from the workflow's graph
// (read only, shared by every execution of the workflow); a model client; a
// handle on the execution's loop guards; and a function that emits what it
// does (model usage, log lines, streamed text). Its calls (ask, broadcast,
// shared context) go to its team. The same value answers in the process
// that coordinates the execution and, with other handles, elsewhere.
type agent struct {
	node      *workflow.Node
	cfg       *workflow.AIConfig
	wf        *workflow.Workflow // the workflow it belongs to and its graph, read only: the other agents
	graph     *workflow.Graph
	model     LLM
	guard     guardHandle
	emit      func(agentEvent)
	team      team
	redact    *workflow.Redactor // masks secrets in streamed text; nil: no secrets
	maxRounds int
	// defaultToolMode is the tool mode of a node that sets none: the
	// executor's (SWITCHBOARD_TOOL_MODE), which a worker gets with the
	// agents it hosts; "" is auto.
	defaultToolMode string
	// http is how its http_request tool reaches the web: the executor's
	// settings, or a worker's own.
	http HTTPConfig
	// mcp is the MCP servers its execution reaches, with their tool lists
	// for the execution; nil: none.
	mcp *mcpLists
	// tel makes the spans of its model and tool calls; nil: none.
	tel *telemetry
}

// agentEvent is what an agent reports about itself: one model call
// (usage set), a log line (log set), or streamed text (delta set).
type agentEvent struct {
	node  string
	usage *modelCall
	level slog.Level
	log   string
	delta string
}

// modelCall is the accounting of one model call.
type modelCall struct {
	usage workflow.Usage
	model string // as the model reported it; "" when it did not
	// overBudget: the call took the execution over its token budget, which
	// ends the execution.
	overBudget bool
	// toolMode is how the conversation of a communicating node makes its
	// calls, as far as it is known at this call: native when the tools
	// were offered, text when they were not or the model wrote CALL:
	// lines instead; "" for a node that cannot communicate. It rides on
	// the usage, which every model call reports anyway.
	toolMode string
}

// team is what an agent's calls reach beyond the agent: the other agents,
// through the execution's transport, and the execution's shared context
// and broadcasts. It is safe for concurrent use.
type team interface {
	ask(ctx context.Context, from *workflow.Node, target, question string, qctx map[string]any, chain []string) string
	broadcast(ctx context.Context, from *workflow.Node, message string, types []string) string
	setShared(from, key string, value any)
	getShared(key string) (any, bool)
	// comm records an entry of the communication log (a tool call).
	comm(c workflow.CommEntry)
	// systemPrompt is the node's system message: its own and what it was
	// told (the communication guide, broadcasts so far).
	systemPrompt(node *workflow.Node) string
}

func (a *agent) log(level slog.Level, format string, args ...any) {
	a.emit(agentEvent{node: a.node.ID, level: level, log: fmt.Sprintf(format, args...)})
}

// converse calls the model, then performs the calls of each reply and
// sends their results back, up to maxRounds follow-ups. chain lists the
// nodes waiting on this conversation, the asker of the first ask first and
// this node last. own says whether this is the node's own run (its
// streamed text is shown live) rather than an answer to another node.
//
// The node's tool mode says how calls are made. In native mode the
// communication functions are offered as tools, with the node's own tools
// (config.tools, to a node that cannot communicate too; text mode goes
// without them): the model's tool calls run
// in its order and their results go back as tool messages. In text mode
// the CALL statements of a reply are carried out and their results go back
// in a user message. Auto offers the tools when the model client carries
// them, and goes back to text when the provider refuses them; a reply that
// writes CALL statements instead of calling tools (a prompt may ask for
// them, as the original service's files do) has them carried out.
func (a *agent) converse(ctx context.Context, msgs []llm.Message, purpose llm.Purpose, chain []string, own bool) (string, error) {
	node := a.node
	mode := a.toolMode()
	var tools []tool
	var defs []llm.Tool
	textMsgs := msgs
	comm := a.cfg.CanCommunicate
	// The node's own tools (config.tools) go with the communication
	// functions, and to a node that cannot communicate too: fetching a
	// page needs no team. They have no CALL: form, so a conversation in
	// text mode goes without them, and starts no MCP server.
	native := a.native()
	var ownTools []tool
	if native && len(a.cfg.Tools) > 0 {
		ownTools = a.ownTools(ctx)
	}
	if (comm || len(ownTools) > 0) && native {
		if comm {
			msgs = nativePrompt(msgs)
			tools = a.commTools(chain)
		}
		tools = append(tools, ownTools...)
		defs = make([]llm.Tool, len(tools))
		for i, t := range tools {
			defs[i] = t.def
		}
	} else if len(a.cfg.Tools) > 0 && !native {
		a.log(slog.LevelWarn, "Node %s: config.tools are offered as native tools only, and this conversation is in text mode (tool_mode %s): it goes without them", node.ID, mode)
	}
	stop := false // the rounds are used up: tool calls are refused, for one last turn
	used := ""    // the tool mode, for the record
	for round := 0; ; round++ {
		switch {
		case !comm && defs == nil:
		case defs == nil:
			used = workflow.ToolModeText
		case used == "":
			used = workflow.ToolModeNative
		}
		resp, err := a.chat(ctx, msgs, purpose, own, defs, used)
		if err != nil {
			if round == 0 && defs != nil && mode == workflow.ToolModeAuto && errors.Is(err, llm.ErrToolsRefused) {
				// Nothing was streamed or done: the first request was refused.
				a.log(slog.LevelWarn, "Node %s: the model refused native tools; using CALL statements instead, without config.tools (tool_mode auto): %v", node.ID, err)
				msgs, tools, defs, round = textMsgs, nil, nil, -1
				continue
			}
			return "", err
		}
		reply := resp.Content
		if len(resp.ToolCalls) > 0 && defs != nil {
			if stop {
				a.log(slog.LevelWarn, "Node %s still called tools after %d follow-up rounds; using its last reply as it is", node.ID, round-1)
				return reply, nil
			}
			stop = round >= a.maxRounds
			msgs = a.toolRound(ctx, msgs, resp, tools, round, stop)
			if ctx.Err() != nil {
				return "", context.Cause(ctx)
			}
			purpose = llm.PurposeFollowUp
			continue
		}
		if !comm {
			if strings.Contains(reply, "CALL:") && len(workflow.ParseCalls(reply)) > 0 {
				a.log(slog.LevelWarn, "Node %s wrote CALL statements, but it cannot communicate (can_communicate is not true): they were not carried out", node.ID)
			}
			return reply, nil
		}
		var calls []workflow.Call
		if mode != workflow.ToolModeNative {
			calls = workflow.ParseCalls(reply)
		}
		if len(calls) == 0 {
			return reply, nil
		}
		if stop || round >= a.maxRounds {
			a.log(slog.LevelWarn, "Node %s still made calls after %d follow-up rounds; using its last reply as it is", node.ID, round)
			return reply, nil
		}
		used = workflow.ToolModeText // CALL: lines, though the tools were offered
		results := a.perform(ctx, calls, chain)
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		msgs = append(msgs,
			llm.Message{Role: llm.RoleAssistant, Content: reply},
			llm.Message{Role: llm.RoleUser, Content: resultsMessage(results)})
		purpose = llm.PurposeFollowUp
	}
}

// chat makes one model call, offering tools, and accounts for it.
func (a *agent) chat(ctx context.Context, msgs []llm.Message, purpose llm.Purpose, own bool, tools []llm.Tool, toolMode string) (llm.Response, error) {
	node, cfg := a.node, a.cfg
	req := llm.Request{
		Model: cfg.Model, Messages: msgs, Temperature: cfg.Temperature, MaxTokens: cfg.MaxTokens,
		Agent: node.ID, AgentName: cfg.Name, Purpose: purpose, Tools: tools,
	}
	// A secret the model streams may be cut across deltas, where masking
	// each delta on its own misses it: the masker holds back what could
	// still be the start of one. Without secrets it is nil and holds
	// nothing back.
	mask := a.redact.Stream()
	if own {
		req.OnDelta = func(d string) {
			if d = mask.Write(d); d != "" {
				a.emit(agentEvent{node: node.ID, delta: d})
			}
		}
	}
	if err := a.guard.admitLLMCall(ctx); err != nil {
		a.log(slog.LevelWarn, "%s", workflow.ErrorMessage(err))
		return llm.Response{}, err
	}
	cctx, span := a.tel.startChat(ctx, cfg.Model, node.ID)
	resp, err := a.model.Chat(cctx, req)
	endChat(span, resp, err)
	if err != nil {
		var le *llm.Error
		if errors.Is(err, llm.ErrToolsRefused) {
			return llm.Response{}, err
		}
		if errors.As(err, &le) && le.Retryable {
			return llm.Response{}, &workflow.Error{Code: workflow.CodeUnavailable, Message: fmt.Sprintf("the model did not answer node %q", node.ID), Err: err}
		}
		return llm.Response{}, fmt.Errorf("model call for node %q: %w", node.ID, err)
	}
	if rest := mask.Flush(); rest != "" {
		a.emit(agentEvent{node: node.ID, delta: rest})
	}
	limits := a.guard.limits()
	if n, max := len(resp.Content)+len(toolCallsText(resp.ToolCalls)), limits.MaxReplyBytes; n > max {
		return llm.Response{}, workflow.Errorf(workflow.CodeInvalid, "the model's reply to node %q is %d bytes; the limit is %d", node.ID, n, max)
	}
	call := modelCall{usage: workflow.Usage{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens,
		TotalTokens: resp.Usage.TotalTokens, Estimated: resp.Usage.Estimated}, model: resp.Model, toolMode: toolMode}
	total, over := a.guard.spend(ctx, call.usage.TotalTokens)
	if over {
		a.log(slog.LevelError, "Token budget exceeded: %d tokens used, budget %d; ending the execution", total, limits.TokenBudget)
		call.overBudget = true
	}
	a.emit(agentEvent{node: node.ID, usage: &call})
	if err := a.guard.holdBudget(ctx); err != nil {
		return llm.Response{}, err
	}
	if over {
		return llm.Response{}, errBudget
	}
	if errors.Is(context.Cause(ctx), errBudget) { // over budget_usd: the execution priced the call and ended
		return llm.Response{}, errBudget
	}
	return resp, nil
}

// onAgentEvent is how the execution takes what its agents emit: usage goes
// into the node's state and the execution's total, log lines and streamed
// text into its events; a call over the token budget ends the execution.
func (x *execution) onAgentEvent(ev agentEvent) {
	switch {
	case ev.usage != nil:
		c := ev.usage
		cost := x.priceCall(ev.node, c)
		x.mu.Lock()
		s := x.states[ev.node]
		s.Usage = s.Usage.Add(c.usage)
		s.Calls++
		if c.model != "" {
			s.Model = c.model
		}
		if c.toolMode != "" {
			s.ToolMode = c.toolMode
		}
		x.usage = x.usage.Add(c.usage)
		x.addCost(s, cost)
		x.noteLate(ev.node, s)
		x.mu.Unlock()
		if c.overBudget {
			x.cancel(errBudget)
		}
	case ev.log != "":
		x.logText(ev.level, ev.node, ev.log)
	case ev.delta != "":
		x.delta(ev.node, ev.delta)
	}
}

// toolCallsText is the text of tool calls, for the reply size limit.
func toolCallsText(calls []llm.ToolCall) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.Name)
		b.WriteString(c.Arguments)
	}
	return b.String()
}

// delta shows streamed text of node, masked already, to live subscribers.
func (x *execution) delta(node, text string) {
	ev := x.newEvent(workflow.EventDelta)
	ev.Delta = &workflow.Delta{NodeID: node, Text: text}
	x.send(ev)
}

type callResult struct {
	call string
	text string
}

// perform carries out a reply's calls in text order. Every call gets a
// result, including refused and malformed ones, so the model learns why.
func (a *agent) perform(ctx context.Context, calls []workflow.Call, chain []string) []callResult {
	results := make([]callResult, 0, len(calls))
	for _, c := range calls {
		if ctx.Err() != nil {
			break
		}
		results = append(results, callResult{c.Raw, a.performOne(ctx, c, chain)})
	}
	return results
}

func (a *agent) performOne(ctx context.Context, c workflow.Call, chain []string) string {
	node := a.node
	if c.Err != nil {
		a.log(slog.LevelWarn, "Node %s wrote a malformed call %q: %v", node.ID, c.Raw, c.Err)
		if c.Name == "" { // the error already shows how to write a call
			return fmt.Sprintf("error: %v.", c.Err)
		}
		return fmt.Sprintf("error: %v. Write calls like CALL: ask_node('node_id', 'question').", c.Err)
	}
	ctx, span := a.tel.startTool(ctx, c.Name, "")
	defer span.End()
	switch c.Name {
	case workflow.CallAsk:
		return a.team.ask(ctx, node, c.Arg(0), c.Arg(1), c.Dict(2), chain)
	case workflow.CallBroadcast:
		return a.team.broadcast(ctx, node, c.Arg(0), c.Strings(1))
	case workflow.CallSetContext:
		a.team.setShared(node.ID, c.Arg(0), c.Args[1])
		return fmt.Sprintf("stored %q in the shared context", c.Arg(0))
	case workflow.CallGetContext:
		v, ok := a.team.getShared(c.Arg(0))
		if !ok && len(c.Args) > 1 {
			return fmt.Sprintf("%q = %s (nothing is stored under it yet: this is the default you gave)", c.Arg(0), renderValue(c.Args[1]))
		}
		if !ok {
			return fmt.Sprintf("nothing is stored under %q yet", c.Arg(0))
		}
		return fmt.Sprintf("%q = %s", c.Arg(0), renderValue(v))
	}
	return "error: unknown function " + c.Name
}

func renderValue(v any) string {
	s, err := workflow.Render("{{v}}", workflow.Scope{Vars: map[string]any{"v": v}})
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

func (x *execution) setShared(from, key string, value any) {
	x.mu.Lock()
	x.shared[key] = value
	x.mu.Unlock()
	ev := x.newEvent(workflow.EventContext)
	ev.Context = &workflow.ContextUpdate{Key: key, Value: value}
	x.send(ev)
	x.comm(workflow.CommEntry{From: from, Type: workflow.CommContext, Content: key + " = " + renderValue(value),
		Metadata: map[string]any{"key": key, "mode": x.rec.Mode}})
}

func (x *execution) getShared(key string) (any, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	v, ok := x.shared[key]
	return v, ok
}

func (x *execution) comm(c workflow.CommEntry) {
	ev := x.newEvent(workflow.EventMessage)
	if c.Time.IsZero() {
		c.Time = ev.Time
	}
	if c.Metadata == nil {
		c.Metadata = map[string]any{}
	}
	ev.Message = &c
	x.send(ev)
}

// askContext bounds an ask, and is the one place that works out its
// deadline: the deadline given (an asker's, as its QUERY's expires_at
// carries it), or else timeout from now. When it passes, the cause says
// that target gave no answer in time.
func askContext(ctx context.Context, deadline time.Time, timeout time.Duration, target string) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return context.WithTimeoutCause(ctx, timeout, &askTimedOut{target: target, timeout: timeout})
	}
	return context.WithDeadlineCause(ctx, deadline, &askTimedOut{target: target, deadline: deadline})
}

// askTimedOut is the cause of an ask's deadline; its message is only
// formatted when the deadline passes, which few asks see.
type askTimedOut struct {
	target   string
	timeout  time.Duration // set when the ask had a timeout,
	deadline time.Time     // else the deadline it was given
}

func (e *askTimedOut) Error() string {
	if e.timeout > 0 {
		return fmt.Sprintf("no answer from %q within %s", e.target, e.timeout)
	}
	return fmt.Sprintf("no answer from %q before %s", e.target, e.deadline.UTC().Format(time.RFC3339Nano))
}

// ask is the ask of one of this execution's agents hosted in the server.
func (x *execution) ask(ctx context.Context, node *workflow.Node, target, question string, qctx map[string]any, chain []string) string {
	return x.crew.ask(ctx, node, target, question, qctx, chain)
}

// answer is how the agent answers a question: a fresh conversation with
// its own system prompt, model and settings, whose own calls nest one level
// deeper. It is what an agent's query handler runs in either mode.
func (a *agent) answer(ctx context.Context, r askRequest) (string, error) {
	if a.node.Type == workflow.NodeHuman {
		if p, ok := a.team.(*execution); ok {
			return p.answerPerson(ctx, a.node, r)
		}
		return "", fmt.Errorf("human node %q answers only in the server", a.node.ID)
	}
	from := r.from
	if i, ok := a.graph.Index[r.from]; ok {
		from = fmt.Sprintf("%s (%s)", a.wf.Nodes[i].Label(), r.from)
	}
	// The question is the whole user message, as the asker wrote it; who
	// asks goes in the system prompt.
	sys := a.team.systemPrompt(a.node) + fmt.Sprintf("\n\n%s asks you the question in the next message. Answer it directly and briefly.", from)
	if len(r.context) > 0 {
		sys += "\nWith the question, " + from + " gives you this context (JSON): " + contextText(r.context)
	}
	msgs := []llm.Message{
		{Role: llm.RoleSystem, Content: strings.TrimSpace(sys)},
		{Role: llm.RoleUser, Content: r.question},
	}
	chain := append(append([]string{}, r.chain...), r.to)
	return a.converse(ctx, msgs, llm.PurposeAnswer, chain, false)
}

// answer is how node r.to of this execution answers r.
func (x *execution) answer(ctx context.Context, r askRequest) (string, error) {
	t := x.node(r.to)
	if t == nil {
		return "", fmt.Errorf("no node %q", r.to)
	}
	return x.agentOf(t).answer(ctx, r)
}

// broadcast tells every communicating node of the listed types (all when
// none are listed). Nodes that run later see it in their system prompt.
func (x *execution) broadcast(ctx context.Context, node *workflow.Node, message string, types []string) string {
	res := x.transport.broadcast(ctx, broadcastRequest{from: node.ID, message: message, types: types})
	return broadcastSummary(x.recordBroadcast(node.ID, message, types, res))
}

// recordBroadcast keeps a broadcast for the system prompts of the nodes
// that run later, records it in the communication log, and returns its
// recipients. A broadcast of an agent hosted by a worker is recorded here
// too, when its event arrives.
func (x *execution) recordBroadcast(from, message string, types []string, res broadcastResult) []string {
	to := recipients(x.wf, x.graph, from, types)
	x.mu.Lock()
	x.broadcasts = append(x.broadcasts, broadcast{From: from, Message: message, Types: types})
	x.mu.Unlock()
	meta := map[string]any{"mode": res.transport, "transport": res.transport, "recipients": to}
	if len(types) > 0 {
		meta["target_types"] = types
	}
	if res.messageID != "" {
		meta["message_id"] = res.messageID
	}
	if res.err != nil {
		meta["error"] = res.err.Error()
	}
	x.comm(workflow.CommEntry{From: from, To: "*", Type: workflow.CommBroadcast, Content: message, Metadata: meta})
	if pl := x.placement; pl != nil {
		pl.sendBroadcasts("")
	}
	return to
}

// recipients are the nodes a broadcast from node from to the node types
// types (all when none) tells: the other communicating ai-processors.
func recipients(wf *workflow.Workflow, g *workflow.Graph, from string, types []string) []string {
	var to []string
	for i := range wf.Nodes {
		n := &wf.Nodes[i]
		if n.ID != from && n.Type == workflow.NodeAIProcessor && g.AI[i].CanCommunicate && matchesType(n.Type, types) {
			to = append(to, n.ID)
		}
	}
	return to
}

// broadcastSummary is what the broadcasting model reads as its call's result.
func broadcastSummary(to []string) string {
	return fmt.Sprintf("broadcast delivered to %d agent(s): %s", len(to), strings.Join(to, ", "))
}

// contextText is an ask's context as the answering model reads it: JSON,
// keys sorted; "" for none.
func contextText(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Sprint(m)
	}
	return string(data)
}

// queryContext is the content.context of the QUERY for r: the asker's
// context, where the original service's agents read it, and the keys this
// executor answers with, which win over the asker's keys of those names.
func queryContext(r askRequest) map[string]any {
	m := make(map[string]any, len(r.context)+3)
	for k, v := range r.context {
		m[k] = v
	}
	m["chain"], m["from_node"], m["to_node"] = r.chain, r.from, r.to
	return m
}

// askerContext returns the asker's context from a QUERY's content.context,
// or nil when it holds nothing else.
func askerContext(qc map[string]any) map[string]any {
	var m map[string]any
	for k, v := range qc {
		switch k {
		case "chain", "from_node", "to_node":
			continue
		}
		if m == nil {
			m = make(map[string]any, len(qc))
		}
		m[k] = v
	}
	return m
}

func copyMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
