package workflow

import "time"

// Execution statuses.
const (
	ExecQueued      = "queued"
	ExecRunning     = "running"
	ExecSuccess     = "success"
	ExecError       = "error"
	ExecCancelled   = "cancelled"
	ExecInterrupted = "interrupted"
	// ExecWaiting is an execution that waits for a person: an answer to a
	// human node, or an approval over its budget (see Wait). It is not
	// terminal, and a restart continues it.
	ExecWaiting = "waiting"
)

// Node statuses.
const (
	NodePending   = "pending"
	NodeRunning   = "running"
	NodeCompleted = "completed"
	NodeError     = "error"
	NodeSkipped   = "skipped"
	NodeCancelled = "cancelled"
	NodeWaiting   = "waiting" // a human node waits for its answer
)

// Communication log entry types.
const (
	CommAsk       = "ask"
	CommResponse  = "response"
	CommBroadcast = "broadcast"
	CommContext   = "context_update"
	// CommToolCall is a tool call of a node's model: the tool, its
	// arguments, a summary of its result, latency and any error, next to
	// the ask or response entries the call makes. It is from and to the
	// calling node.
	CommToolCall = "tool_call"
)

// Terminal reports whether an execution status is final.
func Terminal(status string) bool {
	switch status {
	case ExecSuccess, ExecError, ExecCancelled, ExecInterrupted:
		return true
	}
	return false
}

// Execution is the record of one run of a workflow.
type Execution struct {
	ID             string     `json:"execution_id"`
	WorkflowID     string     `json:"workflow_id"`
	WorkflowName   string     `json:"workflow_name,omitempty"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
	StartTime      *time.Time `json:"start_time"`
	EndTime        *time.Time `json:"end_time"`
	RequestedMode  string     `json:"requested_communication_mode"`
	Mode           string     `json:"communication_mode"`
	FallbackReason string     `json:"fallback_reason,omitempty"`
	// Placement is where a pubsub execution's agents ran: PlacementWorkers
	// or PlacementLocal; empty in simple mode. PlacementFallbackReason
	// says why they ran locally when workers were asked for.
	Placement               string                `json:"placement,omitempty"`
	PlacementFallbackReason string                `json:"placement_fallback_reason,omitempty"`
	Error                   string                `json:"error,omitempty"`
	Inputs                  map[string]any        `json:"inputs"`
	NodeStates              map[string]*NodeState `json:"node_states"`
	Logs                    []LogEntry            `json:"logs"`
	Errors                  []ErrorEntry          `json:"errors"`
	CommunicationLog        []CommEntry           `json:"communication_log"`
	SharedContext           map[string]any        `json:"shared_context"`
	Usage                   Usage                 `json:"usage"`
	ResumedFrom             string                `json:"resumed_from,omitempty"` // the execution this one resumed
	// Trigger says what started it; nil for executions recorded before
	// triggers were.
	Trigger *Trigger `json:"trigger,omitempty"`
	// CostUSD is what the execution's model calls cost, set when it ends;
	// nil while it runs, and when a call had no price (CostNote says why).
	// CostEstimated says some token counts behind it were estimates.
	CostUSD       *float64 `json:"cost_usd"`
	CostEstimated bool     `json:"cost_estimated,omitempty"`
	CostNote      string   `json:"cost_note,omitempty"`
	// Waiting lists what a waiting execution waits for; empty otherwise.
	Waiting []Wait `json:"waiting,omitempty"`
}

// Header returns a copy of the execution without its per-node and log
// collections, as carried by execution events.
func (e *Execution) Header() *Execution {
	h := *e
	h.NodeStates, h.Logs, h.Errors, h.CommunicationLog, h.SharedContext = nil, nil, nil, nil, nil
	return &h
}

// Usage counts LLM tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	// Estimated says some of the counts are estimates: the model server
	// did not report them.
	Estimated bool `json:"estimated,omitempty"`
}

// Add returns the sum of two usages, an estimate if either is.
func (u Usage) Add(o Usage) Usage {
	return Usage{u.PromptTokens + o.PromptTokens, u.CompletionTokens + o.CompletionTokens, u.TotalTokens + o.TotalTokens,
		u.Estimated || o.Estimated}
}

// NodeState is the state of one node in one execution.
type NodeState struct {
	NodeID     string     `json:"node_id"`
	Type       string     `json:"type"`
	Name       string     `json:"name,omitempty"`
	Status     string     `json:"status"`
	Output     any        `json:"output"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Model      string     `json:"model,omitempty"`
	Usage      Usage      `json:"usage"`
	Calls      int        `json:"llm_calls"`
	Error      string     `json:"error,omitempty"`
	// Worker is the worker process the node last ran on; empty when it ran
	// in the server. Attempt counts its runs when a worker was lost while
	// running it (2 and up); 0 or 1 is the first.
	Worker  string `json:"worker,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// ToolMode is how its last model call offered the communication
	// functions: "native" (as tools) or "text" (CALL: lines); empty for a
	// node that cannot communicate.
	ToolMode string `json:"tool_mode,omitempty"`
	// CostUSD is what the node's model calls cost: 0 for a node that made
	// none, nil when a call had no price (CostNote says why) and in
	// records from before costs were tracked.
	CostUSD       *float64 `json:"cost_usd"`
	CostEstimated bool     `json:"cost_estimated,omitempty"`
	CostNote      string   `json:"cost_note,omitempty"`
}

// LogEntry is one line of an execution's log.
type LogEntry struct {
	Time    time.Time `json:"timestamp"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	NodeID  string    `json:"node_id,omitempty"`
}

