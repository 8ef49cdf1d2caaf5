package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// waitingRow is one execution on the "Waiting for you" page.
type waitingRow struct {
	X     *workflow.Execution
	Waits []workflow.Wait
}

// uiWaiting lists the executions that wait for a person, oldest first:
// the one waiting longest comes first.
func (s *Server) uiWaiting(c echo.Context) error {
	ctx := c.Request().Context()
	list, err := s.store.ListExecutions(ctx, store.ExecutionFilter{Status: workflow.ExecWaiting, Limit: 500})
	if err != nil {
		return fmt.Errorf("list waiting executions: %w", err)
	}
	rows := make([]waitingRow, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		x, err := s.store.GetExecution(ctx, list[i].ID)
		if err != nil {
			if workflow.ErrorCode(err) == workflow.CodeNotFound {
				continue
			}
			return err
		}
		rows = append(rows, waitingRow{X: x, Waits: x.Waiting})
	}
	return s.page(c, http.StatusOK, "waiting", "Waiting for you", "waiting", rows)
}

// uiInput answers a human node from the execution page's form.
func (s *Server) uiInput(c echo.Context) error {
	id := c.Param("id")
	w, _, err := s.waiter(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := w.Answer(id, c.FormValue("node_id"), c.FormValue("answer")); err != nil {
		return err
	}
	return s.uiDone(c, id, "Answer sent.")
}

// uiApprove raises the budget of an execution waiting over it, by the
// tokens and dollars of the form (either may be empty).
func (s *Server) uiApprove(c echo.Context) error {
	id := c.Param("id")
	var req approveRequest
	var ps []workflow.Problem
	if v := strings.TrimSpace(c.FormValue("extra_tokens")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			ps = append(ps, workflow.Problem{Path: "extra_tokens", Message: "must be a positive whole number of tokens"})
		}
		req.ExtraTokens = n
	}
	if v := strings.TrimSpace(c.FormValue("extra_usd")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) {
			ps = append(ps, workflow.Problem{Path: "extra_usd", Message: "must be a positive number of US dollars"})
		}
		req.ExtraUSD = f
	}
	if len(ps) == 0 && req.ExtraTokens == 0 && req.ExtraUSD == 0 {
		ps = append(ps, workflow.Problem{Path: "extra_tokens", Message: "give more tokens or dollars to approve"})
	}
	if len(ps) > 0 {
		return &workflow.Error{Code: workflow.CodeInvalid, Message: "approval is invalid", Problems: ps}
	}
	w, _, err := s.waiter(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := w.Approve(id, req.ExtraTokens, req.ExtraUSD); err != nil {
		return err
	}
	return s.uiDone(c, id, "Approved.")
}

// uiStop ends an execution that waits for a person.
func (s *Server) uiStop(c echo.Context) error {
	id := c.Param("id")
	w, _, err := s.waiter(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := w.Stop(id); err != nil {
		return err
	}
	return s.uiDone(c, id, "Stopping…")
}

// uiDone answers a form of the execution page: a status line for htmx
// (the live page shows what follows), the page itself without JavaScript.
func (s *Server) uiDone(c echo.Context, id, msg string) error {
	if isHTMX(c) {
		return c.HTML(http.StatusAccepted, msg)
	}
	return c.Redirect(http.StatusSeeOther, "/ui/executions/"+id)
}

// waitingCount is the number the nav shows next to "Waiting for you"; 0
// when it cannot be read (the page itself says why).
func (s *Server) waitingCount(c echo.Context) int {
	n, err := s.store.CountExecutions(c.Request().Context(), store.ExecutionFilter{Status: workflow.ExecWaiting})
	if err != nil {
		return 0
	}
	return n
}
