package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// An execution's events other than its header (node states, log lines,
// errors, communication-log entries, shared-context updates) are kept as
// chunks in exec_events (migrations/0004_exec_events.sql): one row per
// execution per write batch, holding a JSON array of storedEvent in the
// order they arrived. A Q&A execution so costs one small row, not a row
// per event over five tables and their indexes: rows and B-trees written
// are what bounds executions per second. Reading an execution folds its
// chunks back into the record:
// a node's state is its last event, at the place of its first; a
// shared-context key its last value; entries sorted by seq, then arrival.

// storedEvent is one event in a chunk. Field names are short because every
// event carries them; times are unix nanoseconds, 0 meaning "not set". The
// migration that moved the old tables here writes the same keys.
type storedEvent struct {
	Kind workflow.EventKind `json:"k"`
	Seq  int64              `json:"s"`
	Time int64              `json:"t,omitempty"` // entry time; for context, when it was set

	Node   string `json:"node,omitempty"` // node id: of a node state, a log line, an error
	Type   string `json:"type,omitempty"` // node type; communication entry type
	Name   string `json:"name,omitempty"`
	Status string `json:"status,omitempty"`
	Value  any    `json:"v,omitempty"` // node output; shared-context value
	Start  int64  `json:"start,omitempty"`
	Finish int64  `json:"finish,omitempty"`
	Model  string `json:"model,omitempty"`
	PT     int    `json:"pt,omitempty"`
	CT     int    `json:"ct,omitempty"`
	TT     int    `json:"tt,omitempty"`
	Est    bool   `json:"est,omitempty"` // the usage is an estimate
	Calls  int    `json:"calls,omitempty"`
	Err    string `json:"err,omitempty"`    // a node's error
	Worker string `json:"worker,omitempty"` // the worker a node ran on
	Att    int    `json:"att,omitempty"`    // a node's attempt, when above 1
	Tools  string `json:"tm,omitempty"`     // a node's tool mode
	// A node's cost_usd (a pointer: 0 and none read back as they were),
	// whether it is an estimate, and why it is unknown.
	USD   *float64 `json:"usd,omitempty"`
	CEst  bool     `json:"cest,omitempty"`
	CNote string   `json:"cnote,omitempty"`

	Level string          `json:"level,omitempty"`
	Text  string          `json:"msg,omitempty"` // log message, error message, communication content
	Code  string          `json:"code,omitempty"`
	From  string          `json:"from,omitempty"`
	To    string          `json:"to,omitempty"`
	Meta  *map[string]any `json:"meta,omitempty"` // a pointer, so nil and empty metadata read back as they were
	Key   string          `json:"key,omitempty"`
}

