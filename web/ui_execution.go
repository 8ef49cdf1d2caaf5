package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/workflow"
)

// executionPage is everything the execution page shows.
type executionPage struct {
	Header   headerData
	X        *workflow.Execution
	W        *workflow.Workflow
	Known    bool // W is the stored workflow (not rebuilt from the node states)
	Graph    graphView
	Timeline timelineView
	Messages []msgView
	Nodes    []nodeView
	Context  []kv
	Live     bool
}

// nodeView is one node's card on the execution page.
type nodeView struct {
	Index      int
	ID, Name   string
	Type       string
	Comm       bool
	State      *workflow.NodeState
	Status     string
	Duration   string
	Output     string
	Streaming  bool // running: the output box fills from delta events
	ExecID     string
	LiveEvents bool
	// RanOn is where the node ran: a worker's name, or "server" in an
	// execution whose agents were placed on workers; "" when that says
	// nothing (simple mode, agents kept in the server, not started).
	RanOn    string
	OnWorker bool // RanOn names a worker
	Attempt  int  // above 1 when a lost worker made the node run again
}

type kv struct{ Key, Value string }

// workflowOf returns the workflow an execution ran. When it has been
// deleted since (or was run from a file) a stand-in is built from the node
// states, so the page still shows every node.
func (s *Server) workflowOf(ctx context.Context, x *workflow.Execution) (*workflow.Workflow, bool, error) {
	w, err := s.store.GetWorkflow(ctx, x.WorkflowID)
	if err == nil {
		return w, true, nil
	}
	if workflow.ErrorCode(err) != workflow.CodeNotFound {
		return nil, false, err
	}
	w = &workflow.Workflow{ID: x.WorkflowID, Name: x.WorkflowName}
	for _, id := range sortedKeys(x.NodeStates) {
		st := x.NodeStates[id]
		w.Nodes = append(w.Nodes, workflow.Node{ID: id, Type: st.Type, Config: map[string]any{"name": st.Name}})
	}
	return w, false, nil
}

func execStart(x *workflow.Execution) time.Time {
	if x.StartTime != nil {
		return *x.StartTime
	}
	return x.CreatedAt
}

func nodeViews(w *workflow.Workflow, x *workflow.Execution, live bool) []nodeView {
	out := make([]nodeView, 0, len(w.Nodes))
	for i := range w.Nodes {
		out = append(out, nodeViewOf(w, x, i, live))
	}
	return out
}

func nodeViewOf(w *workflow.Workflow, x *workflow.Execution, i int, live bool) nodeView {
	nd := &w.Nodes[i]
	v := nodeView{Index: i, ID: nd.ID, Name: nd.Label(), Type: nd.Type, Status: workflow.NodePending, ExecID: x.ID, LiveEvents: live}
	v.Comm, _ = nd.Config["can_communicate"].(bool)
	if st := x.NodeStates[nd.ID]; st != nil {
		v.State = st
		if st.Status != "" {
			v.Status = st.Status
		}
		v.Duration = span(st.StartedAt, st.FinishedAt)
		v.Output = pretty(st.Output)
		switch {
		case st.Worker != "":
			v.RanOn, v.OnWorker = st.Worker, true
		case x.Placement == workflow.PlacementWorkers && v.Status != workflow.NodePending && v.Status != workflow.NodeSkipped:
			v.RanOn = "server"
		}
		if st.Attempt > 1 {
			v.Attempt = st.Attempt
		}
	}
	v.Streaming = v.Status == workflow.NodeRunning && v.Output == ""
	return v
}

func contextKVs(m map[string]any) []kv {
	out := make([]kv, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, kv{k, pretty(m[k])})
	}
	return out
}

func newExecutionPage(csrf string, w *workflow.Workflow, known bool, x *workflow.Execution) executionPage {
	live := !workflow.Terminal(x.Status)
	start := execStart(x)
	return executionPage{
		Header: newHeaderData(csrf, w, known, x),
		X:      x, W: w, Known: known, Live: live,
		Graph:    layoutGraph(w, statesOrEmpty(x)),
		Timeline: timelineOf(w, x),
		Messages: messageViews(w, x.CommunicationLog, start),
		Nodes:    nodeViews(w, x, live),
		Context:  contextKVs(x.SharedContext),
	}
}

func statesOrEmpty(x *workflow.Execution) map[string]*workflow.NodeState {
	if x.NodeStates == nil {
		return map[string]*workflow.NodeState{}
	}
	return x.NodeStates
}

func (s *Server) uiExecution(c echo.Context) error {
	ctx := c.Request().Context()
	x, err := s.store.GetExecution(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	w, known, err := s.workflowOf(ctx, x)
	if err != nil {
		return err
	}
	p := newExecutionPage(csrfToken(c), w, known, x)
	// Only an interrupted or failed execution can have been resumed; the
	// page names its resume instead of offering a button that would fail.
	if resumable(x) {
		if p.Header.ResumedBy, err = s.store.ResumedBy(ctx, x.ID); err != nil {
			return err
		}
	}
	title := "Execution of " + x.WorkflowName
	return s.page(c, http.StatusOK, "execution", title, "executions", p)
}

// uiCancel asks a running execution to stop; the live page shows the
// outcome.
func (s *Server) uiCancel(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	x, err := s.store.GetExecution(ctx, id)
	if err != nil {
		return err
	}
	if workflow.Terminal(x.Status) {
		return workflow.Errorf(workflow.CodeConflict, "this execution already ended (%s)", x.Status)
	}
	if !s.runner.Cancel(id) {
		return workflow.Errorf(workflow.CodeConflict, "this execution is not running in this server process")
	}
	if isHTMX(c) {
		return c.HTML(http.StatusAccepted, "Cancelling…")
	}
	return c.Redirect(http.StatusSeeOther, "/ui/executions/"+id)
}

// uiResume continues an interrupted or failed execution as a new one and
// shows it.
func (s *Server) uiResume(c echo.Context) error {
	run, _, err := s.resume(c.Request().Context(), c.Param("id"), nil, "", false)
	if err != nil {
		return err
	}
	if err := s.stored(c.Request().Context(), run); err != nil {
		return err
	}
	return goTo(c, "/ui/executions/"+run.ID)
}

// headerData is what the execution header shows.
type headerData struct {
	CSRF     string
	X        *workflow.Execution
	W        *workflow.Workflow
	Known    bool
	Live     bool
	Duration string
	Nodes    int
	Done     int
	// ResumedBy is the execution that resumed this one, if any; the live
	// view leaves it empty, as a running execution cannot be resumed.
	ResumedBy string
	// NoWorkers is true when the agents ran in the server because no worker
	// was registered: how a server used alone always runs, so it is a fact
	// of the header rather than a warning.
	NoWorkers bool
}

// resumable reports whether x ended in a state that resume continues.
func resumable(x *workflow.Execution) bool {
	return x.Status == workflow.ExecInterrupted || x.Status == workflow.ExecError
}

func newHeaderData(csrf string, w *workflow.Workflow, known bool, x *workflow.Execution) headerData {
	h := headerData{CSRF: csrf, X: x, W: w, Known: known, Live: !workflow.Terminal(x.Status), Nodes: len(w.Nodes),
		NoWorkers: x.PlacementFallbackReason == executor.NoWorkersReason}
	if x.StartTime != nil {
		end := time.Now()
		if x.EndTime != nil {
			end = *x.EndTime
		}
		h.Duration = fmtDuration(end.Sub(*x.StartTime))
	}
	for _, st := range x.NodeStates {
		if st.Status == workflow.NodeCompleted {
			h.Done++
		}
	}
	return h
}
