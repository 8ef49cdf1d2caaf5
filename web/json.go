package web

import (
	"encoding/json"

	"github.com/labstack/echo/v4"
)

// apiJSON is echo's JSON serializer without HTML escaping. The API answers
// JSON, not HTML: a client that greps or compares the text must find "&",
// "<" and ">" as they are, not as \u0026, \u003c and \u003e. The dashboard
// escapes what it shows on its own (html/template).
type apiJSON struct{ echo.DefaultJSONSerializer }

// Serialize writes v to the response as JSON, indented when indent is set.
func (apiJSON) Serialize(c echo.Context, v any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(v)
}
