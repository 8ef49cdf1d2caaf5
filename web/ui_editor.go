package web

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/workflow"
)

// editorPage is what the visual editor's page reads: the document to edit
// (secrets masked) and where its script posts.
type editorPage struct {
	ID    string // "" for a new workflow
	Name  string
	JSON  string
	Owned bool // the workflow exists: the page links back to it
}

// newWorkflowDoc is the document a new workflow starts from: a name and an
// empty canvas.
const newWorkflowDoc = `{
  "name": "New workflow",
  "status": "draft",
  "metadata": {"communication_mode": "simple"},
  "nodes": [],
  "edges": [],
  "variables": []
}`

// uiEditNew opens the visual editor on an empty workflow.
func (s *Server) uiEditNew(c echo.Context) error {
	return s.page(c, http.StatusOK, "editor", "New workflow", "workflows", editorPage{Name: "New workflow", JSON: newWorkflowDoc})
}

// uiEdit opens the visual editor on a stored workflow.
func (s *Server) uiEdit(c echo.Context) error {
	w, err := s.store.GetWorkflow(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return s.page(c, http.StatusOK, "editor", "Edit "+w.Name, "workflows", editorPage{ID: w.ID, Name: w.Name, JSON: editableJSON(w.Redacted()), Owned: true})
}

// editorCheck is the answer to the editor's validation request: the
// problems of the document, each with its JSON path. Problems are the
// answer here, not a failure, so it comes with status 200.
type editorCheck struct {
	Valid    bool               `json:"valid"`
	Detail   string             `json:"detail,omitempty"`
	Problems []workflow.Problem `json:"problems"`
}

// editorParse reads the editor's document from the body and validates it as
// the API would. For a stored workflow (id not "") the masked secrets the
// editor shows stand for the stored values.
func (s *Server) editorParse(c echo.Context, id string) (*workflow.Workflow, *workflow.Workflow, error) {
	var current *workflow.Workflow
	if id != "" {
		cur, err := s.store.GetWorkflow(c.Request().Context(), id)
		if err != nil {
			return nil, nil, err
		}
		current = cur
	}
	body, err := s.readBody(c)
	if err != nil {
		return nil, current, err
	}
	w, err := s.parseWorkflow(body)
	if err != nil {
		return nil, current, err
	}
	if w.Status == "" {
		w.Status = workflow.StatusDraft
	}
	if current != nil {
		w.ID, w.CreatedAt = current.ID, current.CreatedAt
		w.RestoreSecrets(current)
	} else {
		w.ID = ""
	}
	return w, current, nil
}

// uiEditorValidate answers the problems of the posted document; the editor
// calls it after each change.
func (s *Server) uiEditorValidate(c echo.Context) error {
	_, _, err := s.editorParse(c, c.Param("id"))
	if err != nil {
		status, body := errorView(err)
		if status >= 500 || status == http.StatusNotFound {
			return s.editorFail(c, err)
		}
		ps := body.Problems
		if len(ps) == 0 {
			ps = []workflow.Problem{{Message: body.Detail}}
		}
		return c.JSON(http.StatusOK, editorCheck{Detail: body.Detail, Problems: ps})
	}
	return c.JSON(http.StatusOK, editorCheck{Valid: true, Problems: []workflow.Problem{}})
}

// uiEditorSave stores the posted document: a new workflow when the path
// names none, else a new version of the one it names. It answers the
// workflow's id and pages, or 422 with the problems.
func (s *Server) uiEditorSave(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	w, _, err := s.editorParse(c, id)
	if err != nil {
		return s.editorFail(c, err)
	}
	if id == "" {
		if err := s.store.CreateWorkflow(ctx, w); err != nil {
			return s.editorFail(c, fmt.Errorf("create workflow %q: %w", w.Name, err))
		}
	} else if err := s.store.UpdateWorkflow(ctx, w); err != nil {
		return s.editorFail(c, fmt.Errorf("update workflow %s: %w", w.ID, err))
	}
	saved, err := s.store.GetWorkflow(ctx, w.ID)
	if err != nil {
		return s.editorFail(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"id":       saved.ID,
		"url":      "/ui/workflows/" + saved.ID,
		"edit_url": "/ui/workflows/" + saved.ID + "/edit",
		"document": json.RawMessage(editableJSON(saved.Redacted())),
	})
}

// editorFail answers the editor's script with an error as JSON, whatever
// kind of request it was: the script reads the problems, not a page.
func (s *Server) editorFail(c echo.Context, err error) error {
	status, body := errorView(err)
	if serverFault(status, body.Code) {
		s.logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, body)
}