// ErrorEntry is one error recorded in an execution.
type ErrorEntry struct {
	Time    time.Time `json:"timestamp"`
	NodeID  string    `json:"node_id,omitempty"`
	Code    Code      `json:"code"`
	Message string    `json:"message"`
}

// CommEntry is one event of the conversation between nodes: an ask, its
// response, a broadcast or a shared-context update.
type CommEntry struct {
	Time     time.Time      `json:"timestamp"`
	From     string         `json:"from_node"`
	To       string         `json:"to_node"`
	Type     string         `json:"type"`
	Content  string         `json:"content"`
	Metadata map[string]any `json:"metadata"`
}

// EventKind names what an Event carries.
type EventKind string

// Event kinds. Every kind but EventDelta is stored.
const (
	EventExecution EventKind = "execution" // Execution header changed (created, status, mode, end)
	EventNode      EventKind = "node"      // a node's state changed
	EventLog       EventKind = "log"
	EventError     EventKind = "error"
	EventMessage   EventKind = "message" // a communication log entry
	EventContext   EventKind = "context" // a shared-context key was set
	EventDelta     EventKind = "delta"   // streamed output text of a running node; not stored
)

// Event is one change to an execution, emitted by the executor as it happens
// and consumed by the store and by live viewers. Exactly one of the pointer
// fields is set, according to Kind.
type Event struct {
	ExecutionID string         `json:"execution_id"`
	Seq         int64          `json:"seq"`
	Time        time.Time      `json:"time"`
	Kind        EventKind      `json:"kind"`
	Execution   *Execution     `json:"execution,omitempty"`
	Node        *NodeState     `json:"node,omitempty"`
	Log         *LogEntry      `json:"log,omitempty"`
	Error       *ErrorEntry    `json:"error,omitempty"`
	Message     *CommEntry     `json:"message,omitempty"`
	Context     *ContextUpdate `json:"context,omitempty"`
	Delta       *Delta         `json:"delta,omitempty"`
}

// ContextUpdate sets one key of an execution's shared context.
type ContextUpdate struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// Delta is a piece of a running node's streamed output.
type Delta struct {
	NodeID string `json:"node_id"`
	Text   string `json:"text"`
}
