package web

import (
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"
)

// renderErrorFragment answers an HTMX request's error with a small HTML
// fragment that the page shows in place.
func (s *Server) renderErrorFragment(c echo.Context, status int, body errorBody) {
	c.Response().Header().Set("HX-Reswap", "innerHTML")
	html := `<div class="error" role="alert"><strong>{{.Detail}}</strong>{{if .Problems}}<ul>{{range .Problems}}<li><code>{{.Path}}</code> {{.Message}}</li>{{end}}</ul>{{end}}</div>`
	t := template.Must(template.New("err").Parse(html))
	c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
	c.Response().WriteHeader(status)
	_ = t.Execute(c.Response(), body)
	_ = http.StatusOK
}
