package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/workflow"
)

// Hook defaults: a sender may start a burst of 10 runs of one workflow,
// then one a second on average (60 a minute); ?wait=true waits 30 s for
// the run to end.
const (
	DefaultHookRate  = 60.0 // runs per minute, per workflow
	DefaultHookBurst = 10
	DefaultHookWait  = 30 * time.Second
)

// Schedules is what the web layer tells the scheduler and asks it: that a
// workflow changed (was created, updated or deleted), and when its next
// scheduled run is. main hands it *schedule.Scheduler; nil means no
// schedules are run.
type Schedules interface {
	// Reload reads workflow id again and schedules it as it is now.
	Reload(ctx context.Context, id string)
	// Next is the time of the next scheduled run of workflow id, false when
	// it has no schedule.
	Next(id string) (time.Time, bool)
}

// reloadSchedule tells the scheduler that workflow id changed.
func (s *Server) reloadSchedule(ctx context.Context, id string) {
	if s.cfg.Schedules != nil {
		s.cfg.Schedules.Reload(context.WithoutCancel(ctx), id)
	}
}

// nextRun is the next scheduled run of workflow id, nil when none.
func (s *Server) nextRun(id string) *time.Time {
	if s.cfg.Schedules == nil {
		return nil
	}
	t, ok := s.cfg.Schedules.Next(id)
	if !ok {
		return nil
	}
	return &t
}

// hookLimits holds one token bucket per workflow whose hook was called
// with its right token, so the map grows only with real workflows.
type hookLimits struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newHookLimits(perMinute float64, burst int) *hookLimits {
	if perMinute <= 0 {
		perMinute = DefaultHookRate
	}
	if burst <= 0 {
		burst = DefaultHookBurst
	}
	return &hookLimits{rate: rate.Limit(perMinute / 60), burst: burst, m: map[string]*rate.Limiter{}}
}

// allow takes a token from workflow id's bucket; when there is none it
// returns how long until there is.
func (h *hookLimits) allow(id string) (bool, time.Duration) {
	h.mu.Lock()
	l, ok := h.m[id]
	if !ok {
		l = rate.NewLimiter(h.rate, h.burst)
		h.m[id] = l
	}
	h.mu.Unlock()
	r := l.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}

// noHook is the one answer to a wrong workflow id or token: it says
// nothing of whether the workflow exists.
func noHook() error { return workflow.Errorf(workflow.CodeNotFound, "no such webhook") }

// hookPath is the path of workflow id's webhook with token.
func hookPath(id, token string) string { return "/hooks/" + id + "/" + token }

// hookURL is the full URL of a webhook as the client reached this server.
func hookURL(c echo.Context, id, token string) string {
	return c.Scheme() + "://" + c.Request().Host + hookPath(id, token)
}

// webhook starts an execution of a workflow from outside: the token in the
// path stands in for the API token, the JSON body and the query become
// {{trigger.body}} and {{trigger.query}}. It answers 202 with the
// execution's id, or with ?wait=true the finished record (200), or 202 if
// the run has not ended within the wait.
func (s *Server) webhook(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("workflow_id")
	want, err := s.store.HookToken(ctx, id)
	if err != nil && workflow.ErrorCode(err) != workflow.CodeNotFound {
		return err
	}
	// Compared even when the workflow has no token, so that the time
	// taken does not tell which workflows have one.
	given := []byte(c.Param("token"))
	if want == "" {
		_ = subtle.ConstantTimeCompare(given, given)
		return noHook()
	}
	if subtle.ConstantTimeCompare(given, []byte(want)) != 1 {
		return noHook()
	}
	wait := false
	switch v := c.QueryParam("wait"); v {
	case "", "false", "0":
	case "true", "1":
		wait = true
	default:
		return badParam("wait", "must be true or false")
	}
	if ok, after := s.hooks.allow(id); !ok {
		secs := int(math.Ceil(after.Seconds()))
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return &workflow.Error{Code: workflow.CodeRateLimited, Message: "too many webhook calls for this workflow; retry after " + strconv.Itoa(secs) + " s"}
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	var payload any
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&payload); err != nil {
			return &workflow.Error{Code: workflow.CodeMalformed, Message: "the webhook body must be JSON (or empty): " + err.Error(), Err: err}
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return workflow.Errorf(workflow.CodeMalformed, "the webhook body must be one JSON value; something follows it")
		}
	}
	query := c.QueryParams()
	query.Del("wait")
	w, err := s.store.GetWorkflow(ctx, id)
	if workflow.ErrorCode(err) == workflow.CodeNotFound {
		return noHook()
	}
	if err != nil {
		return err
	}
	trigger := &workflow.Trigger{Kind: workflow.TriggerWebhook, RemoteAddr: c.Request().RemoteAddr, Body: payload, Query: workflow.QueryValues(query)}
	run, err := s.runner.Start(w, executor.Options{Trigger: trigger, KeepRecord: wait})
	if err != nil {
		return err
	}
	if err := s.stored(ctx, run); err != nil {
		return err
	}
	accepted := func(detail string) error {
		return c.JSON(http.StatusAccepted, map[string]any{
			"execution_id": run.ID, "workflow_id": w.ID, "status": workflow.ExecQueued,
			"started_at": run.Started.Format(time.RFC3339Nano), "detail": detail,
		})
	}
	if !wait {
		return accepted("execution started")
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.HookWait)
	defer cancel()
	if _, err := run.Wait(wctx); err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			// The run goes on; the caller has its id.
			return accepted("execution still running after " + s.cfg.HookWait.String() + "; it goes on")
		}
		return err
	}
	if x, ok := run.Record(); ok {
		return c.JSON(http.StatusOK, x)
	}
	x, err := s.store.GetExecution(ctx, run.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, x)
}

// hookInfo is the API's view of a workflow's webhook.
type hookInfo struct {
	WorkflowID string     `json:"workflow_id"`
	Token      string     `json:"token"`
	Path       string     `json:"path"`
	URL        string     `json:"url"`
	NextRun    *time.Time `json:"next_scheduled_run,omitempty"`
}

// getHook answers GET /workflows/{id}/webhook, making the token the first
// time.
func (s *Server) getHook(c echo.Context) error {
	id := c.Param("id")
	tok, err := s.store.WebhookToken(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, hookInfo{id, tok, hookPath(id, tok), hookURL(c, id, tok), s.nextRun(id)})
}

// rotateHook answers POST /workflows/{id}/webhook/rotate: a new token, the
// old one refused from now on.
func (s *Server) rotateHook(c echo.Context) error {
	id := c.Param("id")
	tok, err := s.store.RotateWebhookToken(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, hookInfo{id, tok, hookPath(id, tok), hookURL(c, id, tok), s.nextRun(id)})
}

// resumeTrigger is the trigger of a resume of prev: it names prev and
// carries over a webhook's body and query, which the nodes still to run
// may read.
func resumeTrigger(prev *workflow.Execution) *workflow.Trigger {
	t := &workflow.Trigger{Kind: workflow.TriggerResume, Execution: prev.ID}
	if p := prev.Trigger; p != nil {
		t.Body, t.Query = p.Body, p.Query
	}
	return t
}
