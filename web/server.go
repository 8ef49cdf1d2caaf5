// Package web serves Switchboard over HTTP: the JSON API (with the paths of
// the original service), the live event streams and the dashboard.
package web

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// Store is what the web layer reads and writes. store.DB satisfies it.
type Store interface {
	CreateWorkflow(ctx context.Context, w *workflow.Workflow) error
	GetWorkflow(ctx context.Context, id string) (*workflow.Workflow, error)
	ListWorkflows(ctx context.Context, limit, offset int) ([]*workflow.Workflow, error)
	CountWorkflows(ctx context.Context) (int, error)
	UpdateWorkflow(ctx context.Context, w *workflow.Workflow) error
	DeleteWorkflow(ctx context.Context, id string) error
	WorkflowSummaries(ctx context.Context) (map[string]store.RunSummary, error)
	GetExecution(ctx context.Context, id string) (*workflow.Execution, error)
	ListExecutions(ctx context.Context, f store.ExecutionFilter) ([]*workflow.Execution, error)
	CountExecutions(ctx context.Context, f store.ExecutionFilter) (int, error)
	ResumedBy(ctx context.Context, id string) (string, error)
	WebhookToken(ctx context.Context, id string) (string, error)
	RotateWebhookToken(ctx context.Context, id string) (string, error)
	HookToken(ctx context.Context, id string) (string, error)
	Ping(ctx context.Context) error
}

// Runner starts and watches executions. executor.Executor satisfies it.
type Runner interface {
	Start(wf *workflow.Workflow, opts executor.Options) (*executor.Run, error)
	Cancel(id string) bool
	Subscribe(id string) (<-chan workflow.Event, func())
	SubscribeAll() (<-chan workflow.Event, func())
}

// Check reports the state of one dependency for /readyz; a non-nil error
// means it is not ready.
type Check func(ctx context.Context) (detail map[string]any, err error)

// BusView is what the dashboard shows of the Redis bus. main adapts
// bus.Bus to it; nil means no bus page data.
type BusView interface {
	// Info describes the bus: kind (embedded/external), address, URL with
	// the password masked, healthy, round-trip latency, agents registered.
	Info(ctx context.Context) map[string]any
	// Monitor calls fn for every message on channels matching pattern until
	// ctx ends; it returns once ctx is done or the monitor connection fails.
	Monitor(ctx context.Context, pattern string, fn func(channel string, payload []byte)) error
	// Workers lists the worker processes registered on the bus now, sorted
	// by name. It fails with a workflow.Error of code unavailable when
	// Redis cannot be reached.
	Workers(ctx context.Context) ([]Worker, error)
}

// Config holds what the server needs besides its dependencies.
type Config struct {
	BodyLimit int64 // bytes; 0 means 1 MiB
	Version   string
	Assets    fs.FS            // holds templates/ and static/ (see embed.go); nil serves the API only
	Checks    map[string]Check // extra readiness checks by name (the bus)
	Bus       BusView          // for the bus page; may be nil
	Settings  map[string]any   // shown on the settings page (never secrets)
	DataDir   string           // shown on the settings page
	Token     string           // when set, the API needs it as a bearer token and the dashboard a login
	Limits    workflow.Limits  // document and input sizes; zero fields take the defaults
	// Webhooks: runs a minute and burst per workflow, and how long
	// ?wait=true waits; zero fields take DefaultHookRate, DefaultHookBurst
	// and DefaultHookWait.
	HookRate  float64
	HookBurst int
	HookWait  time.Duration
	Schedules Schedules // told when workflows change; nil runs no schedules
	// Metrics, when set, is served at GET /metrics, behind the token like
	// the API; nil serves none there (main may give it a listener of its own).
	Metrics http.Handler
}

// Server is the HTTP front of Switchboard. It is safe for concurrent use.
type Server struct {
	echo   *echo.Echo
	store  Store
	runner Runner
	logger *slog.Logger
	cfg    Config
	auth   *auth // nil: no token configured, everyone is let in
	ui     *ui   // dashboard templates and static files; nil without Config.Assets
	hooks  *hookLimits
}

