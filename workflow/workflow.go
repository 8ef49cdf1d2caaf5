package workflow

import (
	"bytes"
	"encoding/json"
	"time"
)

// Workflow statuses.
const (
	StatusDraft  = "draft"
	StatusActive = "active"
)

// Communication modes.
const (
	ModeSimple = "simple"
	ModePubSub = "pubsub"
)

// Placements of a pubsub execution's agents: on the workers that share the
// server's Redis (PlacementWorkers), or in the server itself
// (PlacementLocal). A run asks for PlacementAuto (workers when any is
// registered) or PlacementLocal; the record says which was used.
const (
	PlacementAuto    = "auto"
	PlacementWorkers = "workers"
	PlacementLocal   = "local"
)

// Node types known to this version.
const (
	NodeStart       = "start"
	NodeEnd         = "end"
	NodeAIProcessor = "ai-processor"
	// Action nodes (actions.go): they run in the server, never on a worker.
	NodeHTTP        = "http"
	NodeWebhook     = "webhook" // the original service's name for NodeHTTP
	NodeCondition   = "condition"
	NodeFilter      = "filter"
	NodeTransformer = "transformer"
	NodeDelay       = "delay"
	NodeEmail       = "email"
	NodeHuman       = "human" // asks a person a question; see HumanConfig
)

// Workflow is a stored workflow document: a graph of nodes joined by edges,
// with variables and an open metadata map whose unknown keys are kept.
type Workflow struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Status    string         `json:"status"`
	Metadata  map[string]any `json:"metadata"`
	Nodes     []Node         `json:"nodes"`
	Edges     []Edge         `json:"edges"`
	Variables []Variable     `json:"variables"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`

	graph *Graph // built by Parse; see Graph
}

// MarshalJSON writes the workflow with both "id" and "_id", as the original
// service's clients read "_id". It leaves "&", "<" and ">" as they are: an
// encoder that escapes them (json.Marshal) escapes this output too, and one
// that does not (the API's) must not find them escaped already.
func (w Workflow) MarshalJSON() ([]byte, error) {
	type plain Workflow
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		MongoID string `json:"_id"`
		plain
	}{w.ID, plain(w)}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Mode returns the workflow's communication mode, simple when unset.
func (w *Workflow) Mode() string {
	if m, ok := w.Metadata["communication_mode"].(string); ok && m != "" {
		return m
	}
	return ModeSimple
}

// Description returns metadata.description, or "".
func (w *Workflow) Description() string {
	s, _ := w.Metadata["description"].(string)
	return s
}

// MaxTimeoutSeconds is the longest timeout a workflow may set, a week;
// Validate refuses more.
const MaxTimeoutSeconds = 7 * 24 * 60 * 60

// MetaSeconds reads a duration in seconds from metadata[key], returning def
// when the key is absent or not a positive number.
func (w *Workflow) MetaSeconds(key string, def time.Duration) time.Duration {
	if d, ok := seconds(w.Metadata[key]); ok {
		return d
	}
	return def
}

// seconds converts a positive number of seconds to a duration. A number
// over MaxTimeoutSeconds, in a document stored before Validate refused it,
// counts as MaxTimeoutSeconds: converted as it is, it could pass the
// largest time.Duration and wrap to a negative one.
func seconds(v any) (time.Duration, bool) {
	f, ok := number(v)
	if !ok || !(f > 0) {
		return 0, false
	}
	d := time.Duration(min(f, MaxTimeoutSeconds) * float64(time.Second))
	return d, d > 0 // less than a nanosecond counts as unset, not as no time at all
}

// Node returns the node with the given id, or nil.
func (w *Workflow) Node(id string) *Node {
	for i := range w.Nodes {
		if w.Nodes[i].ID == id {
			return &w.Nodes[i]
		}
	}
	return nil
}

// Node is one step of a workflow. Config is kept as the open object it was
// given, unknown keys included; AI reads the typed ai-processor settings
// from it, and Graph holds them read once.
type Node struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Position map[string]any `json:"position,omitempty"`
	Config   map[string]any `json:"config"`
}

// AIConfig is the typed configuration of an ai-processor node.
type AIConfig struct {
	Name           string
	Description    string
	SystemPrompt   string
	Prompt         string
	Model          string
	Temperature    *float64
	MaxTokens      int
	CanCommunicate bool
	Timeout        time.Duration // 0: the executor's default
	// ToolMode is how the node's model reaches the others: ToolModeNative,
	// ToolModeText or ToolModeAuto; "" takes the executor's default.
	ToolMode string
	// Tools are the tools besides the communication functions that the
	// node may call, as patterns (see CheckToolPattern and AllowsTool).
	Tools []string
}

// Tool modes: the communication functions offered as native tools
// (tools / tool_calls), written as CALL: lines in the reply, or native when
// the provider answers tool calls and text otherwise.
const (
	ToolModeNative = "native"
	ToolModeText   = "text"
	ToolModeAuto   = "auto"
)

// ValidToolMode reports whether s names a tool mode.
func ValidToolMode(s string) bool {
	return s == ToolModeNative || s == ToolModeText || s == ToolModeAuto
}

// AI reads the node's ai-processor settings. Values of the wrong type are
// ignored here; Validate reports them.
func (n *Node) AI() AIConfig {
	c := AIConfig{Name: n.ID}
	str := func(k string) string { s, _ := n.Config[k].(string); return s }
	if s := str("name"); s != "" {
		c.Name = s
	}
	c.Description = str("description")
	c.SystemPrompt = str("system_prompt")
	c.Prompt = str("prompt")
	c.Model = str("model")
	if f, ok := number(n.Config["temperature"]); ok {
		c.Temperature = &f
	}
	if f, ok := number(n.Config["max_tokens"]); ok && f >= 1 {
		c.MaxTokens = int(min(f, maxTokensLimit))
	}
	c.CanCommunicate, _ = n.Config["can_communicate"].(bool)
	if s := str("tool_mode"); ValidToolMode(s) {
		c.ToolMode = s
	}
	if d, ok := seconds(n.Config["timeout_seconds"]); ok {
		c.Timeout = d
	}
	if list, ok := n.Config["tools"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok && CheckToolPattern(s) == nil {
				c.Tools = append(c.Tools, s)
			}
		}
	}
	return c
}

// Label is the node's display name: config.name when set, else its id.
func (n *Node) Label() string {
	if s, ok := n.Config["name"].(string); ok && s != "" {
		return s
	}
	return n.ID
}

// Edge says that To runs after From. When, on an edge leaving a condition
// node, is the branch it belongs to ("true", "false", a case label or
// "default"); see branch.go.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	When string `json:"when,omitempty"`
}

// Variable is a named workflow input with a default value. Run inputs
// override it by name.
type Variable struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Value       any    `json:"value"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
	Scope       string `json:"scope,omitempty"`
	Secret      bool   `json:"secret,omitempty"`
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// MetaInt reads a whole number from a metadata map.
func MetaInt(m map[string]any, key string) (int, bool) {
	f, ok := number(m[key])
	if !ok || f != float64(int64(f)) {
		return 0, false
	}
	return int(f), true
}
