package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// Page sizes of the dashboard's lists.
const (
	uiWorkflowsPerPage  = 100
	uiExecutionsPerPage = 50
	uiRecentExecutions  = 10
)

// workflowRow is one line of the workflow list.
type workflowRow struct {
	ID, Name, Mode, Description string
	Nodes                       int
	Runs                        int
	LastID, LastStatus          string
	LastAt                      time.Time
}

type workflowsPage struct {
	Rows              []workflowRow
	Total             int
	Pager             pager
	ImportPlaceholder string
}

// pager links the pages of a list.
type pager struct {
	Page, Pages      int
	PrevURL, NextURL string
}

func newPager(base url.Values, path string, page, per, total int) pager {
	p := pager{Page: page, Pages: max((total+per-1)/per, 1)}
	link := func(n int) string {
		q := url.Values{}
		for k, v := range base {
			if len(v) > 0 && v[0] != "" {
				q.Set(k, v[0])
			}
		}
		if n > 1 {
			q.Set("page", strconv.Itoa(n))
		}
		if enc := q.Encode(); enc != "" {
			return path + "?" + enc
		}
		return path
	}
	if page > 1 {
		p.PrevURL = link(page - 1)
	}
	if page < p.Pages {
		p.NextURL = link(page + 1)
	}
	return p
}

