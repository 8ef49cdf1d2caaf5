package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/workflow"
)

// executionEvents streams an execution's events as Server-Sent Events: first
// a "snapshot" with the stored record, then each event as it happens, then
// "end". A finished execution gets its snapshot and "end" at once.
func (s *Server) executionEvents(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("execution_id")
	// Subscribe before reading the snapshot so no event falls in between.
	events, stop := s.runner.Subscribe(id)
	defer stop()
	x, err := s.store.GetExecution(ctx, id)
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := writeSSE(w, "snapshot", x); err != nil {
		return nil
	}
	if workflow.Terminal(x.Status) {
		_ = writeSSE(w, "end", map[string]any{"status": x.Status})
		return nil
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case ev, ok := <-events:
			if !ok {
				final, err := s.store.GetExecution(ctx, id)
				status := ""
				if err == nil {
					status = final.Status
				}
				_ = writeSSE(w, "end", map[string]any{"status": status})
				return nil
			}
			if err := writeSSE(w, string(ev.Kind), ev); err != nil {
				return nil
			}
		}
	}
}

func writeSSE(w *echo.Response, event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	w.Flush()
	return nil
}
