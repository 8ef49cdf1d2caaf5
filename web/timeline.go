package web

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// Timeline geometry, in SVG user units.
const (
	tlGutter = 64 // time labels on the left
	tlHeadH  = 48
	tlRowH   = 50
	tlPad    = 16
	tlCharW  = 6.6 // mean advance of a 12.5 px label character
)

// laneWidth gives few lanes more room, so labels say more, and many lanes
// less, so the diagram stays about a screen wide.
func laneWidth(lanes int) int {
	switch {
	case lanes <= 3:
		return 250
	case lanes <= 5:
		return 210
	}
	return 176
}

// timelineView is the conversation of an execution drawn as a sequence
// diagram: one vertical lane per agent, one row per communication entry.
type timelineView struct {
	Width, Height int
	Live          bool // the execution runs: messages may still come
	Cols          int  // lanes, capped at 8: the CSS keeps that many lanes readable when it shrinks
	Lanes         []tlLane
	Rows          []tlRow
	LaneBottom    int
}

// tlLane is one agent's lane, or the lane of the tools they call.
type tlLane struct {
	ID, Name, Label string
	X, W            int // centre, and the width of its name tag
	Tools           bool
}

// toolsLane is the id of the lane tool calls go to: no node id holds a
// control character, so it names no agent.
const toolsLane = "\x00tools"

// tlRow is one entry of the communication log, drawn at height Y.
type tlRow struct {
	Index   int // into the message list; links #msg-N
	Kind    string
	Y       int
	X1, X2  int   // the arrow, from X1 to X2 (X1 only for context updates)
	Targets []int // broadcast: an arrow to each of these lanes
	LabelX  int
	Anchor  string // text-anchor of the label: middle over an arrow, start beside a lane
	Label   string // short text over the arrow
	Meta    string // latency, message id; under the arrow
	Time    string // offset from the start, in the gutter
	Failed  bool
	Title   string // accessible summary
}

// msgView is one communication entry in the list beside the timeline, with
// its full text.
type msgView struct {
	Index              int
	Kind, KindLabel    string
	From, To           string
	FromName, ToName   string
	Content            string
	Time               time.Time
	Offset             string
	Latency            string
	MessageID, ReplyTo string
	Transport          string
	Failed             bool
	Error, Refused     string
	Recipients         string
	Excerpt            string // the start of the content, on one line
	Arguments          string // a tool call's, as JSON
}

// timelineLanes returns the agents that get a lane: every ai-processor that
// can communicate, in workflow order, then any other node named in log.
func timelineLanes(w *workflow.Workflow, log []workflow.CommEntry) []tlLane {
	var lanes []tlLane
	has := map[string]bool{}
	add := func(id string) {
		if id == "" || id == "*" || has[id] {
			return
		}
		has[id] = true
		name := id
		if nd := w.Node(id); nd != nil {
			name = nd.Label()
		}
		lanes = append(lanes, tlLane{ID: id, Name: name})
	}
	for i := range w.Nodes {
		nd := &w.Nodes[i]
		if c, _ := nd.Config["can_communicate"].(bool); c && nd.Type == workflow.NodeAIProcessor {
			add(nd.ID)
		}
	}
	tools := false
	for _, m := range log {
		add(m.From)
		add(m.To)
		tools = tools || m.Type == workflow.CommToolCall && !commToolCall(m)
	}
	if tools {
		// Tools are no agents: one lane of their own, after the agents',
		// so a tool call is an arrow out of its agent, not a mark on it.
		lanes = append(lanes, tlLane{ID: toolsLane, Name: "Tools", Tools: true})
	}
	return lanes
}

// timelineOf lays out an execution's conversation.
func timelineOf(w *workflow.Workflow, x *workflow.Execution) timelineView {
	t := layoutTimeline(w, x.CommunicationLog, execStart(x))
	t.Live = !workflow.Terminal(x.Status)
	return t
}

