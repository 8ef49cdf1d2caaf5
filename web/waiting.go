package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/workflow"
)

// Waiter answers, approves and stops the executions that wait for a
// person. executor.Executor satisfies it; a Runner without it serves no
// such request.
type Waiter interface {
	Answer(id, nodeID, answer string) error
	Approve(id string, extraTokens int, extraUSD float64) error
	Stop(id string) error
}

// waiter returns the runner's Waiter, once execution id is known to wait:
// a missing execution is not found, and one in another status a conflict.
func (s *Server) waiter(ctx context.Context, id string) (Waiter, *workflow.Execution, error) {
	x, err := s.store.GetExecution(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if x.Status != workflow.ExecWaiting {
		return nil, nil, workflow.Errorf(workflow.CodeConflict, "execution %s is %s, not waiting", id, x.Status)
	}
	w, ok := s.runner.(Waiter)
	if !ok {
		return nil, nil, workflow.Errorf(workflow.CodeUnavailable, "this server cannot continue waiting executions")
	}
	return w, x, nil
}

// approveRequest is the body of POST …/approve.
type approveRequest struct {
	ExtraTokens int
	ExtraUSD    float64
}

// parseApprove reads {"extra_tokens": 5000} and/or {"extra_usd": 1}: at
// least one, each positive; any other key is refused by name.
func parseApprove(body []byte) (approveRequest, error) {
	var req approveRequest
	raw, err := jsonObject(body, `{"extra_tokens": 5000} or {"extra_usd": 1}`)
	if err != nil {
		return req, err
	}
	var ps []workflow.Problem
	for k, v := range raw {
		switch k {
		case "extra_tokens":
			f, ok := v.(json.Number)
			n, nerr := f.Int64()
			if !ok || nerr != nil || n < 1 || n > math.MaxInt32 {
				ps = append(ps, workflow.Problem{Path: k, Message: fmt.Sprintf("must be a positive whole number of tokens, not %s", bodyValue(v))})
				continue
			}
			req.ExtraTokens = int(n)
		case "extra_usd":
			f, ok := v.(json.Number)
			x, ferr := f.Float64()
			if !ok || ferr != nil || !(x > 0) || math.IsInf(x, 0) {
				ps = append(ps, workflow.Problem{Path: k, Message: fmt.Sprintf("must be a positive number of US dollars, not %s", bodyValue(v))})
				continue
			}
			req.ExtraUSD = x
		default:
			ps = append(ps, workflow.Problem{Path: k, Message: "unknown field; an approval has extra_tokens and extra_usd"})
		}
	}
	if len(ps) == 0 && req.ExtraTokens == 0 && req.ExtraUSD == 0 {
		ps = append(ps, workflow.Problem{Path: "extra_tokens", Message: "give extra_tokens or extra_usd: how much more the execution may spend"})
	}
	if len(ps) > 0 {
		return req, &workflow.Error{Code: workflow.CodeInvalid, Message: "approval is invalid", Problems: sortProblems(ps)}
	}
	return req, nil
}

// parseInput reads {"node_id": "...", "answer": "..."}.
func parseInput(body []byte) (nodeID, answer string, err error) {
	raw, err := jsonObject(body, `{"node_id": "review", "answer": "yes"}`)
	if err != nil {
		return "", "", err
	}
	var ps []workflow.Problem
	for k, v := range raw {
		switch k {
		case "node_id", "answer":
			s, ok := v.(string)
			if !ok || k == "node_id" && s == "" {
				ps = append(ps, workflow.Problem{Path: k, Message: fmt.Sprintf("must be a non-empty string, not %s", bodyValue(v))})
				continue
			}
			if k == "node_id" {
				nodeID = s
			} else {
				answer = s
			}
		default:
			ps = append(ps, workflow.Problem{Path: k, Message: "unknown field; an input has node_id and answer"})
		}
	}
	for _, k := range []string{"node_id", "answer"} {
		if _, ok := raw[k]; !ok {
			ps = append(ps, workflow.Problem{Path: k, Message: "is required"})
		}
	}
	if len(ps) > 0 {
		return "", "", &workflow.Error{Code: workflow.CodeInvalid, Message: "input is invalid", Problems: sortProblems(ps)}
	}
	return nodeID, answer, nil
}

// jsonObject decodes body as one JSON object, numbers as json.Number.
func jsonObject(body []byte, example string) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, &workflow.Error{Code: workflow.CodeMalformed, Message: "the body must be a JSON object like " + example, Err: err}
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, &workflow.Error{Code: workflow.CodeInvalid, Message: "the body must be a JSON object like " + example,
			Problems: []workflow.Problem{{Path: "", Message: "must be a JSON object"}}}
	}
	return obj, nil
}

func bodyValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

func sortProblems(ps []workflow.Problem) []workflow.Problem {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Path < ps[j-1].Path; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	return ps
}

// approveExecution raises the budget of an execution waiting over it.
func (s *Server) approveExecution(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	req, err := parseApprove(body)
	if err != nil {
		return err
	}
	id := c.Param("execution_id")
	w, _, err := s.waiter(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := w.Approve(id, req.ExtraTokens, req.ExtraUSD); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"execution_id": id, "detail": "approved; the execution goes on",
		"extra_tokens": req.ExtraTokens, "extra_usd": req.ExtraUSD})
}

// stopExecution ends an execution that waits for a person.
func (s *Server) stopExecution(c echo.Context) error {
	id := c.Param("execution_id")
	w, _, err := s.waiter(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := w.Stop(id); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"execution_id": id, "detail": "stop requested"})
}

// inputExecution answers a human node of a waiting execution.
func (s *Server) inputExecution(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	node, answer, err := parseInput(body)
	if err != nil {
		return err
	}
	id := c.Param("execution_id")
	w, _, err := s.waiter(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := w.Answer(id, node, answer); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"execution_id": id, "node_id": node, "detail": "answer taken"})
}

// waitRun waits until run ends or first waits for a person, and reports
// which.
func waitRun(ctx context.Context, run *executor.Run) (waiting bool, err error) {
	select {
	case <-run.Done():
		return false, nil
	case <-run.Waiting():
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// getExecutionOf answers with the stored record of execution id.
func (s *Server) getExecutionOf(c echo.Context, id string) error {
	x, err := s.store.GetExecution(c.Request().Context(), id)
	if err != nil {
		return fmt.Errorf("read execution %s: %w", id, err)
	}
	return c.JSON(http.StatusOK, x)
}
