package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// uiExecutionsPerPage is the page size of the execution list.
const uiExecutionsPerPage = 50

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

func (s *Server) uiExecutions(c echo.Context) error {
	ctx := c.Request().Context()
	pg, err := pageNumber(c)
	if err != nil {
		return err
	}
	status, err := statusParam(c)
	if err != nil {
		return err
	}
	data := executionsPage{Workflow: c.QueryParam("workflow"), Status: status, Statuses: execStatuses}
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