func nanosOf(t *time.Time) int64 {
	if t == nil || t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeOf(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func timePtrOf(n int64) *time.Time {
	if n == 0 {
		return nil
	}
	t := time.Unix(0, n).UTC()
	return &t
}

// encodeEvent encodes ev (not a header) as a storedEvent, with
// encoding/json, which reads it back too (fold); chunks written by earlier
// versions have the same keys and read back the same way. Invalid UTF-8 in
// a string is stored as U+FFFD. Entry times default to the event's time.
// It fails when a value cannot be encoded as JSON; the caller turns that
// into an "invalid" error naming the event.
func encodeEvent(ev *workflow.Event) ([]byte, error) {
	s, err := storedForm(ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// storedForm returns ev (not a header) as the struct encodeEvent encodes:
// a *storedNode, *storedLog, *storedError, *storedMessage or
// *storedContext. It holds ev's values but nothing ev points to, except
// the open values (output, metadata, context value), which it shares.
func storedForm(ev *workflow.Event) (any, error) {
	entryTime := func(t time.Time) int64 {
		if t.IsZero() {
			t = ev.Time
		}
		return nanosOf(&t)
	}
	switch ev.Kind {
	case workflow.EventNode:
		n := ev.Node
		return &storedNode{Kind: ev.Kind, Seq: ev.Seq,
			Node: n.NodeID, Type: n.Type, Name: n.Name, Status: n.Status, Value: n.Output,
			Start: nanosOf(n.StartedAt), Finish: nanosOf(n.FinishedAt), Model: n.Model,
			PT: n.Usage.PromptTokens, CT: n.Usage.CompletionTokens, TT: n.Usage.TotalTokens, Est: n.Usage.Estimated,
			Calls: n.Calls, Err: n.Error, Worker: n.Worker, Att: n.Attempt, Tools: n.ToolMode,
			USD: n.CostUSD, CEst: n.CostEstimated, CNote: n.CostNote}, nil
	case workflow.EventLog:
		l := ev.Log
		return &storedLog{Kind: ev.Kind, Seq: ev.Seq, Time: entryTime(l.Time), Node: l.NodeID, Level: l.Level, Text: l.Message}, nil
	case workflow.EventError:
		e := ev.Error
		return &storedError{Kind: ev.Kind, Seq: ev.Seq, Time: entryTime(e.Time), Node: e.NodeID, Text: e.Message, Code: string(e.Code)}, nil
	case workflow.EventMessage:
		m := ev.Message
		s := &storedMessage{Kind: ev.Kind, Seq: ev.Seq, Time: entryTime(m.Time), Type: m.Type, Text: m.Content,
			From: m.From, To: m.To, meta: m.Metadata}
		s.Meta = &s.meta
		return s, nil
	case workflow.EventContext:
		c := ev.Context
		return &storedContext{Kind: ev.Kind, Seq: ev.Seq, Time: nanosOf(&ev.Time), Value: c.Value, Key: c.Key}, nil
	}
	return nil, fmt.Errorf("kind %q is not stored in chunks", ev.Kind)
}

// Each kind of event is encoded from a struct of its own fields, with the
// keys and tags of storedEvent, which decodes them all: encoding/json
// visits every field of a struct for each value it encodes, and a log line
// would otherwise pay for all of storedEvent's.
type (
	storedNode struct {
		Kind   workflow.EventKind `json:"k"`
		Seq    int64              `json:"s"`
		Node   string             `json:"node,omitempty"`
		Type   string             `json:"type,omitempty"`
		Name   string             `json:"name,omitempty"`
		Status string             `json:"status,omitempty"`
		Value  any                `json:"v,omitempty"`
		Start  int64              `json:"start,omitempty"`
		Finish int64              `json:"finish,omitempty"`
		Model  string             `json:"model,omitempty"`
		PT     int                `json:"pt,omitempty"`
		CT     int                `json:"ct,omitempty"`
		TT     int                `json:"tt,omitempty"`
		Est    bool               `json:"est,omitempty"`
		Calls  int                `json:"calls,omitempty"`
		Err    string             `json:"err,omitempty"`
		Worker string             `json:"worker,omitempty"`
		Att    int                `json:"att,omitempty"`
		Tools  string             `json:"tm,omitempty"`
		// The node's cost; see storedEvent.
		USD   *float64 `json:"usd,omitempty"`
		CEst  bool     `json:"cest,omitempty"`
		CNote string   `json:"cnote,omitempty"`
	}
	storedLog struct {
		Kind  workflow.EventKind `json:"k"`
		Seq   int64              `json:"s"`
		Time  int64              `json:"t,omitempty"`
		Node  string             `json:"node,omitempty"`
		Level string             `json:"level,omitempty"`
		Text  string             `json:"msg,omitempty"`
	}
	storedError struct {
		Kind workflow.EventKind `json:"k"`
		Seq  int64              `json:"s"`
		Time int64              `json:"t,omitempty"`
		Node string             `json:"node,omitempty"`
		Text string             `json:"msg,omitempty"`
		Code string             `json:"code,omitempty"`
	}
	storedMessage struct {
		Kind workflow.EventKind `json:"k"`
		Seq  int64              `json:"s"`
		Time int64              `json:"t,omitempty"`
		Type string             `json:"type,omitempty"`
		Text string             `json:"msg,omitempty"`
		From string             `json:"from,omitempty"`
		To   string             `json:"to,omitempty"`
		Meta *map[string]any    `json:"meta,omitempty"`
		meta map[string]any     // what Meta points to: the entry's map, not the entry
	}
	storedContext struct {
		Kind  workflow.EventKind `json:"k"`
		Seq   int64              `json:"s"`
		Time  int64              `json:"t,omitempty"`
		Value any                `json:"v,omitempty"`
		Key   string             `json:"key,omitempty"`
	}
)

// fold decodes chunks (JSON arrays of storedEvent, in the order they were
// written) and folds them into the parts of an execution record with
// workflow.Fold, as the executor folds a run's events.
func fold(chunks [][]byte) (workflow.Folded, error) {
	var evs []workflow.Event
	for i, c := range chunks {
		var ses []storedEvent
		if err := json.Unmarshal(c, &ses); err != nil {
			return workflow.Folded{}, fmt.Errorf("decode stored events (chunk %d): %w", i, err)
		}
		for _, se := range ses {
			ev, err := se.event()
			if err != nil {
				return workflow.Folded{}, fmt.Errorf("decode stored events (chunk %d): %w", i, err)
			}
			evs = append(evs, ev)
		}
	}
	return workflow.Fold(evs), nil
}

// event turns a stored event back into the event it was.
func (se *storedEvent) event() (workflow.Event, error) {
	ev := workflow.Event{Kind: se.Kind, Seq: se.Seq, Time: timeOf(se.Time)}
	switch se.Kind {
	case workflow.EventNode:
		ev.Node = &workflow.NodeState{
			NodeID: se.Node, Type: se.Type, Name: se.Name, Status: se.Status, Output: se.Value,
			StartedAt: timePtrOf(se.Start), FinishedAt: timePtrOf(se.Finish), Model: se.Model,
			Usage: workflow.Usage{PromptTokens: se.PT, CompletionTokens: se.CT, TotalTokens: se.TT, Estimated: se.Est},
			Calls: se.Calls, Error: se.Err, Worker: se.Worker, Attempt: se.Att, ToolMode: se.Tools,
			CostUSD: se.USD, CostEstimated: se.CEst, CostNote: se.CNote,
		}
	case workflow.EventLog:
		ev.Log = &workflow.LogEntry{Time: ev.Time, Level: se.Level, Message: se.Text, NodeID: se.Node}
	case workflow.EventError:
		ev.Error = &workflow.ErrorEntry{Time: ev.Time, NodeID: se.Node, Code: workflow.Code(se.Code), Message: se.Text}
	case workflow.EventMessage:
		var meta map[string]any
		if se.Meta != nil {
			meta = *se.Meta
		}
		ev.Message = &workflow.CommEntry{Time: ev.Time, From: se.From, To: se.To, Type: se.Type, Content: se.Text, Metadata: meta}
	case workflow.EventContext:
		ev.Context = &workflow.ContextUpdate{Key: se.Key, Value: se.Value}
	default:
		return ev, fmt.Errorf("unknown kind %q", se.Kind)
	}
	return ev, nil
}
