package web

import (
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
	out := startSSE(c)
	if err := out.sendJSON("snapshot", x); err != nil {
		return nil
	}
	if workflow.Terminal(x.Status) {
		_ = out.sendJSON("end", map[string]any{"status": x.Status})
		return nil
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keepalive.C:
			if err := out.comment("keepalive"); err != nil {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				final, err := s.store.GetExecution(ctx, id)
				status := ""
				if err == nil {
					status = final.Status
				}
				_ = out.sendJSON("end", map[string]any{"status": status})
				return nil
			}
			if err := out.sendJSON(string(ev.Kind), ev); err != nil {
				return nil
			}
		}
	}
}
