package bus

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"
)

// BroadcastChannel is the channel every agent may listen on for messages addressed to all
// agents. Broadcasts carry the execution id in their metadata; agents of other executions
// ignore them.
const BroadcastChannel = "agent:messages:broadcast"

// ChannelPattern matches every channel of the protocol, agents' and broadcast; it is what
// `redis-cli PSUBSCRIBE 'agent:messages:*'` and [Bus.Monitor] watch.
const ChannelPattern = "agent:messages:*"

// channelPrefix is the part of an agent's channel before its agent id.
const channelPrefix = "agent:messages:"

// Metadata keys every message carries.
const (
	// MetaExecutionID is the metadata key holding the id of the execution a message belongs to.
	MetaExecutionID = "execution_id"
	// MetaWorkflowID is the metadata key holding the id of the workflow a message belongs to.
	MetaWorkflowID = "workflow_id"
)

// AgentID returns the agent id of node nodeID in execution executionID:
// "node-{executionID}-{nodeID}". It never fails and is safe for concurrent use. The id is not
// parsed back, so ids containing "-" are fine.
func AgentID(executionID, nodeID string) string {
	return "node-" + executionID + "-" + nodeID
}

// Channel returns the channel agent agentID listens on: "agent:messages:{agentID}". It never
// fails and is safe for concurrent use.
func Channel(agentID string) string {
	return channelPrefix + agentID
}

// MessageType is the "type" field of a [Message]. Values other than the constants below are
// carried through unchanged, so that newer tools can add types. Decoding lowercases the type,
// so that "QUERY" and "Response", as other writers spell them, are the constants below; the
// bus always sends them lowercase.
type MessageType string

// The message types of the protocol.
const (
	TypeQuery        MessageType = "query"
	TypeResponse     MessageType = "response"
	TypeBroadcast    MessageType = "broadcast"
	TypeTaskRequest  MessageType = "task_request"
	TypeTaskResponse MessageType = "task_response"
	TypeNotification MessageType = "notification"
	TypeError        MessageType = "error"
)

// Priority is the "priority" field of a [Message].
type Priority string

