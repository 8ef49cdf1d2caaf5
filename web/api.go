package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

func (s *Server) createWorkflow(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	w, err := s.parseWorkflow(body)
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
	s.reloadSchedule(c.Request().Context(), w.ID)
	return c.JSON(http.StatusCreated, w.Redacted())
}

func (s *Server) listWorkflows(c echo.Context) error {
	limit, offset, err := page(c, 100, 1000)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	list, err := s.store.ListWorkflows(ctx, limit, offset)
	if err != nil {
		return fmt.Errorf("list workflows: %w", err)
	}
	total, err := s.store.CountWorkflows(ctx)
	if err != nil {
		return fmt.Errorf("count workflows: %w", err)
	}
	c.Response().Header().Set("X-Total-Count", strconv.Itoa(total))
	out := make([]*workflow.Workflow, len(list))
	for i, w := range list {
		out[i] = w.Redacted()
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getWorkflow(c echo.Context) error {
	w, err := s.store.GetWorkflow(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, w.Redacted())
}

// updateWorkflow replaces the top-level fields present in the body and keeps
// the others, then validates the whole result: nothing invalid is stored.
func (s *Server) updateWorkflow(c echo.Context) error {
	ctx := c.Request().Context()
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	current, err := s.store.GetWorkflow(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	w, err := mergeWorkflow(current, body)
	if err != nil {
		return err
	}
	if ps := workflow.CheckLimits(w, s.cfg.Limits); len(ps) > 0 {
		return &workflow.Error{Code: workflow.CodeInvalid, Message: "workflow is over a limit", Problems: ps}
	}
	w.ID, w.CreatedAt = current.ID, current.CreatedAt
	w.RestoreSecrets(current)
	if err := s.store.UpdateWorkflow(ctx, w); err != nil {
		return fmt.Errorf("update workflow %s: %w", current.ID, err)
	}
	s.reloadSchedule(ctx, w.ID)
	return c.JSON(http.StatusOK, w.Redacted())
}

// mergeWorkflow applies a partial document (top-level keys) to current and
// parses the result.
func mergeWorkflow(current *workflow.Workflow, patch []byte) (*workflow.Workflow, error) {
	var changes map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(patch))
	if err := dec.Decode(&changes); err != nil {
		// Let Parse produce the precise syntax error.
		_, perr := workflow.Parse(patch)
		if perr != nil && workflow.ErrorCode(perr) == workflow.CodeMalformed {
			return nil, perr
		}
		return nil, &workflow.Error{Code: workflow.CodeMalformed, Message: "the update must be a JSON object of workflow fields", Err: err}
	}
	base, err := json.Marshal(current)
	if err != nil {
		return nil, fmt.Errorf("encode workflow %s: %w", current.ID, err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("decode workflow %s: %w", current.ID, err)
	}
	for k, v := range changes {
		doc[k] = v
	}
	for _, k := range []string{"_id", "id", "created_at", "updated_at"} {
		delete(doc, k)
	}
	merged, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode updated workflow: %w", err)
	}
	return workflow.Parse(merged)
}

func (s *Server) deleteWorkflow(c echo.Context) error {
	id := c.Param("id")
	if err := s.store.DeleteWorkflow(c.Request().Context(), id); err != nil {
		return err
	}
	s.reloadSchedule(c.Request().Context(), id)
	return c.JSON(http.StatusOK, map[string]any{"detail": "workflow deleted", "id": id})
}

// executeRequest is the body of POST /workflows/{id}/execute.
type executeRequest struct {
	Inputs            map[string]any `json:"inputs"`
	AsyncExecution    bool           `json:"async_execution"`
	CommunicationMode string         `json:"communication_mode"`
	Placement         string         `json:"placement"` // "auto" (default) or "local"
}

func (s *Server) executeWorkflow(c echo.Context) error {
	ctx := c.Request().Context()
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	req, err := s.parseExecuteRequest(body)
	if err != nil {
		return err
	}
	w, err := s.store.GetWorkflow(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	run, err := s.runner.Start(w, executor.Options{Inputs: req.Inputs, Mode: req.CommunicationMode, Placement: req.Placement, KeepRecord: !req.AsyncExecution,
		Trigger: &workflow.Trigger{Kind: workflow.TriggerAPI}, Trace: remoteParent(c.Request())})
	if err != nil {
		return err
	}
	return s.answerRun(c, run, w.ID, req.AsyncExecution)
}

// parseWorkflow parses and validates a document and checks it against the
// configured limits.
func (s *Server) parseWorkflow(body []byte) (*workflow.Workflow, error) {
	w, err := workflow.Parse(body)
	if err != nil {
		return nil, err
	}
	if ps := workflow.CheckLimits(w, s.cfg.Limits); len(ps) > 0 {
		return nil, &workflow.Error{Code: workflow.CodeInvalid, Message: "workflow is over a limit", Problems: ps}
	}
	return w, nil
}

func (s *Server) parseExecuteRequest(body []byte) (executeRequest, error) {
	req, err := parseExecuteRequest(body)
	if err != nil {
		return req, err
	}
	if ps := workflow.CheckInputs(req.Inputs, s.cfg.Limits); len(ps) > 0 {
		return req, &workflow.Error{Code: workflow.CodeInvalid, Message: "inputs are over a limit", Problems: ps}
	}
	return req, nil
}

func parseExecuteRequest(body []byte) (executeRequest, error) {
	var req executeRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return req, &workflow.Error{Code: workflow.CodeMalformed, Message: "the body must be a JSON object like {\"inputs\": {}, \"async_execution\": false}", Err: err}
	}
	var ps []workflow.Problem
	if v, ok := raw["inputs"]; ok && v != nil {
		if _, ok := v.(map[string]any); !ok {
			ps = append(ps, workflow.Problem{Path: "inputs", Message: "must be an object of input names to values"})
		}
	}
	if v, ok := raw["async_execution"]; ok && v != nil {
		if _, ok := v.(bool); !ok {
			ps = append(ps, workflow.Problem{Path: "async_execution", Message: "must be true or false"})
		}
	}
	if v, ok := raw["communication_mode"]; ok && v != nil {
		if m, ok := v.(string); !ok || m != "" && m != workflow.ModeSimple && m != workflow.ModePubSub {
			ps = append(ps, workflow.Problem{Path: "communication_mode", Message: fmt.Sprintf("must be %q or %q", workflow.ModeSimple, workflow.ModePubSub)})
		}
	}
	if v, ok := raw["placement"]; ok && v != nil {
		if p, ok := v.(string); !ok || p != "" && p != workflow.PlacementAuto && p != workflow.PlacementLocal {
			ps = append(ps, workflow.Problem{Path: "placement", Message: fmt.Sprintf("must be %q or %q", workflow.PlacementAuto, workflow.PlacementLocal)})
		}
	}
	if len(ps) > 0 {
		return req, &workflow.Error{Code: workflow.CodeInvalid, Message: "execute request is invalid", Problems: ps}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return req, &workflow.Error{Code: workflow.CodeInvalid, Message: "execute request is invalid", Err: err}
	}
	return req, nil
}

func (s *Server) getExecution(c echo.Context) error {
	x, err := s.store.GetExecution(c.Request().Context(), c.Param("execution_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, x)
}

func (s *Server) listExecutions(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if _, err := s.store.GetWorkflow(ctx, id); err != nil {
		return err
	}
	limit, offset, err := page(c, 50, 500)
	if err != nil {
		return err
	}
	status, err := statusParam(c)
	if err != nil {
		return err
	}
	f := store.ExecutionFilter{WorkflowID: id, Status: status, Limit: limit, Offset: offset}
	list, err := s.store.ListExecutions(ctx, f)
	if err != nil {
		return fmt.Errorf("list executions of %s: %w", id, err)
	}
	total, err := s.store.CountExecutions(ctx, f)
	if err != nil {
		return fmt.Errorf("count executions of %s: %w", id, err)
	}
	c.Response().Header().Set("X-Total-Count", strconv.Itoa(total))
	if list == nil {
		list = []*workflow.Execution{}
	}
	return c.JSON(http.StatusOK, list)
}

func (s *Server) cancelExecution(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("execution_id")
	x, err := s.store.GetExecution(ctx, id)
	if err != nil {
		return err
	}
	if workflow.Terminal(x.Status) {
		return workflow.Errorf(workflow.CodeConflict, "execution %s already ended with status %s", id, x.Status)
	}
	if !s.runner.Cancel(id) {
		return workflow.Errorf(workflow.CodeConflict, "execution %s is not running in this process", id)
	}
	return c.JSON(http.StatusAccepted, map[string]any{"execution_id": id, "detail": "cancel requested"})
}

// page reads limit and offset (or skip, as the original service named it).
func page(c echo.Context, def, max int) (limit, offset int, err error) {
	limit, offset = def, 0
	var ps []workflow.Problem
	if v := c.QueryParam("limit"); v != "" {
		n, convErr := strconv.Atoi(v)
		if convErr != nil || n < 1 || n > max {
			ps = append(ps, workflow.Problem{Path: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", max)})
		}
		limit = n
	}
	for _, name := range []string{"offset", "skip"} {
		if v := c.QueryParam(name); v != "" {
			n, convErr := strconv.Atoi(v)
			if convErr != nil || n < 0 {
				ps = append(ps, workflow.Problem{Path: name, Message: "must be a whole number, 0 or more"})
			}
			offset = n
		}
	}
	if len(ps) > 0 {
		return 0, 0, &workflow.Error{Code: workflow.CodeMalformed, Message: fmt.Sprintf("bad query parameter %q: %s", ps[0].Path, ps[0].Message), Problems: ps}
	}
	return limit, offset, nil
}

// resumeExecution re-runs an interrupted or failed execution from where it
// stopped, as a new execution linked to it: completed nodes keep their
// outputs and are not run again. The body is optional and like execute's;
// inputs in it override the first run's (secret inputs were not stored and
// must be given again, or the workflow's values are used).
func (s *Server) resumeExecution(c echo.Context) error {
	ctx := c.Request().Context()
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	req, err := s.parseExecuteRequest(body)
	if err != nil {
		return err
	}
	run, w, err := s.resume(ctx, c.Param("execution_id"), req.Inputs, req.CommunicationMode, !req.AsyncExecution)
	if err != nil {
		return err
	}
	return s.answerRun(c, run, w.ID, req.AsyncExecution)
}

// resume starts a new execution that continues execution id; the API and
// the dashboard share it.
// keep asks the executor to keep the record for a synchronous answer.
func (s *Server) resume(ctx context.Context, id string, overrides map[string]any, mode string, keep bool) (*executor.Run, *workflow.Workflow, error) {
	prev, err := s.store.GetExecution(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if prev.Status != workflow.ExecInterrupted && prev.Status != workflow.ExecError {
		return nil, nil, workflow.Errorf(workflow.CodeConflict, "only an interrupted or failed execution can be resumed; %s is %s", prev.ID, prev.Status)
	}
	if prev, err = s.withResumed(ctx, prev); err != nil {
		return nil, nil, err
	}
	w, err := s.store.GetWorkflow(ctx, prev.WorkflowID)
	if workflow.ErrorCode(err) == workflow.CodeNotFound {
		return nil, nil, workflow.Errorf(workflow.CodeConflict, "execution %s cannot be resumed: its workflow %s was deleted", prev.ID, prev.WorkflowID)
	}
	if err != nil {
		return nil, nil, err
	}
	inputs := map[string]any{}
	for k, v := range prev.Inputs {
		if v != workflow.Mask {
			inputs[k] = v
		}
	}
	for k, v := range overrides {
		inputs[k] = v
	}
	if mode == "" {
		mode = prev.RequestedMode
	}
	run, err := s.runner.Start(w, executor.Options{Inputs: inputs, Mode: mode, Resume: prev, KeepRecord: keep, Trigger: resumeTrigger(prev)})
	if err != nil {
		return nil, nil, err
	}
	return run, w, nil
}

// withResumed returns prev with the completed nodes and the shared context
// of the executions it resumed, nearest first, where prev's own record lacks
// them. A resume takes its predecessor's completed nodes over as it runs;
// one that stopped before it recorded them would otherwise pass nothing on,
// and its predecessor, resumed once already, cannot be resumed again. An
// execution pruned from the chain ends it.
func (s *Server) withResumed(ctx context.Context, prev *workflow.Execution) (*workflow.Execution, error) {
	if prev.ResumedFrom == "" {
		return prev, nil
	}
	merged := *prev
	merged.NodeStates = make(map[string]*workflow.NodeState, len(prev.NodeStates))
	maps.Copy(merged.NodeStates, prev.NodeStates)
	merged.SharedContext = make(map[string]any, len(prev.SharedContext))
	maps.Copy(merged.SharedContext, prev.SharedContext)
	seen := map[string]bool{prev.ID: true}
	for from := prev.ResumedFrom; from != "" && !seen[from]; {
		seen[from] = true
		older, err := s.store.GetExecution(ctx, from)
		if workflow.ErrorCode(err) == workflow.CodeNotFound {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read execution %s, which %s resumed: %w", from, prev.ID, err)
		}
		for id, st := range older.NodeStates {
			if cur := merged.NodeStates[id]; st.Status == workflow.NodeCompleted && (cur == nil || cur.Status != workflow.NodeCompleted) {
				merged.NodeStates[id] = st
			}
		}
		for k, v := range older.SharedContext {
			if _, ok := merged.SharedContext[k]; !ok {
				merged.SharedContext[k] = v
			}
		}
		from = older.ResumedFrom
	}
	return &merged, nil
}

// stored waits until run's record is in the store, so a client that is
// given its id can read it. If it cannot be recorded the run is cancelled:
// nobody could follow it. A client that goes away meanwhile leaves the run
// alone: its record is written all the same, for anyone to read.
func (s *Server) stored(ctx context.Context, run *executor.Run) error {
	if err := run.Stored(ctx); err != nil {
		if ctx.Err() == nil {
			s.runner.Cancel(run.ID)
		}
		return err
	}
	return nil
}

// answerRun answers an execute or resume request: 202 at once when async,
// else 200 with the finished record.
func (s *Server) answerRun(c echo.Context, run *executor.Run, workflowID string, async bool) error {
	ctx := c.Request().Context()
	if err := s.stored(ctx, run); err != nil {
		return err
	}
	if async {
		return c.JSON(http.StatusAccepted, map[string]any{
			"execution_id": run.ID, "workflow_id": workflowID, "status": workflow.ExecQueued,
			"started_at": run.Started.Format(time.RFC3339Nano),
			"detail":     "execution started; poll GET /workflows/executions/" + run.ID,
		})
	}
	// An execution that waits for a person answers with its record as it
	// waits, not when the person has answered.
	if waiting, err := waitRun(ctx, run); err != nil {
		return fmt.Errorf("wait for execution %s: %w", run.ID, err)
	} else if waiting {
		return s.getExecutionOf(c, run.ID)
	}
	// The record kept by the run is the stored one (the executor's tests
	// compare them); it saves reading it back.
	if x, ok := run.Record(); ok {
		return c.JSON(http.StatusOK, x)
	}
	x, err := s.store.GetExecution(ctx, run.ID)
	if err != nil {
		return fmt.Errorf("read execution %s: %w", run.ID, err)
	}
	return c.JSON(http.StatusOK, x)
}
