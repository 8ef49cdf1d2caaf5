package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// An execution's events other than its header (node states, log lines,
// errors, communication-log entries, shared-context updates) are kept as
// chunks in exec_events (migrations/0004_exec_events.sql): one row per
// execution per write batch, holding a JSON array of storedEvent in the
// order they arrived. A Q&A execution then costs one small row rather than
// eighteen rows over five tables and their indexes, which is what bounded
// executions per second (see issue 6's figures in the commit that made
// this). Reading an execution folds its chunks back into the record:
// a node's state is its last event, at the place of its first; a
// shared-context key its last value; entries sorted by seq, then arrival.

// storedEvent is one event in a chunk. Field names are short because every
// event carries them; times are unix nanoseconds, 0 meaning "not set" (as
// NULL did in the tables before). The migration that moved the old tables
// here writes the same keys.
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
	Calls  int    `json:"calls,omitempty"`
	Err    string `json:"err,omitempty"` // a node's error

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

// encodeEvent encodes ev (not a header) as a storedEvent. Entry times
// default to the event's time. It fails when a value cannot be encoded as
// JSON; the caller turns that into an "invalid" error naming the event.
func encodeEvent(ev *workflow.Event) ([]byte, error) {
	se := storedEvent{Kind: ev.Kind, Seq: ev.Seq}
	entryTime := func(t time.Time) int64 {
		if t.IsZero() {
			t = ev.Time
		}
		return nanosOf(&t)
	}
	switch ev.Kind {
	case workflow.EventNode:
		n := ev.Node
		se.Node, se.Type, se.Name, se.Status, se.Value = n.NodeID, n.Type, n.Name, n.Status, n.Output
		se.Start, se.Finish, se.Model = nanosOf(n.StartedAt), nanosOf(n.FinishedAt), n.Model
		se.PT, se.CT, se.TT, se.Calls, se.Err = n.Usage.PromptTokens, n.Usage.CompletionTokens, n.Usage.TotalTokens, n.Calls, n.Error
	case workflow.EventLog:
		l := ev.Log
		se.Time, se.Level, se.Text, se.Node = entryTime(l.Time), l.Level, l.Message, l.NodeID
	case workflow.EventError:
		e := ev.Error
		se.Time, se.Node, se.Code, se.Text = entryTime(e.Time), e.NodeID, e.Code, e.Message
	case workflow.EventMessage:
		m := ev.Message
		se.Time, se.From, se.To, se.Type, se.Text, se.Meta = entryTime(m.Time), m.From, m.To, m.Type, m.Content, &m.Metadata
	case workflow.EventContext:
		c := ev.Context
		se.Time, se.Key, se.Value = nanosOf(&ev.Time), c.Key, c.Value
	default:
		return nil, fmt.Errorf("kind %q is not stored in chunks", ev.Kind)
	}
	return json.Marshal(&se)
}

// folded is an execution's chunks read back.
type folded struct {
	nodes    []*workflow.NodeState // in the order first seen
	logs     []workflow.LogEntry
	errors   []workflow.ErrorEntry
	messages []workflow.CommEntry
	context  map[string]any
	maxSeq   int64
}

// fold decodes chunks (JSON arrays of storedEvent, in the order they were
// written) into the parts of an execution record. The collections are
// never nil.
func fold(chunks [][]byte) (*folded, error) {
	f := &folded{
		nodes: []*workflow.NodeState{}, logs: []workflow.LogEntry{}, errors: []workflow.ErrorEntry{},
		messages: []workflow.CommEntry{}, context: map[string]any{},
	}
	type seqd struct{ seq, arrival int64 }
	var (
		nodeAt  = map[string]int{}
		nodeSeq []seqd
		logSeq  []seqd
		errSeq  []seqd
		msgSeq  []seqd
		arrival int64
	)
	for i, c := range chunks {
		var evs []storedEvent
		if err := json.Unmarshal(c, &evs); err != nil {
			return nil, fmt.Errorf("decode stored events (chunk %d): %w", i, err)
		}
		for _, se := range evs {
			arrival++
			f.maxSeq = max(f.maxSeq, se.Seq)
			switch se.Kind {
			case workflow.EventNode:
				n := &workflow.NodeState{
					NodeID: se.Node, Type: se.Type, Name: se.Name, Status: se.Status, Output: se.Value,
					StartedAt: timePtrOf(se.Start), FinishedAt: timePtrOf(se.Finish), Model: se.Model,
					Usage: workflow.Usage{PromptTokens: se.PT, CompletionTokens: se.CT, TotalTokens: se.TT},
					Calls: se.Calls, Error: se.Err,
				}
				if at, ok := nodeAt[se.Node]; ok {
					f.nodes[at] = n // the last state, at the place of the first
					continue
				}
				nodeAt[se.Node] = len(f.nodes)
				f.nodes = append(f.nodes, n)
				nodeSeq = append(nodeSeq, seqd{se.Seq, arrival})
			case workflow.EventLog:
				f.logs = append(f.logs, workflow.LogEntry{Time: timeOf(se.Time), Level: se.Level, Message: se.Text, NodeID: se.Node})
				logSeq = append(logSeq, seqd{se.Seq, arrival})
			case workflow.EventError:
				f.errors = append(f.errors, workflow.ErrorEntry{Time: timeOf(se.Time), NodeID: se.Node, Code: se.Code, Message: se.Text})
				errSeq = append(errSeq, seqd{se.Seq, arrival})
			case workflow.EventMessage:
				var meta map[string]any
				if se.Meta != nil {
					meta = *se.Meta
				}
				f.messages = append(f.messages, workflow.CommEntry{Time: timeOf(se.Time), From: se.From, To: se.To, Type: se.Type,
					Content: se.Text, Metadata: meta})
				msgSeq = append(msgSeq, seqd{se.Seq, arrival})
			case workflow.EventContext:
				f.context[se.Key] = se.Value
			default:
				return nil, fmt.Errorf("decode stored events (chunk %d): unknown kind %q", i, se.Kind)
			}
		}
	}
	bySeq := func(a, b seqd) int {
		if a.seq != b.seq {
			return cmpInt64(a.seq, b.seq)
		}
		return cmpInt64(a.arrival, b.arrival)
	}
	sortBy(f.nodes, nodeSeq, bySeq)
	sortBy(f.logs, logSeq, bySeq)
	sortBy(f.errors, errSeq, bySeq)
	sortBy(f.messages, msgSeq, bySeq)
	return f, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sortBy orders items by their keys (same length, same order), and is a
// no-op when they already are: events almost always arrive in seq order.
func sortBy[T, K any](items []T, keys []K, cmp func(a, b K) int) {
	if slices.IsSortedFunc(keys, cmp) {
		return
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp(keys[a], keys[b]) })
	sorted := make([]T, len(items))
	for i, j := range idx {
		sorted[i] = items[j]
	}
	copy(items, sorted)
}