// pageNumber reads ?page=, 1 when absent or not a positive number.
func pageNumber(c echo.Context) int {
	n, err := strconv.Atoi(c.QueryParam("page"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func (s *Server) uiWorkflows(c echo.Context) error {
	ctx := c.Request().Context()
	pg := pageNumber(c)
	list, err := s.store.ListWorkflows(ctx, uiWorkflowsPerPage, (pg-1)*uiWorkflowsPerPage)
	if err != nil {
		return fmt.Errorf("list workflows: %w", err)
	}
	total, err := s.store.CountWorkflows(ctx)
	if err != nil {
		return fmt.Errorf("count workflows: %w", err)
	}
	sums, err := s.store.WorkflowSummaries(ctx)
	if err != nil {
		return fmt.Errorf("workflow summaries: %w", err)
	}
	data := workflowsPage{Total: total, Pager: newPager(nil, "/ui/workflows", pg, uiWorkflowsPerPage, total),
		ImportPlaceholder: `{"name": "…", "nodes": [ … ], "edges": [ … ]}`}
	for _, w := range list {
		r := workflowRow{ID: w.ID, Name: w.Name, Mode: w.Mode(), Description: w.Description(), Nodes: len(w.Nodes)}
		if sum, ok := sums[w.ID]; ok {
			r.Runs, r.LastID, r.LastStatus, r.LastAt = sum.Count, sum.LastID, sum.LastStatus, sum.LastAt
		}
		data.Rows = append(data.Rows, r)
	}
	return s.page(c, http.StatusOK, "workflows", "Workflows", "workflows", data)
}

// uiImport stores a workflow pasted into the import form or uploaded as a
// file. Problems go back to the form's error area (see renderErrorFragment),
// so the pasted text stays where it is.
func (s *Server) uiImport(c echo.Context) error {
	doc := c.FormValue("document")
	if strings.TrimSpace(doc) == "" {
		if fh, err := c.FormFile("file"); err == nil {
			f, err := fh.Open()
			if err != nil {
				return &workflow.Error{Code: workflow.CodeMalformed, Message: "could not read the uploaded file", Err: err}
			}
			data, err := io.ReadAll(io.LimitReader(f, s.cfg.BodyLimit+1))
			f.Close()
			if err != nil {
				return &workflow.Error{Code: workflow.CodeMalformed, Message: "could not read the uploaded file", Err: err}
			}
			if int64(len(data)) > s.cfg.BodyLimit {
				return tooLarge(s.cfg.BodyLimit)
			}
			doc = string(data)
		}
	}
	if strings.TrimSpace(doc) == "" {
		return &workflow.Error{Code: workflow.CodeInvalid, Message: "nothing to import",
			Problems: []workflow.Problem{{Message: "paste a workflow's JSON or choose a .json file"}}}
	}
	w, err := s.parseWorkflow([]byte(doc))
	if err != nil {
		return err
	}
	if w.Status == "" {
		w.Status = workflow.StatusDraft
	}
	w.ID = ""
	if err := s.store.CreateWorkflow(c.Request().Context(), w); err != nil {
		return fmt.Errorf("create workflow %q: %w", w.Name, err)
	}
	return goTo(c, "/ui/workflows/"+w.ID)
}

// runForm is the form that starts an execution, built from the workflow's
// variables.
type runForm struct {
	WorkflowID string
	Mode       string
	Vars       []runVar
}

type runVar struct {
	Name, Field, Value, Type, Description string
	JSON                                  bool // the default is not a string: the field holds JSON
	Long                                  bool
	Secret                                bool // never shown; left empty, the stored value is used
}

func newRunForm(w *workflow.Workflow) runForm {
	f := runForm{WorkflowID: w.ID, Mode: w.Mode()}
	for _, v := range w.Variables {
		rv := runVar{Name: v.Name, Field: "input." + v.Name, Type: v.Type, Description: v.Description}
		switch val := v.Value.(type) {
		case string:
			rv.Value = val
		case nil:
		default:
			rv.JSON = true
			rv.Value, _ = jsonText(val, "")
		}
		rv.Long = len(rv.Value) > 80 || strings.Contains(rv.Value, "\n")
		if v.Secret {
			rv.Value, rv.Secret, rv.Long = "", true, false
		}
		f.Vars = append(f.Vars, rv)
	}
	return f
}

type workflowPage struct {
	CSRF      string
	W         *workflow.Workflow
	Graph     graphView
	JSON      string
	Run       runForm
	Execs     []*workflow.Execution
	ExecTotal int
}

// editableJSON is the document the editor shows: the workflow without the
// fields the server owns.
func editableJSON(w *workflow.Workflow) string {
	doc := struct {
		Name      string              `json:"name"`
		Status    string              `json:"status,omitempty"`
		Metadata  map[string]any      `json:"metadata,omitempty"`
		Nodes     []workflow.Node     `json:"nodes"`
		Edges     []workflow.Edge     `json:"edges"`
		Variables []workflow.Variable `json:"variables"`
	}{w.Name, w.Status, w.Metadata, w.Nodes, w.Edges, w.Variables}
	if doc.Edges == nil {
		doc.Edges = []workflow.Edge{}
	}
	if doc.Variables == nil {
		doc.Variables = []workflow.Variable{}
	}
	text, err := jsonText(doc, "  ")
	if err != nil {
		return ""
	}
	return text
}

func (s *Server) uiWorkflow(c echo.Context) error {
	ctx := c.Request().Context()
	w, err := s.store.GetWorkflow(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	f := store.ExecutionFilter{WorkflowID: w.ID, Limit: uiRecentExecutions}
	execs, err := s.store.ListExecutions(ctx, f)
	if err != nil {
		return fmt.Errorf("list executions of %s: %w", w.ID, err)
	}
	total, err := s.store.CountExecutions(ctx, f)
	if err != nil {
		return fmt.Errorf("count executions of %s: %w", w.ID, err)
	}
	data := workflowPage{CSRF: csrfToken(c), W: w, Graph: layoutGraph(w, nil), JSON: editableJSON(w.Redacted()), Run: newRunForm(w), Execs: execs, ExecTotal: total}
	return s.page(c, http.StatusOK, "workflow", w.Name, "workflows", data)
}

// uiSave replaces the workflow with the editor's document. On success the
// form gets a note and the graph, header and run form are swapped out of
// band; on failure the problems go to the form's error area and the text
// stays.
func (s *Server) uiSave(c echo.Context) error {
	ctx := c.Request().Context()
	current, err := s.store.GetWorkflow(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	doc := c.FormValue("document")
	if strings.TrimSpace(doc) == "" {
		return &workflow.Error{Code: workflow.CodeInvalid, Message: "the document is empty",
			Problems: []workflow.Problem{{Message: "the editor must hold the workflow's JSON"}}}
	}
	w, err := s.parseWorkflow([]byte(doc))
	if err != nil {
		return err
	}
	if w.Status == "" {
		w.Status = workflow.StatusDraft
	}
	w.ID, w.CreatedAt = current.ID, current.CreatedAt
	// The editor showed secret values masked; a mask sent back keeps the
	// stored value.
	w.RestoreSecrets(current)
	if err := s.store.UpdateWorkflow(ctx, w); err != nil {
		return fmt.Errorf("update workflow %s: %w", w.ID, err)
	}
	saved, err := s.store.GetWorkflow(ctx, w.ID)
	if err != nil {
		return err
	}
	data := workflowPage{CSRF: csrfToken(c), W: saved, Graph: layoutGraph(saved, nil), Run: newRunForm(saved)}
	return s.fragment(c, http.StatusOK, "workflow-saved", data)
}

// uiDelete deletes a workflow (its executions are kept). From the list the
// row is swapped for nothing; from the workflow's page the browser goes to
// the list.
func (s *Server) uiDelete(c echo.Context) error {
	id := c.Param("id")
	if err := s.store.DeleteWorkflow(c.Request().Context(), id); err != nil {
		return err
	}
	if c.QueryParam("from") == "list" && isHTMX(c) {
		return c.HTML(http.StatusOK, "")
	}
	return goTo(c, "/ui/workflows")
}

// uiRun starts an execution with the run form's inputs and mode, then goes
// to its page.
func (s *Server) uiRun(c echo.Context) error {
	ctx := c.Request().Context()
	w, err := s.store.GetWorkflow(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return &workflow.Error{Code: workflow.CodeMalformed, Message: "could not read the form", Err: err}
	}
	inputs := map[string]any{}
	var ps []workflow.Problem
	for _, v := range w.Variables {
		vals, ok := form["input."+v.Name]
		if !ok || len(vals) == 0 {
			continue
		}
		raw := vals[0]
		if v.Secret && (raw == "" || raw == workflow.Mask) {
			continue // the stored secret
		}
		switch v.Value.(type) {
		case string, nil:
			inputs[v.Name] = raw
		default:
			var val any
			if err := json.Unmarshal([]byte(raw), &val); err != nil {
				ps = append(ps, workflow.Problem{Path: "inputs." + v.Name, Message: "must be JSON, like its default (a number, true or false, a list or an object)"})
				continue
			}
			inputs[v.Name] = val
		}
	}
	mode := form.Get("mode")
	if mode != "" && mode != workflow.ModeSimple && mode != workflow.ModePubSub {
		ps = append(ps, workflow.Problem{Path: "communication_mode", Message: fmt.Sprintf("must be %q or %q", workflow.ModeSimple, workflow.ModePubSub)})
	}
	ps = append(ps, workflow.CheckInputs(inputs, s.cfg.Limits)...)
	if len(ps) > 0 {
		return &workflow.Error{Code: workflow.CodeInvalid, Message: "the run form has problems", Problems: ps}
	}
	run, err := s.runner.Start(w, executor.Options{Inputs: inputs, Mode: mode})
	if err != nil {
		return err
	}
	if err := s.stored(ctx, run); err != nil {
		return err
	}
	return goTo(c, "/ui/executions/"+run.ID)
}

// option is one choice of a <select>.
type option struct{ Value, Label string }

type executionsPage struct {
	Rows      []*workflow.Execution
	Workflows []option
	Statuses  []string
	Workflow  string
	Status    string
	Total     int
	Pager     pager
}

var execStatuses = []string{workflow.ExecQueued, workflow.ExecRunning, workflow.ExecSuccess, workflow.ExecError, workflow.ExecCancelled, workflow.ExecInterrupted}

func (s *Server) uiExecutions(c echo.Context) error {
	ctx := c.Request().Context()
	pg := pageNumber(c)
	data := executionsPage{Workflow: c.QueryParam("workflow"), Status: c.QueryParam("status"), Statuses: execStatuses}
	known := false
	for _, st := range execStatuses {
		known = known || st == data.Status
	}
	if !known {
		data.Status = ""
	}
	f := store.ExecutionFilter{WorkflowID: data.Workflow, Status: data.Status, Limit: uiExecutionsPerPage, Offset: (pg - 1) * uiExecutionsPerPage}
	rows, err := s.store.ListExecutions(ctx, f)
	if err != nil {
		return fmt.Errorf("list executions: %w", err)
	}
	total, err := s.store.CountExecutions(ctx, f)
	if err != nil {
		return fmt.Errorf("count executions: %w", err)
	}
	data.Rows, data.Total = rows, total
	data.Pager = newPager(url.Values{"workflow": {data.Workflow}, "status": {data.Status}}, "/ui/executions", pg, uiExecutionsPerPage, total)
	if c.Request().Header.Get("HX-Target") == "exec-list" {
		c.Response().Header().Add("Vary", "HX-Target")
		return s.fragment(c, http.StatusOK, "executions-list", data)
	}
	wfs, err := s.store.ListWorkflows(ctx, 1000, 0)
	if err != nil {
		return fmt.Errorf("list workflows: %w", err)
	}
	for _, w := range wfs {
		data.Workflows = append(data.Workflows, option{w.ID, w.Name})
	}
	sort.SliceStable(data.Workflows, func(i, j int) bool {
		return strings.ToLower(data.Workflows[i].Label) < strings.ToLower(data.Workflows[j].Label)
	})
	return s.page(c, http.StatusOK, "executions", "Executions", "executions", data)
}

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
	title := "Execution of " + x.WorkflowName
	return s.page(c, http.StatusOK, "execution", title, "executions", newExecutionPage(csrfToken(c), w, known, x))
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

// busInfoView is what the bus page shows of BusView.Info.
type busInfoView struct {
	Configured  bool
	Kind        string
	Addr        string
	URL         string
	Connected   bool
	Latency     string
	Error       string
	Agents      []string
	Watch       string
	Channels    string
	PendingAsks string
}

func (s *Server) busInfo(ctx context.Context) busInfoView {
	if s.cfg.Bus == nil {
		return busInfoView{}
	}
	info := s.cfg.Bus.Info(ctx)
	v := busInfoView{Configured: true}
	str := func(k string) string {
		if x, ok := info[k]; ok && x != nil {
			return fmt.Sprint(x)
		}
		return ""
	}
	v.Kind, v.Addr, v.Watch, v.Error = str("kind"), str("addr"), str("watch"), str("error")
	v.URL = redactURL(str("url"))
	v.Connected, _ = info["connected"].(bool)
	if f, ok := info["latency_ms"].(float64); ok {
		v.Latency = fmtMillis(f)
	}
	v.Channels, v.PendingAsks = str("channels"), str("pending_asks")
	switch a := info["agents"].(type) {
	case []string:
		v.Agents = append(v.Agents, a...)
	case []any:
		for _, x := range a {
			v.Agents = append(v.Agents, fmt.Sprint(x))
		}
	}
	sort.Strings(v.Agents)
	return v
}

// redactURL hides any password in a Redis URL, whatever the bus already did.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func (s *Server) uiBus(c echo.Context) error {
	return s.page(c, http.StatusOK, "bus", "Bus", "bus", s.busInfo(c.Request().Context()))
}

func (s *Server) uiBusInfo(c echo.Context) error {
	return s.fragment(c, http.StatusOK, "bus-info", s.busInfo(c.Request().Context()))
}

type settingsPage struct {
	Provider, BaseURL, Model string
	DataDir, Version         string
	Bus                      busInfoView
}

func (s *Server) uiSettings(c echo.Context) error {
	data := settingsPage{DataDir: s.cfg.DataDir, Version: s.cfg.Version}
	if m := asMap(s.cfg.Settings["llm"]); m != nil {
		get := func(k string) string { v, _ := m[k].(string); return v }
		data.Provider, data.BaseURL, data.Model = get("provider"), redactURL(get("base_url")), get("model")
	}
	if data.DataDir == "" {
		data.DataDir, _ = s.cfg.Settings["data_dir"].(string)
	}
	if m := asMap(s.cfg.Settings["bus"]); m != nil {
		data.Bus = busInfoView{Configured: true}
		data.Bus.Kind, _ = m["kind"].(string)
		data.Bus.Addr, _ = m["addr"].(string)
		u, _ := m["url"].(string)
		data.Bus.URL = redactURL(u)
	}
	return s.page(c, http.StatusOK, "settings", "Settings", "settings", data)
}

// asMap turns a struct or map into a map through JSON, so that the web
// package needs no import of the package that defined it.
func asMap(v any) map[string]any {
	if v == nil {
		return nil
	}
	if m, ok := v.(map[string]any); ok {
		return m
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}