// layoutTimeline lays out the conversation of an execution.
func layoutTimeline(w *workflow.Workflow, log []workflow.CommEntry, start time.Time) timelineView {
	lanes := timelineLanes(w, log)
	laneW := laneWidth(len(lanes))
	x := map[string]int{}
	for i := range lanes {
		lanes[i].X = tlGutter + i*laneW + laneW/2
		lanes[i].W = laneW - 16
		lanes[i].Label = shorten(lanes[i].Name, int(float64(lanes[i].W-20)/7.6))
		x[lanes[i].ID] = lanes[i].X
	}
	t := timelineView{Lanes: lanes, Cols: min(max(len(lanes), 2), 8)}
	t.Width = tlGutter + max(len(lanes), 2)*laneW + tlPad
	drawn := 0
	for i, m := range log {
		if commToolCall(m) {
			continue // its ask, answer, broadcast or context arrow shows it
		}
		r := tlRow{Index: i, Kind: m.Type, Y: tlHeadH + 26 + drawn*tlRowH, Time: offset(start, m.Time), Anchor: "middle"}
		drawn++
		v := messageView(w, i, m, start)
		r.Failed = v.Failed || v.Refused != ""
		r.X1 = x[m.From]
		switch m.Type {
		case workflow.CommBroadcast:
			recips := recipients(m)
			if len(recips) == 0 {
				for _, l := range lanes {
					if l.ID != m.From {
						recips = append(recips, l.ID)
					}
				}
			}
			for _, id := range recips {
				if xx, ok := x[id]; ok && id != m.From {
					r.Targets = append(r.Targets, xx)
				}
			}
			r.Label = "broadcast: " + oneLine(m.Content)
			r.LabelX, r.Anchor = r.X1+10, "start"
			if len(r.Targets) > 0 && r.Targets[0] < r.X1 {
				// Everyone is to the left: write the label there too.
				r.LabelX, r.Anchor = r.X1-10, "end"
			}
		case workflow.CommContext:
			r.X2 = r.X1
			r.Label = "shared: " + oneLine(m.Content)
			r.LabelX, r.Anchor = r.X1+12, "start"
		default:
			r.X2 = x[m.To]
			r.LabelX = (r.X1 + r.X2) / 2
			switch {
			case m.Type == workflow.CommAsk && v.Refused != "":
				r.Label = "refused (" + v.Refused + "): " + oneLine(m.Content)
			case m.Type == workflow.CommAsk:
				r.Label = "ask: " + oneLine(m.Content)
			case m.Type == workflow.CommResponse && v.Failed:
				r.Label = "no answer: " + oneLine(v.Error)
			case m.Type == workflow.CommResponse:
				r.Label = "answer: " + oneLine(m.Content)
			case m.Type == workflow.CommToolCall:
				r.X2 = x[toolsLane]
				r.LabelX = (r.X1 + r.X2) / 2
				if v.Failed {
					r.Label = v.ToName + " failed: " + oneLine(v.Error)
				} else {
					r.Label = v.ToName + ": " + oneLine(m.Content)
				}
			default:
				r.Label = m.Type + ": " + oneLine(m.Content)
			}
		}
		var meta []string
		if v.Latency != "" {
			meta = append(meta, v.Latency)
		}
		if v.MessageID != "" {
			meta = append(meta, "id "+shortID(v.MessageID))
		}
		r.Meta = strings.Join(meta, " · ")
		// Fit the label to the space it has: between the lanes for an
		// arrow, up to the right edge otherwise.
		var room int
		switch {
		case r.Anchor == "middle":
			room = max(abs(r.X2-r.X1), laneW) - 16
		case r.Anchor == "end":
			room = r.LabelX - tlGutter
		default:
			room = t.Width - r.LabelX - tlPad
		}
		r.Label = shorten(r.Label, max(int(float64(room)/tlCharW), 8))
		r.Title = fmt.Sprintf("#%d %s → %s, %s: %s", i+1, v.FromName, v.ToName, v.KindLabel, shorten(oneLine(m.Content), 120))
		t.Rows = append(t.Rows, r)
	}
	t.LaneBottom = tlHeadH + 26 + max(drawn, 1)*tlRowH - tlRowH/2
	t.Height = t.LaneBottom + tlPad
	return t
}

