package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// Worker mode's messages between the server and its workers.
//
// Work that must not be lost goes through Redis Streams. The server adds
// task_requests to the stream of the worker it placed an agent on
// (bus.WorkerTasksStream): host the agents of an execution, run a node,
// release the execution. The worker adds task_responses to the server's
// result stream (bus.ServerResultsStream): the agents are hosted, a node's
// result, and the events of its agents (model usage, log lines, the
// communication log, shared-context updates, broadcasts, settled asks).
// Every entry carries the execution, the node (or "*" for the whole
// execution) and the attempt, and the server applies an attempt's result
// and events only while that attempt is the node's current one.
//
// What needs an answer at once goes over Pub/Sub as a query to the
// server's own agent channel, answered like any ask: a guard's decision on
// an ask, a shared-context value, a node's system prompt. Streamed text
// goes that way too, as notifications that may be lost.
const (
	opHost    = "host"
	opRun     = "run"
	opRelease = "release"

	opHosted = "hosted"
	opResult = "result"
	opEvent  = "event"

	rpcAdmitAsk     = "admit_ask"
	rpcAdmitCall    = "admit_call"
	rpcAdmitTool    = "admit_tool"
	rpcGetShared    = "get_shared"
	rpcSystemPrompt = "system_prompt"
	noteDelta       = "delta"
)

// allNodes is the node id of a task about a whole execution.
const allNodes = "*"

// codeNotHosted is the error code of a run sent to a worker that does not
// host its agent (it lost it, or restarted): the server places the agent
// again instead of failing the node.
const codeNotHosted workflow.Code = "not_hosted"

// taskPayload is the body of a task_request (server → worker).
type taskPayload struct {
	Op string `json:"op"`
	// Server is the agent id of the server: its RPCs and streamed text go
	// to bus.Channel(Server), its events to bus.ServerResultsStream.
	Server string `json:"server"`

	// host: the workflow, the agents to host and what they need.
	Workflow     json.RawMessage `json:"workflow,omitempty"`
	Agents       []string        `json:"agents,omitempty"`
	Secrets      []string        `json:"secrets,omitempty"` // values to mask in streamed text
	AskTimeoutMS int64           `json:"ask_timeout_ms,omitempty"`
	Limits       *Limits         `json:"limits,omitempty"`
	MaxRounds    int             `json:"max_rounds,omitempty"`
	ToolMode     string          `json:"tool_mode,omitempty"` // the default tool mode of the server
	MCPVars      map[string]any  `json:"mcp_vars,omitempty"`  // the run variables the headers and env of the workflow's MCP servers name

	// run: the node's opening messages, rendered by the server, and the
	// node's deadline.
	Messages []llm.Message `json:"messages,omitempty"`
	Deadline time.Time     `json:"deadline,omitzero"`
	// Trace is the W3C traceparent of the node's span in the server, when
	// it is traced: the worker's spans of the run are its children.
	Trace string `json:"traceparent,omitempty"`
	// Broadcasts are the execution's so far (see teamprompt.go).
	Broadcasts []broadcast `json:"broadcasts,omitempty"`
}

// resultPayload is the body of a task_response (worker → server).
type resultPayload struct {
	Op     string `json:"op"`
	Worker string `json:"worker"`

	// result: the node's output, or why there is none.
	Output string       `json:"output,omitempty"`
	Error  *remoteError `json:"error,omitempty"`

	// event: what an agent did.
	Event *remoteEvent `json:"event,omitempty"`
}

type remoteError struct {
	Code    workflow.Code `json:"code,omitempty"`
	Message string        `json:"message"`
}

// remoteEvent is one thing an agent hosted by a worker reports.
type remoteEvent struct {
	Kind string `json:"kind"` // usage, log, comm, shared, broadcast, settle, ask (Text: its outcome), calls

	Usage    *workflow.Usage `json:"usage,omitempty"` // usage
	Model    string          `json:"model,omitempty"`
	ToolMode string          `json:"tool_mode,omitempty"`

	Level int    `json:"level,omitempty"` // log: slog level
	Text  string `json:"text,omitempty"`  // log line; broadcast message; settled answer

	Comm *workflow.CommEntry `json:"comm,omitempty"` // comm

	Key   string `json:"key,omitempty"` // shared
	Value any    `json:"value,omitempty"`

	Types []string `json:"types,omitempty"` // broadcast

	Ticket string `json:"ticket,omitempty"` // settle
	ID     string `json:"id,omitempty"`
	OK     bool   `json:"ok,omitempty"`

	Count int `json:"count,omitempty"` // calls: granted model calls handed back unmade
}

// rpcRequest and rpcReply are the arguments and the result of a query to
// the server, carried as JSON text in the query's context and response.
type rpcRequest struct {
	Node     string `json:"node"` // the asking agent's node
	To       string `json:"to,omitempty"`
	Question string `json:"question,omitempty"`
	Key      string `json:"key,omitempty"`
	Want     int    `json:"want,omitempty"` // admit_call: the calls wanted at once (see callGrant)
}

// callGrant is how many model calls a worker asks the server to admit at
// once for the agents of an execution it hosts; it makes them without
// asking again. While the execution is far from max_llm_calls the server
// grants them all, and the calls count as made once granted, until the
// worker hands back those it did not make, when it has no node run of the
// execution under way (hostedExec.working).
const callGrant = 8

type rpcReply struct {
	Refusal string `json:"refusal,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Ticket  string `json:"ticket,omitempty"`
	Repeat  *struct {
		Answer string `json:"answer"`
		ID     string `json:"id,omitempty"`
		OK     bool   `json:"ok"`
	} `json:"repeat,omitempty"`
	Value  any    `json:"value,omitempty"`
	Found  bool   `json:"found,omitempty"`
	Prompt string `json:"prompt,omitempty"`
	// Granted is how many model calls admit_call admitted; 0 from a
	// server that admits one at a time.
	Granted int `json:"granted,omitempty"`
}

// rpcArgs is the key of a query's context that holds an rpcRequest.
const rpcArgs = "args"

// callServer asks the server (its agent id) op with req from the worker's
// agent id, and decodes the reply into out. ctx bounds it.
func callServer(ctx context.Context, ps PubSub, from, server, execID string, op string, req rpcRequest, out *rpcReply) error {
	args, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s: %w", op, err)
	}
	timeout := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	q := bus.NewQuery(from, server, op, map[string]any{rpcArgs: string(args)}, bus.Meta(execID, ""), timeout)
	reply, err := ps.Ask(ctx, bus.Channel(server), q, timeout)
	if err != nil {
		return fmt.Errorf("ask the server %s: %w", op, err)
	}
	text, err := reply.Answer()
	if err != nil {
		return fmt.Errorf("the server refused %s: %w", op, err)
	}
	if err := json.Unmarshal([]byte(text), out); err != nil {
		return fmt.Errorf("decode the server's %s reply: %w", op, err)
	}
	return nil
}

// sleepCtx waits d or until ctx ends, and then returns ctx's error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