// The priorities of the protocol.
const (
	PriorityLow    Priority = "low"
	PriorityMedium Priority = "medium"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// timeLayout is how timestamps go on the wire: RFC 3339 in UTC, always with microseconds, so
// that readers written in other languages (Python's datetime.fromisoformat among them) parse
// every timestamp the same way.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// naiveLayout accepts timestamps without a zone, as Python's datetime.utcnow().isoformat()
// writes them; they are read as UTC.
const naiveLayout = "2006-01-02T15:04:05.999999999"

// ErrMalformed is wrapped by the error [Message.UnmarshalJSON] and [Message.Validate] return for
// a payload that is not a protocol message.
var ErrMalformed = errors.New("bus: malformed message")

// ErrRemote is wrapped by the error [Message.Answer] returns when the responding agent reported
// that it could not answer (a response with "success": false).
var ErrRemote = errors.New("bus: remote agent reported an error")

// Message is one protocol message. It encodes to exactly these JSON fields:
//
//	id                 string
//	type               string (see MessageType)
//	from_agent         string, the sender's agent id
//	to_agent           string, the recipient's agent id; "" for a broadcast
//	subject            string
//	content            object (never null; an empty object when Content is nil)
//	priority           string (see Priority)
//	requires_response  bool
//	reply_to           string, the id of the query answered, or null when not a reply
//	timestamp          RFC 3339 in UTC with microseconds, e.g. "2024-11-27T06:46:40.123456Z"
//	expires_at         same format, or null when the message does not expire
//	metadata           object (never null) holding execution_id and workflow_id
//
// Map keys are written sorted; strings are not HTML-escaped.
//
// Decoding is lenient where other writers differ harmlessly: field names match ignoring case (as
// with encoding/json), unknown fields are skipped, timestamps may have any fraction, any offset
// or no zone at all (read as UTC), and reply_to may be "" or missing (read as nil). Decoding
// fails, with an error wrapping [ErrMalformed], when the payload is not one JSON object in
// UTF-8, when a field has the wrong JSON type, and when a name appears twice in one object.
// Encoding replaces invalid UTF-8 in a string by U+FFFD, so what the bus sends always decodes.
//
// A Message is a value; its Content and Metadata maps are shared by copies, so a handler must
// not modify them while another goroutine may read them.
type Message struct {
	ID               string         `json:"id"`
	Type             MessageType    `json:"type"`
	FromAgent        string         `json:"from_agent"`
	ToAgent          string         `json:"to_agent"`
	Subject          string         `json:"subject"`
	Content          map[string]any `json:"content"`
	Priority         Priority       `json:"priority"`
	RequiresResponse bool           `json:"requires_response"`
	ReplyTo          *string        `json:"reply_to"`
	Timestamp        time.Time      `json:"timestamp"`
	ExpiresAt        *time.Time     `json:"expires_at"`
	Metadata         map[string]any `json:"metadata"`
}

// MarshalJSON encodes m in the wire format described on [Message]. It fails only when Content
// or Metadata hold a value that has no JSON form (a channel, a function, a NaN, a cycle).
func (m Message) MarshalJSON() ([]byte, error) {
	w, err := m.encodeWire()
	if err != nil {
		return nil, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	defer w.release()
	return bytes.Clone(w.bytes()), nil
}

// UnmarshalJSON decodes the wire format described on [Message]; on error m is unchanged and the
// error wraps [ErrMalformed].
func (m *Message) UnmarshalJSON(data []byte) error {
	return m.decodeWire(data)
}

func formatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(naiveLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time %q: want RFC 3339: %w", s, err)
	}
	return t.UTC(), nil
}

// Validate reports whether m has what every protocol message needs: an id, a type and a
// sender. The error wraps [ErrMalformed]. The Bus drops (and logs) received messages that fail
// it.
func (m Message) Validate() error {
	switch {
	case m.ID == "":
		return fmt.Errorf("%w: empty id", ErrMalformed)
	case m.Type == "":
		return fmt.Errorf("%w: message %s: empty type", ErrMalformed, m.ID)
	case m.FromAgent == "":
		return fmt.Errorf("%w: message %s: empty from_agent", ErrMalformed, m.ID)
	}
	return nil
}

// Expired reports whether m has an expires_at at or before now. A message without expires_at
// never expires.
func (m Message) Expired(now time.Time) bool {
	return m.ExpiresAt != nil && !now.Before(*m.ExpiresAt)
}

// IsQuery reports whether m asks an agent for an answer: a query, or a task_request as the
// original service's agents send them.
func (m Message) IsQuery() bool {
	return m.Type == TypeQuery || m.Type == TypeTaskRequest
}

// IsResponse reports whether m is an answer: a response, or a task_response as the original
// service's agents send them.
func (m Message) IsResponse() bool {
	return m.Type == TypeResponse || m.Type == TypeTaskResponse
}

// IsReply reports whether m answers a query, that is whether reply_to is set.
func (m Message) IsReply() bool {
	return m.ReplyTo != nil && *m.ReplyTo != ""
}

// ReplyToID returns the id of the query m answers, or "" when m is not a reply.
func (m Message) ReplyToID() string {
	if m.ReplyTo == nil {
		return ""
	}
	return *m.ReplyTo
}

// Text returns the content field key when it is a JSON string, and "" otherwise.
func (m Message) Text(key string) string {
	s, _ := m.Content[key].(string)
	return s
}

// Question returns the question of a query (content field "question"), or "".
func (m Message) Question() string { return m.Text("question") }

// QueryContext returns the context of a query (content field "context"), or nil.
func (m Message) QueryContext() map[string]any {
	c, _ := m.Content["context"].(map[string]any)
	return c
}

// Answer returns the answer carried by a response or task_response. Other writers put it in
// different places; the first of these that is a string is the answer: content.response,
// content.result.response, content.result. It fails when m is not a response; with an error
// wrapping [ErrRemote] that includes the remote error text (content.error or
// content.result.error) when the response reports "success": false (in content or in
// content.result); and with an error wrapping [ErrMalformed] when no answer is in any of those
// places and the response does not say "success": true.
func (m Message) Answer() (string, error) {
	if !m.IsResponse() {
		return "", fmt.Errorf("message %s is a %s, not a response", m.ID, m.Type)
	}
	result, _ := m.Content["result"].(map[string]any)
	if failed(m.Content) || failed(result) {
		errText := m.Text("error")
		if errText == "" {
			errText, _ = result["error"].(string)
		}
		return "", fmt.Errorf("answer from %s to %s: %w: %s", m.FromAgent, m.ReplyToID(), ErrRemote, errText)
	}
	if s, ok := m.Content["response"].(string); ok {
		return s, nil
	}
	if s, ok := result["response"].(string); ok {
		return s, nil
	}
	if s, ok := m.Content["result"].(string); ok {
		return s, nil
	}
	if ok, _ := m.Content["success"].(bool); ok {
		return "", nil
	}
	return "", fmt.Errorf("answer from %s to %s: %w: no answer in content.response, content.result.response or content.result",
		m.FromAgent, m.ReplyToID(), ErrMalformed)
}

// failed reports whether an object says "success": false.
func failed(c map[string]any) bool {
	ok, present := c["success"].(bool)
	return present && !ok
}

// BroadcastText returns the text of a broadcast (content field "message"), or "".
func (m Message) BroadcastText() string { return m.Text("message") }

// TargetTypes returns the node types a broadcast is meant for (content field "target_types");
// nil means all. Elements that are not strings are skipped.
func (m Message) TargetTypes() []string {
	var out []string
	switch v := m.Content["target_types"].(type) {
	case []string:
		out = append(out, v...)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// ExecutionID returns metadata execution_id when it is a string, and "" otherwise.
func (m Message) ExecutionID() string {
	s, _ := m.Metadata[MetaExecutionID].(string)
	return s
}

// WorkflowID returns metadata workflow_id when it is a string, and "" otherwise.
func (m Message) WorkflowID() string {
	s, _ := m.Metadata[MetaWorkflowID].(string)
	return s
}

// Meta returns the metadata every message of an execution carries.
func Meta(executionID, workflowID string) map[string]any {
	return map[string]any{MetaExecutionID: executionID, MetaWorkflowID: workflowID}
}

// NewQueryID returns a query id "query:{from}:{to}:{unix seconds with microseconds}-{suffix}",
// e.g. "query:node-e1-student:node-e1-teacher:1732690000.123456-9f2c41d7". The suffix is 8 hex
// digits from crypto/rand, so ids made in the same microsecond by the same pair still differ.
// from and to are put in as given: [NewQuery] passes agent ids; a caller that prefers node ids
// can build the id itself. It never fails and is safe for concurrent use.
func NewQueryID(from, to string, now time.Time) string {
	return "query:" + from + ":" + to + ":" + unixSeconds(now) + "-" + randomSuffix()
}

func unixSeconds(t time.Time) string {
	us := t.UnixMicro()
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	// Two ids are made per ask: strconv and a fixed-width fraction instead of fmt's %06d.
	var b [32]byte
	out := strconv.AppendInt(b[:0], sec, 10)
	out = append(out, '.', '0', '0', '0', '0', '0', '0')
	for i := len(out) - 1; frac > 0; i-- {
		out[i] = byte('0' + frac%10)
		frac /= 10
	}
	return string(out)
}

func randomSuffix() string {
	var b [4]byte
	// crypto/rand.Read never returns an error (it crashes the program instead).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func wireNow() time.Time {
	// Truncate to the wire precision (and drop the monotonic reading), so that a message
	// decoded from the wire equals the one that was encoded.
	return time.Now().UTC().Truncate(time.Microsecond)
}

func expiry(t time.Time, ttl time.Duration) *time.Time {
	if ttl <= 0 {
		return nil
	}
	e := t.Add(ttl)
	return &e
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return maps.Clone(m)
}

// NewQuery returns a query from agent from to agent to: content {"question", "context"},
// priority high, requires_response true, metadata a copy of meta (it should hold execution_id
// and workflow_id, see [Meta]), id from [NewQueryID] with the two agent ids, and expires_at
// ttl from now (no expiry when ttl <= 0). queryContext may be nil (sent as {}).
func NewQuery(from, to, question string, queryContext, meta map[string]any, ttl time.Duration) Message {
	t := wireNow()
	return Message{
		ID:               NewQueryID(from, to, t),
		Type:             TypeQuery,
		FromAgent:        from,
		ToAgent:          to,
		Subject:          "query",
		Content:          map[string]any{"question": question, "context": cloneMap(queryContext)},
		Priority:         PriorityHigh,
		RequiresResponse: true,
		Timestamp:        t,
		ExpiresAt:        expiry(t, ttl),
		Metadata:         cloneMap(meta),
	}
}

func newReply(q Message, from string, content map[string]any) Message {
	t := wireNow()
	replyTo := q.ID
	prio := q.Priority
	if prio == "" {
		prio = PriorityHigh
	}
	return Message{
		ID:        "response:" + from + ":" + q.FromAgent + ":" + unixSeconds(t) + "-" + randomSuffix(),
		Type:      TypeResponse,
		FromAgent: from,
		ToAgent:   q.FromAgent,
		Subject:   "response",
		Content:   content,
		Priority:  prio,
		ReplyTo:   &replyTo,
		Timestamp: t,
		Metadata:  cloneMap(q.Metadata),
	}
}

// NewResponse returns the answer of agent from to query q: type response, reply_to q.ID,
// to_agent q.FromAgent, content {"response": response, "success": true}, the metadata of q.
// Publish it to Channel(q.FromAgent), where the asker listens.
func NewResponse(q Message, from, response string) Message {
	return newReply(q, from, map[string]any{"response": response, "success": true})
}

// NewErrorResponse returns the reply of agent from saying it could not answer query q: like
// [NewResponse] but with content {"response": "", "success": false, "error": errText}, which
// [Message.Answer] turns into an error wrapping [ErrRemote].
func NewErrorResponse(q Message, from, errText string) Message {
	return newReply(q, from, map[string]any{"response": "", "success": false, "error": errText})
}

// NewBroadcast returns a broadcast from agent from: to_agent "", content {"message",
// "target_types"} (target_types [] when nil, meaning every type), priority medium, metadata a
// copy of meta, expires_at ttl from now (none when ttl <= 0). Publish it to [BroadcastChannel].
func NewBroadcast(from, message string, targetTypes []string, meta map[string]any, ttl time.Duration) Message {
	t := wireNow()
	types := make([]any, 0, len(targetTypes))
	for _, s := range targetTypes {
		types = append(types, s)
	}
	return Message{
		ID:        "broadcast:" + from + ":" + unixSeconds(t) + "-" + randomSuffix(),
		Type:      TypeBroadcast,
		FromAgent: from,
		ToAgent:   "",
		Subject:   "broadcast",
		Content:   map[string]any{"message": message, "target_types": types},
		Priority:  PriorityMedium,
		Timestamp: t,
		ExpiresAt: expiry(t, ttl),
		Metadata:  cloneMap(meta),
	}
}
