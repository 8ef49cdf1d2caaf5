package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

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
		se.Time, se.Node, se.Code, se.Text = entryTime(e.Time), e.NodeID, string(e.Code), e.Message
	case workflow.EventMessage:
		m := ev.Message
		se.Time, se.From, se.To, se.Type, se.Text, se.Meta = entryTime(m.Time), m.From, m.To, m.Type, m.Content, &m.Metadata
	case workflow.EventContext:
		c := ev.Context
		se.Time, se.Key, se.Value = nanosOf(&ev.Time), c.Key, c.Value
	default:
		return nil, fmt.Errorf("kind %q is not stored in chunks", ev.Kind)
	}
	return se.appendJSON(make([]byte, 0, 256))
}

// appendJSON appends se encoded as encoding/json would decode it back (see
// storedEvent's tags), by hand: encoding/json's reflection was a tenth of
// the CPU of an execution, spent on a handful of strings and numbers.
// Open values (a node's output, a context value, metadata) that are not
// plain strings still go through encoding/json.
func (se *storedEvent) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"k":`...)
	b = appendString(b, string(se.Kind))
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, se.Seq, 10)
	b = appendInt(b, "t", se.Time)
	b = appendStr(b, "node", se.Node)
	b = appendStr(b, "type", se.Type)
	b = appendStr(b, "name", se.Name)
	b = appendStr(b, "status", se.Status)
	if se.Value != nil {
		b = append(b, `,"v":`...)
		var err error
		if b, err = appendValue(b, se.Value); err != nil {
			return nil, err
		}
	}
	b = appendInt(b, "start", se.Start)
	b = appendInt(b, "finish", se.Finish)
	b = appendStr(b, "model", se.Model)
	b = appendInt(b, "pt", int64(se.PT))
	b = appendInt(b, "ct", int64(se.CT))
	b = appendInt(b, "tt", int64(se.TT))
	b = appendInt(b, "calls", int64(se.Calls))
	b = appendStr(b, "err", se.Err)
	b = appendStr(b, "level", se.Level)
	b = appendStr(b, "msg", se.Text)
	b = appendStr(b, "code", se.Code)
	b = appendStr(b, "from", se.From)
	b = appendStr(b, "to", se.To)
	if se.Meta != nil {
		b = append(b, `,"meta":`...)
		if *se.Meta == nil {
			b = append(b, "null"...)
		} else {
			m, err := json.Marshal(*se.Meta)
			if err != nil {
				return nil, err
			}
			b = append(b, m...)
		}
	}
	b = appendStr(b, "key", se.Key)
	return append(b, '}'), nil
}

// appendInt appends ,"name":n unless n is 0 (omitempty).
func appendInt(b []byte, name string, n int64) []byte {
	if n == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, n, 10)
}

// appendStr appends ,"name":"s" unless s is empty (omitempty).
func appendStr(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, s)
}

// appendValue appends an open value: a string by hand, anything else with
// encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		return appendString(b, s), nil
	}
	m, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, m...), nil
}

// appendString appends s as a JSON string. Like encoding/json it replaces
// invalid UTF-8 with U+FFFD and escapes control characters; it leaves <, >
// and & alone (nothing here is embedded in HTML) and escapes U+2028 and
// U+2029, which some JavaScript parsers take for line ends.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

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
			Usage: workflow.Usage{PromptTokens: se.PT, CompletionTokens: se.CT, TotalTokens: se.TT},
			Calls: se.Calls, Error: se.Err,
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
