package web

import (
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/workflow"
)

// liveExec is the view of one execution kept by one live connection: the
// stored record at connect time with every later event applied, and which
// parts of the page changed since they were last sent.
type liveExec struct {
	s     *Server
	csrf  string
	out   sseWriter
	w     *workflow.Workflow
	known bool
	x     *workflow.Execution
	index map[string]int // node id → position in w.Nodes

	seenMsg map[string]bool
	seenLog map[string]bool
	sent    int // messages the page's list holds

	header, graph, timeline, context bool
	nodes                            map[int]bool // node cards whose meta changed
	outputs                          map[int]bool // node cards whose output box is replaced
	ended                            map[int]bool // nodes past running: late streamed text is dropped
	deltas                           map[int]*strings.Builder
	deltaOrder                       []int
	sepNext                          map[string]bool // node made calls: start its next streamed text on a new paragraph
	newMsgs                          []int
	newLogs                          []workflow.LogEntry
}

func newLiveExec(s *Server, csrf string, out sseWriter, w *workflow.Workflow, known bool, x *workflow.Execution) *liveExec {
	l := &liveExec{s: s, csrf: csrf, out: out, w: w, known: known, x: x, index: map[string]int{},
		seenMsg: map[string]bool{}, seenLog: map[string]bool{}, nodes: map[int]bool{}, outputs: map[int]bool{}, ended: map[int]bool{},
		deltas: map[int]*strings.Builder{}, sepNext: map[string]bool{}}
	if x.NodeStates == nil {
		x.NodeStates = map[string]*workflow.NodeState{}
	}
	for i, n := range w.Nodes {
		if _, dup := l.index[n.ID]; !dup {
			l.index[n.ID] = i
		}
		if st := x.NodeStates[n.ID]; st != nil && st.Status != workflow.NodeRunning && st.Status != workflow.NodePending {
			l.ended[i] = true
		}
	}
	if x.SharedContext == nil {
		x.SharedContext = map[string]any{}
	}
	for _, m := range x.CommunicationLog {
		l.seenMsg[msgKey(m)] = true
	}
	for _, e := range x.Logs {
		l.seenLog[logKey(e)] = true
	}
	return l
}

func msgKey(m workflow.CommEntry) string {
	return strconv.FormatInt(m.Time.UnixNano(), 10) + "\x00" + m.Type + "\x00" + m.From + "\x00" + m.To
}

func logKey(e workflow.LogEntry) string {
	return strconv.FormatInt(e.Time.UnixNano(), 10) + "\x00" + e.Message
}

// apply folds one event into the view. Events that the snapshot already
// held (the subscription starts before the snapshot is read) change
// nothing.
func (l *liveExec) apply(ev workflow.Event) {
	switch ev.Kind {
	case workflow.EventExecution:
		if h := ev.Execution; h != nil {
			keep := *l.x
			*l.x = *h
			l.x.NodeStates, l.x.Logs, l.x.Errors = keep.NodeStates, keep.Logs, keep.Errors
			l.x.CommunicationLog, l.x.SharedContext = keep.CommunicationLog, keep.SharedContext
			if l.x.Usage == (workflow.Usage{}) {
				l.x.Usage = keep.Usage
			}
			l.header = true
		}
	case workflow.EventNode:
		if n := ev.Node; n != nil {
			cp := *n
			prev := l.x.NodeStates[n.NodeID]
			l.x.NodeStates[n.NodeID] = &cp
			l.graph, l.header = true, true
			if i, ok := l.index[n.NodeID]; ok {
				l.nodes[i] = true
				if prev == nil || prev.Status != cp.Status {
					// A new state gets a new box: empty to stream into
					// while running, the final output once ended.
					l.outputs[i] = true
					delete(l.deltas, i)
				}
				l.ended[i] = cp.Status != workflow.NodeRunning && cp.Status != workflow.NodePending
			}
		}
	case workflow.EventMessage:
		if m := ev.Message; m != nil && !l.seenMsg[msgKey(*m)] {
			l.seenMsg[msgKey(*m)] = true
			l.x.CommunicationLog = append(l.x.CommunicationLog, *m)
			l.newMsgs = append(l.newMsgs, len(l.x.CommunicationLog)-1)
			l.timeline = true
			l.sepNext[m.From] = true
		}
	case workflow.EventContext:
		if cu := ev.Context; cu != nil {
			l.x.SharedContext[cu.Key] = cu.Value
			l.context = true
		}
	case workflow.EventLog:
		if e := ev.Log; e != nil && !l.seenLog[logKey(*e)] {
			l.seenLog[logKey(*e)] = true
			l.x.Logs = append(l.x.Logs, *e)
			l.newLogs = append(l.newLogs, *e)
		}
	case workflow.EventError:
		if e := ev.Error; e != nil {
			l.x.Errors = append(l.x.Errors, *e)
			l.header = true
		}
	case workflow.EventDelta:
		d := ev.Delta
		if d == nil {
			return
		}
		i, ok := l.index[d.NodeID]
		if !ok || l.ended[i] {
			return
		}
		b := l.deltas[i]
		if b == nil {
			b = &strings.Builder{}
			l.deltas[i] = b
			l.deltaOrder = append(l.deltaOrder, i)
		}
		if l.sepNext[d.NodeID] {
			l.sepNext[d.NodeID] = false
			b.WriteString("\n\n")
		}
		b.WriteString(d.Text)
	}
}

