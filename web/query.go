package web

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/workflow"
)

// badParam is the 400 for one query parameter, named in the message and
// as the problem's path.
func badParam(name, msg string) error {
	return &workflow.Error{Code: workflow.CodeMalformed, Message: fmt.Sprintf("query parameter %q %s", name, msg),
		Problems: []workflow.Problem{{Path: name, Message: msg}}}
}

// strictQuery refuses a request whose query string does not parse. Go's
// url.ParseQuery drops a pair it cannot read (a raw ";", a bad %-escape)
// and echo's QueryParam never reports it, so "?status=error;" would list
// every execution, the filter ignored in silence. A 400 naming the
// parameter says what to fix instead.
func strictQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw := c.Request().URL.RawQuery
		if raw == "" {
			return next(c)
		}
		if _, err := url.ParseQuery(raw); err != nil {
			return queryError(raw, err)
		}
		return next(c)
	}
}

// queryError names the first pair of raw that url.ParseQuery cannot read.
func queryError(raw string, err error) error {
	for pair := range strings.SplitSeq(raw, "&") {
		if _, perr := url.ParseQuery(pair); perr == nil {
			continue
		}
		key, _, _ := strings.Cut(pair, "=")
		key, _, _ = strings.Cut(key, ";")
		if k, uerr := url.QueryUnescape(key); uerr == nil {
			key = k
		}
		if strings.Contains(pair, ";") {
			return badParam(key, `holds a raw ";": separate parameters with "&", and write a ";" in a value as %3B`)
		}
		return badParam(key, "is not a valid URL-encoded name=value pair ("+err.Error()+")")
	}
	return badParam("", "does not parse: "+err.Error())
}

// execStatuses are the statuses an execution list can be filtered by.
var execStatuses = []string{workflow.ExecQueued, workflow.ExecRunning, workflow.ExecSuccess, workflow.ExecError, workflow.ExecCancelled, workflow.ExecInterrupted, workflow.ExecWaiting}

// statusParam reads ?status=, "" when absent or empty (no filter); any
// other value than an execution status is a 400.
func statusParam(c echo.Context) (string, error) {
	st := c.QueryParam("status")
	if st != "" && !slices.Contains(execStatuses, st) {
		return "", badParam("status", "must be one of "+strings.Join(execStatuses, ", ")+", or empty for any")
	}
	return st, nil
}

// apiQuery applies strictQuery to every path outside the dashboard; the
// dashboard's group applies it after its error-page middleware, so a bad
// query there gets an error page.
func apiQuery(next echo.HandlerFunc) echo.HandlerFunc {
	strict := strictQuery(next)
	return func(c echo.Context) error {
		if p := c.Request().URL.Path; p == "/ui" || strings.HasPrefix(p, "/ui/") {
			return next(c)
		}
		return strict(c)
	}
}