// New builds the server and its routes.
func New(cfg Config, st Store, runner Runner, logger *slog.Logger) (*Server, error) {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	s := &Server{echo: echo.New(), store: st, runner: runner, logger: logger, cfg: cfg, auth: newAuth(cfg.Token)}
	s.hooks = newHookLimits(cfg.HookRate, cfg.HookBurst)
	if s.cfg.HookWait <= 0 {
		s.cfg.HookWait = DefaultHookWait
	}
	if s.auth != nil {
		logger.Info("authentication on: the API needs a bearer token, the dashboard a login", "token_id", tokenFingerprint(cfg.Token))
	}
	if cfg.Assets != nil {
		u, err := newUI(cfg.Assets)
		if err != nil {
			return nil, err
		}
		s.ui = u
	}
	s.echo.HideBanner = true
	s.echo.HidePort = true
	s.echo.HTTPErrorHandler = s.handleError
	s.echo.JSONSerializer = apiJSON{}
	s.routes()
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) routes() {
	e := s.echo
	e.Use(securityHeaders, s.requireAuth, apiQuery)
	// The login and logout forms carry a CSRF token like every other form,
	// so that no other site can sign a browser in or out.
	loginCSRF := []echo.MiddlewareFunc{strictQuery, tokenAlways, csrfMiddleware(s.loginCSRFFailed)}
	e.GET("/ui/login", s.loginForm, loginCSRF...)
	e.POST("/ui/login", s.login, loginCSRF...)
	e.POST("/ui/logout", s.logout, loginCSRF...)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)

	for _, p := range []string{"/workflows", "/workflows/"} {
		e.POST(p, s.createWorkflow)
		e.GET(p, s.listWorkflows)
	}
	e.GET("/workflows/executions/:execution_id", s.getExecution)
	e.POST("/workflows/executions/:execution_id/cancel", s.cancelExecution)
	e.POST("/workflows/executions/:execution_id/resume", s.resumeExecution)
	e.POST("/workflows/executions/:execution_id/approve", s.approveExecution)
	e.POST("/workflows/executions/:execution_id/stop", s.stopExecution)
	e.POST("/workflows/executions/:execution_id/input", s.inputExecution)
	e.GET("/workflows/executions/:execution_id/events", s.executionEvents)
	e.GET("/workflows/:id", s.getWorkflow)
	e.PUT("/workflows/:id", s.updateWorkflow)
	e.DELETE("/workflows/:id", s.deleteWorkflow)
	e.POST("/workflows/:id/execute", s.executeWorkflow)
	e.GET("/workflows/:id/executions", s.listExecutions)
	e.GET("/workers", s.listWorkers)
	e.GET("/workflows/:id/webhook", s.getHook)
	e.POST("/workflows/:id/webhook/rotate", s.rotateHook)
	e.POST("/hooks/:workflow_id/:token", s.webhook)
	if s.cfg.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.cfg.Metrics))
	}

	s.uiRoutes()
}

// errorBody is the JSON shape of every API error, "detail" as in the
// original service.
type errorBody struct {
	Detail   string             `json:"detail"`
	Code     workflow.Code      `json:"code"`
	Problems []workflow.Problem `json:"problems,omitempty"`
}

