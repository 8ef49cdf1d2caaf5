package web

import (
	"html/template"

	"github.com/labstack/echo/v4"
)

// plainErrorFragment is the error fragment of a server built without
// dashboard assets (API only), parsed once.
var plainErrorFragment = template.Must(template.New("error-fragment").Parse(
	`<div class="alert alert-error" role="alert"><p><strong>{{.Detail}}</strong></p>{{if .Problems}}<ul>{{range .Problems}}<li><code>{{.Path}}</code> {{.Message}}</li>{{end}}</ul>{{end}}</div>`))

// renderErrorFragment answers an htmx request's error with the
// "error-fragment" partial: what went wrong and, for a document that fails
// validation, every problem next to its JSON path. The dashboard's script
// swaps it into the error area of the form that sent the request
// (static/app.js), so the form keeps what was typed into it.
func (s *Server) renderErrorFragment(c echo.Context, status int, body errorBody) {
	h := c.Response().Header()
	h.Set("HX-Reswap", "innerHTML")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if s.ui != nil {
		if html, err := s.ui.render("", "error-fragment", body); err == nil {
			c.Response().WriteHeader(status)
			_, _ = c.Response().Write([]byte(html))
			return
		}
	}
	c.Response().WriteHeader(status)
	_ = plainErrorFragment.Execute(c.Response(), body)
}
