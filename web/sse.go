package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// sseLines makes text safe to carry in data: lines. Event streams end a
// line at CR as well as LF, so a CR left in user text would end the data
// line early and let the rest be read as a field of its own.
var sseLines = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// sseWriter writes Server-Sent Events: named events whose data are HTML
// fragments, as the htmx SSE extension swaps them (sse-swap="NAME"), for the
// dashboard's live views, and JSON events for the API's event stream. It is
// not safe for concurrent use: one handler goroutine owns it.
type sseWriter struct {
	w *echo.Response
}

func startSSE(c echo.Context) sseWriter {
	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Reconnect after a few seconds when the stream breaks.
	fmt.Fprint(w, "retry: 3000\n\n")
	w.Flush()
	return sseWriter{w}
}

func (s sseWriter) send(event, html string) error {
	var b strings.Builder
	b.Grow(len(html) + len(event) + 16)
	b.WriteString("event: ")
	b.WriteString(event)
	b.WriteByte('\n')
	for _, line := range strings.Split(sseLines.Replace(html), "\n") {
		b.WriteString("data: ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := s.w.Write([]byte(b.String())); err != nil {
		return err
	}
	return nil
}

// sendJSON sends one event whose data is v as JSON, and flushes it.
func (s sseWriter) sendJSON(event string, v any) error {
	data, err := jsonText(v, "")
	if err != nil {
		return err
	}
	if err := s.send(event, data); err != nil {
		return err
	}
	s.flush()
	return nil
}

func (s sseWriter) flush() { s.w.Flush() }

func (s sseWriter) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	s.w.Flush()
	return nil
}