// statusOf maps an error code to its HTTP status, in one place.
func statusOf(code workflow.Code) int {
	switch code {
	case workflow.CodeMalformed:
		return http.StatusBadRequest
	case workflow.CodeInvalid:
		return http.StatusUnprocessableEntity
	case workflow.CodeNotFound:
		return http.StatusNotFound
	case workflow.CodeConflict:
		return http.StatusConflict
	case workflow.CodeUnauthorized:
		return http.StatusUnauthorized
	case workflow.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case workflow.CodeRateLimited:
		return http.StatusTooManyRequests
	case workflow.CodeUnavailable:
		return http.StatusServiceUnavailable
	// How a run ended is not a fault of the server. A cancelled run and one
	// over its token budget conflict with what was asked of them (409, as
	// for a cancel of an ended run; 402 is reserved and means payment); a
	// run past its deadline timed out waiting on the model it calls (504,
	// a gateway timeout; 408 would say the client was slow to send).
	case workflow.CodeCancelled, workflow.CodeBudget:
		return http.StatusConflict
	case workflow.CodeTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// serverFault reports whether an answer with this status and code is the
// server's failure, to be logged as an error: a 5xx that is not a run's
// outcome.
func serverFault(status int, code workflow.Code) bool {
	return status >= 500 && code != workflow.CodeTimeout
}

func (s *Server) handleError(err error, c echo.Context) {
	if clientGone(c, err) {
		// Nobody is left to answer, and nothing failed here: a client
		// that stops waiting for a synchronous run leaves the run going.
		s.logger.Info("client went away", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		return
	}
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	body := errorBody{}
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &he):
		status = he.Code
		body.Detail = http.StatusText(he.Code)
		if msg, ok := he.Message.(string); ok && status < 500 {
			body.Detail = msg
		}
		body.Code = codeOfStatus(status)
	default:
		body.Code = workflow.ErrorCode(err)
		status = statusOf(body.Code)
		body.Detail = workflow.ErrorMessage(err)
		body.Problems = workflow.ErrorProblems(err)
	}
	if serverFault(status, body.Code) {
		s.logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
	}
	if isHTMX(c) {
		s.renderErrorFragment(c, status, body)
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, body)
}

// clientGone reports whether err says only that the request's client went
// away (it closed the connection, which ends the request's context).
func clientGone(c echo.Context, err error) bool {
	return c.Request().Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

func codeOfStatus(status int) workflow.Code {
	switch status {
	case http.StatusNotFound:
		return workflow.CodeNotFound
	case http.StatusMethodNotAllowed, http.StatusBadRequest:
		return workflow.CodeInvalid
	case http.StatusRequestEntityTooLarge:
		return workflow.CodeTooLarge
	case http.StatusUnauthorized:
		return workflow.CodeUnauthorized
	case http.StatusServiceUnavailable:
		return workflow.CodeUnavailable
	case http.StatusTooManyRequests:
		return workflow.CodeRateLimited
	}
	return workflow.CodeInternal
}

func isHTMX(c echo.Context) bool { return c.Request().Header.Get("HX-Request") == "true" }

// readBody reads the request body up to the configured limit.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > s.cfg.BodyLimit {
		return nil, tooLarge(s.cfg.BodyLimit)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.BodyLimit+1))
	if err != nil {
		return nil, &workflow.Error{Code: workflow.CodeMalformed, Message: "could not read the request body", Err: err}
	}
	if int64(len(data)) > s.cfg.BodyLimit {
		return nil, tooLarge(s.cfg.BodyLimit)
	}
	return data, nil
}

func tooLarge(limit int64) error {
	return workflow.Errorf(workflow.CodeTooLarge, "the request body is larger than the limit of %d bytes", limit)
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "version": s.cfg.Version})
}

func (s *Server) readyz(c echo.Context) error {
	ctx := c.Request().Context()
	out := map[string]any{"version": s.cfg.Version}
	ready := true
	if err := s.store.Ping(ctx); err != nil {
		ready = false
		out["database"] = map[string]any{"status": "unavailable", "error": err.Error()}
	} else {
		out["database"] = map[string]any{"status": "ok"}
	}
	for name, check := range s.cfg.Checks {
		detail, err := check(ctx)
		if detail == nil {
			detail = map[string]any{}
		}
		if err != nil {
			// Not ready, truthfully; the server still serves, and pubsub
			// executions fall back to simple mode meanwhile.
			ready = false
			detail["status"] = "unavailable"
			detail["error"] = err.Error()
		} else {
			detail["status"] = "ok"
		}
		out[name] = detail
	}
	status := http.StatusOK
	out["status"] = "ok"
	if !ready {
		status = http.StatusServiceUnavailable
		out["status"] = "unavailable"
	}
	if !s.authenticated(c.Request()) {
		// Open for load balancers, but details (addresses) only with credentials.
		return c.JSON(status, map[string]any{"status": out["status"]})
	}
	return c.JSON(status, out)
}
