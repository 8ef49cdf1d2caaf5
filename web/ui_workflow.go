package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// uiRecentExecutions is how many executions a workflow's page lists.
const uiRecentExecutions = 10

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
	Hook      hookInfo
	Schedule  *workflow.Schedule
	NextRun   *time.Time
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
	if err := s.addTriggers(c, &data); err != nil {
		return err
	}
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
	s.reloadSchedule(ctx, w.ID)
	saved, err := s.store.GetWorkflow(ctx, w.ID)
	if err != nil {
		return err
	}
	data := workflowPage{CSRF: csrfToken(c), W: saved, Graph: layoutGraph(saved, nil), Run: newRunForm(saved),
		Schedule: saved.Schedule(), NextRun: s.nextRun(saved.ID)}
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
	s.reloadSchedule(c.Request().Context(), id)
	if c.QueryParam("from") == "list" && isHTMX(c) {
		return c.HTML(http.StatusOK, "")
	}
	return goTo(c, "/ui/workflows")
}

// uiRun starts an execution with the run form's inputs, mode and
// placement, then goes to its page.
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
	// The form hides the placement for simple mode but still posts it;
	// a simple run has no agents to place and ignores it.
	placement := form.Get("placement")
	if placement != "" && placement != workflow.PlacementAuto && placement != workflow.PlacementLocal {
		ps = append(ps, workflow.Problem{Path: "placement", Message: fmt.Sprintf("must be %q or %q", workflow.PlacementAuto, workflow.PlacementLocal)})
	}
	ps = append(ps, workflow.CheckInputs(inputs, s.cfg.Limits)...)
	if len(ps) > 0 {
		return &workflow.Error{Code: workflow.CodeInvalid, Message: "the run form has problems", Problems: ps}
	}
	run, err := s.runner.Start(w, executor.Options{Inputs: inputs, Mode: mode, Placement: placement, Trigger: &workflow.Trigger{Kind: workflow.TriggerDashboard}})
	if err != nil {
		return err
	}
	if err := s.stored(ctx, run); err != nil {
		return err
	}
	return goTo(c, "/ui/executions/"+run.ID)
}