// commToolCall reports whether m is a native tool call of one of the
// communication functions. The timeline draws no arrow for it: the ask and
// answer (or broadcast, or context update) it made are drawn already, and
// an arrow to the Tools lane would say it went elsewhere. The message list
// keeps it, as the log does.
func commToolCall(m workflow.CommEntry) bool {
	if m.Type != workflow.CommToolCall {
		return false
	}
	switch m.Metadata["tool"] {
	case workflow.CallAsk, workflow.CallBroadcast, workflow.CallSetContext, workflow.CallGetContext:
		_, mcp := m.Metadata["mcp_server"]
		return !mcp
	}
	return false
}

// messageView describes one communication entry for the message list.
func messageView(w *workflow.Workflow, i int, m workflow.CommEntry, start time.Time) msgView {
	v := msgView{Index: i, Kind: m.Type, From: m.From, To: m.To, Content: m.Content, Time: m.Time, Offset: offset(start, m.Time)}
	name := func(id string) string {
		if id == "*" {
			return "everyone"
		}
		if id == "" {
			return "—"
		}
		if nd := w.Node(id); nd != nil {
			return nd.Label()
		}
		return id
	}
	v.FromName, v.ToName = name(m.From), name(m.To)
	switch m.Type {
	case workflow.CommAsk:
		v.KindLabel = "ask"
	case workflow.CommResponse:
		v.KindLabel = "answer"
	case workflow.CommBroadcast:
		v.KindLabel = "broadcast"
	case workflow.CommContext:
		v.KindLabel = "shared context"
		v.ToName = "shared context"
	case workflow.CommToolCall:
		// From and To are both the calling node: what it calls is the tool.
		v.KindLabel, v.To = "tool call", ""
		v.ToName, _ = m.Metadata["tool"].(string)
		if srv, ok := m.Metadata["mcp_server"].(string); ok {
			t, _ := m.Metadata["mcp_tool"].(string)
			v.ToName = srv + "." + t + " (MCP)"
		}
		if a, ok := m.Metadata["arguments"]; ok {
			if data, err := json.Marshal(a); err == nil {
				v.Arguments = string(data)
			}
		}
	default:
		v.KindLabel = m.Type
	}
	md := m.Metadata
	if f, ok := md["latency_ms"].(float64); ok {
		v.Latency = fmtMillis(f)
	}
	v.MessageID, _ = md["message_id"].(string)
	v.ReplyTo, _ = md["reply_to"].(string)
	v.Transport, _ = md["transport"].(string)
	if s, ok := md["success"].(bool); ok && !s {
		v.Failed = true
	}
	v.Error, _ = md["error"].(string)
	if v.Error != "" && m.Type == workflow.CommResponse {
		v.Failed = true
	}
	v.Refused, _ = md["refused"].(string)
	if rs := recipients(m); len(rs) > 0 {
		v.Recipients = strings.Join(rs, ", ")
	}
	v.Excerpt = shorten(oneLine(m.Content), 90)
	if v.Excerpt == "" {
		v.Excerpt = shorten(oneLine(v.Error), 90)
	}
	return v
}

// messageViews describes a whole log.
func messageViews(w *workflow.Workflow, log []workflow.CommEntry, start time.Time) []msgView {
	out := make([]msgView, len(log))
	for i, m := range log {
		out[i] = messageView(w, i, m, start)
	}
	return out
}

func recipients(m workflow.CommEntry) []string {
	var out []string
	switch rs := m.Metadata["recipients"].(type) {
	case []string:
		out = append(out, rs...)
	case []any:
		for _, r := range rs {
			if s, ok := r.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// offset is "+1.25 s" from start to t, or "" when either is unknown.
func offset(start, t time.Time) string {
	if start.IsZero() || t.IsZero() {
		return ""
	}
	d := t.Sub(start)
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("+%.2f s", d.Seconds())
}

func fmtMillis(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.2f s", ms/1000)
	}
	if ms >= 10 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	if ms >= 1 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.2f ms", ms)
}

// shortID keeps the distinctive end of a long message id.
func shortID(id string) string {
	if r := []rune(id); len(r) > 18 {
		return "…" + string(r[len(r)-16:])
	}
	return id
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