// flush sends what changed since the last flush.
func (l *liveExec) flush() error {
	live := !workflow.Terminal(l.x.Status)
	u := l.s.ui
	send := func(event, tmpl string, data any) error {
		html, err := u.render("", tmpl, data)
		if err != nil {
			return err
		}
		return l.out.send(event, html)
	}
	if l.header {
		if err := send("header", "exec-header", newHeaderData(l.csrf, l.w, l.known, l.x)); err != nil {
			return err
		}
	}
	if l.graph {
		if err := send("graph", "graph", layoutGraph(l.w, l.x.NodeStates)); err != nil {
			return err
		}
	}
	for i := range l.w.Nodes {
		if l.nodes[i] {
			if err := send("node-"+strconv.Itoa(i), "node-meta", nodeViewOf(l.w, l.x, i, live)); err != nil {
				return err
			}
		}
		if l.outputs[i] {
			if err := send("out-"+strconv.Itoa(i), "node-output", nodeViewOf(l.w, l.x, i, live)); err != nil {
				return err
			}
		}
	}
	// Streamed text after the boxes it goes into.
	for _, i := range l.deltaOrder {
		if b := l.deltas[i]; b != nil && b.Len() > 0 {
			if err := l.out.send("delta-"+strconv.Itoa(i), template.HTMLEscapeString(b.String())); err != nil {
				return err
			}
		}
	}
	clear(l.deltas)
	l.deltaOrder = l.deltaOrder[:0]
	if l.timeline {
		if err := send("timeline", "timeline", timelineOf(l.w, l.x)); err != nil {
			return err
		}
	}
	if len(l.newMsgs) > 0 {
		start := execStart(l.x)
		views := make([]msgView, 0, len(l.newMsgs))
		for _, i := range l.newMsgs {
			views = append(views, messageView(l.w, i, l.x.CommunicationLog[i], start))
		}
		if err := send("message", "msg-items", views); err != nil {
			return err
		}
		l.sent += len(views)
	}
	if l.context {
		if err := send("context", "context", contextKVs(l.x.SharedContext)); err != nil {
			return err
		}
	}
	if len(l.newLogs) > 0 {
		if err := send("log", "log-items", l.newLogs); err != nil {
			return err
		}
	}
	l.header, l.graph, l.timeline, l.context = false, false, false, false
	clear(l.nodes)
	clear(l.outputs)
	l.newMsgs, l.newLogs = l.newMsgs[:0], l.newLogs[:0]
	l.out.flush()
	return nil
}

// sendAll replaces every live part of the page: on connect, the page may
// be older than the stream, and at the end, the stored record is the truth.
// The message list is replaced only when it differs in length from what the
// page holds (sent), so an entry the reader opened stays open.
func (l *liveExec) sendAll(sent int) error {
	live := !workflow.Terminal(l.x.Status)
	u := l.s.ui
	send := func(event, tmpl string, data any) error {
		html, err := u.render("", tmpl, data)
		if err != nil {
			return err
		}
		return l.out.send(event, html)
	}
	start := execStart(l.x)
	if err := send("header", "exec-header", newHeaderData(l.csrf, l.w, l.known, l.x)); err != nil {
		return err
	}
	if err := send("graph", "graph", layoutGraph(l.w, l.x.NodeStates)); err != nil {
		return err
	}
	for i := range l.w.Nodes {
		v := nodeViewOf(l.w, l.x, i, live)
		if err := send("node-"+strconv.Itoa(i), "node-meta", v); err != nil {
			return err
		}
		// A running node's box keeps what it streamed so far.
		if v.Status != workflow.NodeRunning {
			if err := send("out-"+strconv.Itoa(i), "node-output", v); err != nil {
				return err
			}
		}
	}
	if err := send("timeline", "timeline", timelineOf(l.w, l.x)); err != nil {
		return err
	}
	if sent != len(l.x.CommunicationLog) {
		if err := send("messages", "msg-items", messageViews(l.w, l.x.CommunicationLog, start)); err != nil {
			return err
		}
	}
	l.sent = len(l.x.CommunicationLog)
	if err := send("context", "context", contextKVs(l.x.SharedContext)); err != nil {
		return err
	}
	if err := send("logs", "log-items", l.x.Logs); err != nil {
		return err
	}
	l.out.flush()
	return nil
}

// uiExecutionLive streams an execution's page parts as it runs, until it
// ends (then "end" tells the page to close the stream).
func (s *Server) uiExecutionLive(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	// Subscribe before reading the record so no event falls in between.
	events, stop := s.runner.Subscribe(id)
	defer stop()
	x, err := s.store.GetExecution(ctx, id)
	if err != nil {
		return err
	}
	w, known, err := s.workflowOf(ctx, x)
	if err != nil {
		return err
	}
	out := startSSE(c)
	l := newLiveExec(s, csrfToken(c), out, w, known, x)
	if err := l.sendAll(-1); err != nil {
		return nil
	}
	finish := func() error {
		final, err := s.store.GetExecution(ctx, id)
		if err == nil {
			sent := l.sent
			l = newLiveExec(s, csrfToken(c), out, w, known, final)
			if err := l.sendAll(sent); err != nil {
				return nil
			}
		}
		_ = out.send("end", "")
		out.flush()
		return nil
	}
	if workflow.Terminal(x.Status) {
		return finish()
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keepalive.C:
			if err := out.comment("keepalive"); err != nil {
				return nil
			}
			// An execution that ended in another process, or whose end
			// this subscription missed, still ends the stream.
			if cur, err := s.store.GetExecution(ctx, id); err == nil && workflow.Terminal(cur.Status) {
				return finish()
			}
		case ev, ok := <-events:
			if !ok {
				return finish()
			}
			l.apply(ev)
			// Take whatever else is queued, then send once: a burst of
			// events re-renders each part once.
			closed := false
		drain:
			for range 256 {
				select {
				case ev, ok := <-events:
					if !ok {
						closed = true
						break drain
					}
					l.apply(ev)
				default:
					break drain
				}
			}
			if err := l.flush(); err != nil {
				return nil
			}
			if closed {
				return finish()
			}
		}
	}
}
