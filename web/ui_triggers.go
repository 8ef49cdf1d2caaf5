package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// addTriggers fills in the workflow page's webhook (its token is made the
// first time the page is shown) and schedule.
func (s *Server) addTriggers(c echo.Context, p *workflowPage) error {
	id := p.W.ID
	tok, err := s.store.WebhookToken(c.Request().Context(), id)
	if err != nil {
		return err
	}
	p.Hook = hookInfo{WorkflowID: id, Token: tok, Path: hookPath(id, tok), URL: hookURL(c, id, tok)}
	p.Schedule = p.W.Schedule()
	p.NextRun = s.nextRun(id)
	return nil
}

// uiRotateHook gives the workflow a new webhook token from the dashboard
// and shows the new URL in place of the old.
func (s *Server) uiRotateHook(c echo.Context) error {
	id := c.Param("id")
	tok, err := s.store.RotateWebhookToken(c.Request().Context(), id)
	if err != nil {
		return err
	}
	data := map[string]any{
		"W":       map[string]string{"ID": id},
		"Hook":    hookInfo{WorkflowID: id, Token: tok, Path: hookPath(id, tok), URL: hookURL(c, id, tok)},
		"CSRF":    csrfToken(c),
		"Rotated": true,
	}
	if !isHTMX(c) {
		return c.Redirect(http.StatusSeeOther, "/ui/workflows/"+id)
	}
	return s.fragment(c, http.StatusOK, "hook-box", data)
}
