package web

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/workflow"
)

// uiWorkflowsPerPage is the page size of the workflow list.
const uiWorkflowsPerPage = 100

// workflowRow is one line of the workflow list.
type workflowRow struct {
	ID, Name, Mode, Description string
	Nodes                       int
	Runs                        int
	LastID, LastStatus          string
	LastAt                      time.Time
	NextRun                     *time.Time // the next scheduled run; nil without a schedule
	Spent                       *float64   // the cost of its executions; nil when none
	SpentUnknown                int        // ended executions whose cost is not known
}

type workflowsPage struct {
	Rows              []workflowRow
	Total             int
	Pager             pager
	ImportPlaceholder string
}

func (s *Server) uiWorkflows(c echo.Context) error {
	ctx := c.Request().Context()
	pg, err := pageNumber(c)
	if err != nil {
		return err
	}
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
		r := workflowRow{ID: w.ID, Name: w.Name, Mode: w.Mode(), Description: w.Description(), Nodes: len(w.Nodes), NextRun: s.nextRun(w.ID)}
		if sum, ok := sums[w.ID]; ok {
			r.Runs, r.LastID, r.LastStatus, r.LastAt = sum.Count, sum.LastID, sum.LastStatus, sum.LastAt
			r.Spent, r.SpentUnknown = &sum.CostUSD, sum.CostUnknown
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
	s.reloadSchedule(c.Request().Context(), w.ID)
	return goTo(c, "/ui/workflows/"+w.ID)
}
