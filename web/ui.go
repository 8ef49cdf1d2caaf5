package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/switchboard-dev/switchboard/workflow"
)

// ui holds the dashboard's templates and static files, read once from
// Config.Assets when the server is built. It is read-only afterwards (but
// for each page's template and each file's gzipped copy, made once under
// their sync.Once) and so safe for concurrent use.
type ui struct {
	pages    map[string]*uiPage // by page name
	partials *template.Template // base + partials, for fragments
	static   map[string]*asset  // by path under static/
}

// uiPage is one dashboard page: its template is base + partials + the
// page, made by the first request for the page. A copy of base and the
// partials per page was most of an idle server's heap; a server whose
// dashboard nobody opens now holds two (proto and ui.partials). Its file
// is parsed on its own at start too, so a page that does not parse still
// fails the start.
type uiPage struct {
	once   sync.Once
	proto  *template.Template // base + partials, never executed: html/template clones only such a set
	assets fs.FS
	file   string
	t      *template.Template
	err    error
}

// template returns the page's template, made on first use. It is safe for
// concurrent use.
func (p *uiPage) template() (*template.Template, error) {
	p.once.Do(func() {
		t, err := p.proto.Clone()
		if err == nil {
			_, err = t.ParseFS(p.assets, p.file)
		}
		if err != nil {
			p.err = fmt.Errorf("parse dashboard page %s: %w", p.file, err)
			return
		}
		p.t = t
	})
	return p.t, p.err
}

// asset is one static file, kept in memory with its checksum and, when it
// compresses well, a gzipped copy.
type asset struct {
	name  string
	ctype string
	body  []byte
	hash  string // hex SHA-256 prefix; the ?v= of its URL
	// zip is set for a file that may compress well. Its gzipped copy is
	// made by the first request that accepts gzip, not at start:
	// compressing every file at the best level took a third of a server's
	// start-up, and its compressors' memory stayed with the idle process.
	zip    bool
	gzOnce sync.Once
	gz     []byte // nil until made, and when the file does not compress well
}

// gzipped returns the file gzipped, or nil when that does not make it
// smaller by a tenth. It is safe for concurrent use.
func (a *asset) gzipped() []byte {
	a.gzOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(a.body)
		zw.Close()
		if buf.Len() < len(a.body)*9/10 {
			a.gz = buf.Bytes()
		}
	})
	return a.gz
}

// newUI parses the templates (templates/base.html, templates/partials/*.html
// and one templates/pages/NAME.html per page) and loads static/. It fails
// when a template does not parse or a directory is missing.
func newUI(assets fs.FS) (*ui, error) {
	u := &ui{pages: map[string]*uiPage{}, static: map[string]*asset{}}
	err := fs.WalkDir(assets, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		sum := sha256.Sum256(data)
		a := &asset{name: name, body: data, hash: hex.EncodeToString(sum[:])[:12], ctype: contentType(name)}
		a.zip = len(data) > 1024 && compressible(a.ctype)
		u.static[name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load dashboard static files: %w", err)
	}
	root := template.New("base").Funcs(u.funcs())
	root, err = root.ParseFS(assets, "templates/base.html", "templates/partials/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse dashboard templates: %w", err)
	}
	if u.partials, err = root.Clone(); err != nil {
		return nil, fmt.Errorf("clone dashboard templates: %w", err)
	}
	pages, err := fs.Glob(assets, "templates/pages/*.html")
	if err != nil || len(pages) == 0 {
		return nil, fmt.Errorf("dashboard pages: none found in templates/pages (%v)", err)
	}
	for _, p := range pages {
		if _, err := template.New(path.Base(p)).Funcs(u.funcs()).ParseFS(assets, p); err != nil {
			return nil, fmt.Errorf("parse dashboard page %s: %w", p, err)
		}
		u.pages[strings.TrimSuffix(path.Base(p), ".html")] = &uiPage{proto: root, assets: assets, file: p}
	}
	return u, nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case "", ".LICENSE", ".md", ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "svg")
}

// staticURL names a static file with its checksum, so it can be cached for
// a year and still change with the binary.
func (u *ui) staticURL(name string) (string, error) {
	a := u.static[name]
	if a == nil {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/ui/static/" + name + "?v=" + a.hash, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render executes template name of page ("" for a partial) into a string.
func (u *ui) render(page, name string, data any) (string, error) {
	t := u.partials
	if page != "" {
		p := u.pages[page]
		if p == nil {
			return "", fmt.Errorf("no dashboard page %q", page)
		}
		var err error
		if t, err = p.template(); err != nil {
			return "", err
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := t.ExecuteTemplate(buf, name, data); err != nil {
		return "", fmt.Errorf("render %s %s: %w", page, name, err)
	}
	return buf.String(), nil
}

// pageData is what the base layout reads; Data is the page's own.
type pageData struct {
	Title     string
	Nav       string
	CSRF      string
	HXHeaders string
	Version   string
	SignOut   bool // a token is configured: the top bar has a sign-out form
	Data      any
	Waiting   int // executions waiting for a person, for the nav
}

func csrfToken(c echo.Context) string {
	tok, _ := c.Get("csrf").(string)
	return tok
}

// page writes a whole page.
func (s *Server) page(c echo.Context, status int, name, title, nav string, data any) error {
	tok := csrfToken(c)
	hdr, _ := json.Marshal(map[string]string{"X-CSRF-Token": tok})
	html, err := s.ui.render(name, "base", pageData{Title: title, Nav: nav, CSRF: tok, HXHeaders: string(hdr), Version: s.cfg.Version, SignOut: s.auth != nil, Data: data, Waiting: s.waitingCount(c)})
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "HX-Request")
	return c.HTML(status, html)
}

// fragment writes one partial template, for an htmx swap.
func (s *Server) fragment(c echo.Context, status int, name string, data any) error {
	html, err := s.ui.render("", name, data)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(status, html)
}

// goTo sends the browser to path: through htmx without reloading the page
// (HX-Location swaps the new page's body in and pushes the URL), or with a
// plain redirect when the form was posted without JavaScript.
func goTo(c echo.Context, path string) error {
	if isHTMX(c) {
		c.Response().Header().Set("HX-Location", path)
		return c.NoContent(http.StatusOK)
	}
	return c.Redirect(http.StatusSeeOther, path)
}

// uiRoutes registers the dashboard under /ui/. Nothing is registered when
// the server has no assets (API only).
func (s *Server) uiRoutes() {
	if s.ui == nil {
		return
	}
	e := s.echo
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/ui/") })
	// Static files are outside the group: they need no CSRF cookie, and a
	// Vary: Cookie would spoil their caching.
	e.GET("/ui/static/*", s.uiStatic)
	e.HEAD("/ui/static/*", s.uiStatic)

	g := e.Group("/ui", s.uiErrorPages, strictQuery, s.uiBodyLimit, tokenAlways, csrfMiddleware(nil))
	toList := func(c echo.Context) error { return c.Redirect(http.StatusFound, "/ui/workflows") }
	g.GET("", toList)
	g.GET("/", toList)
	g.GET("/workflows", s.uiWorkflows)
	g.POST("/workflows", s.uiImport)
	g.GET("/workflows/new", s.uiEditNew)
	g.POST("/workflows/new", s.uiEditorSave)
	g.POST("/workflows/new/validate", s.uiEditorValidate)
	g.GET("/workflows/:id", s.uiWorkflow)
	g.GET("/workflows/:id/edit", s.uiEdit)
	g.POST("/workflows/:id/validate", s.uiEditorValidate)
	g.POST("/workflows/:id/document", s.uiEditorSave)
	g.POST("/workflows/:id/save", s.uiSave)
	g.POST("/workflows/:id/delete", s.uiDelete)
	g.POST("/workflows/:id/run", s.uiRun)
	g.POST("/workflows/:id/webhook/rotate", s.uiRotateHook)
	g.GET("/executions", s.uiExecutions)
	g.GET("/executions/:id", s.uiExecution)
	g.GET("/executions/:id/live", s.uiExecutionLive)
	g.POST("/executions/:id/cancel", s.uiCancel)
	g.POST("/executions/:id/resume", s.uiResume)
	g.POST("/executions/:id/input", s.uiInput)
	g.POST("/executions/:id/approve", s.uiApprove)
	g.POST("/executions/:id/stop", s.uiStop)
	g.GET("/waiting", s.uiWaiting)
	g.GET("/bus", s.uiBus)
	g.GET("/bus/info", s.uiBusInfo)
	g.GET("/bus/workers", s.uiBusWorkers)
	g.GET("/bus/live", s.uiBusLive)
	g.GET("/settings", s.uiSettings)
}

// csrfCookie names the cookie that holds the dashboard's CSRF token.
const csrfCookie = "_csrf"

// csrfMiddleware checks the double-submit token of every dashboard form
// (the _csrf field or the X-CSRF-Token header htmx sends, against the _csrf
// cookie) and issues it on every request. onError, when not nil, answers a
// missing or wrong token instead of the usual error.
func csrfMiddleware(onError middleware.CSRFErrorHandler) echo.MiddlewareFunc {
	return middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup:    "header:X-CSRF-Token,form:_csrf",
		CookieName:     csrfCookie,
		CookiePath:     "/ui",
		CookieHTTPOnly: true,
		CookieSameSite: http.SameSiteStrictMode,
		ContextKey:     "csrf",
		ErrorHandler:   onError,
	})
}

// tokenAlways makes echo's CSRF middleware issue and check its
// double-submit token for every request. Since echo 4.16 a request that a
// browser marks Sec-Fetch-Site: same-origin skips the token, and then no
// token is issued either, so the forms would carry a placeholder and any
// client that does not send the header (an older browser, a proxy that
// strips it) could never post. The token is the one rule for everybody.
func tokenAlways(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Request().Header.Del(echo.HeaderSecFetchSite)
		return next(c)
	}
}

// uiBodyLimit bounds what a dashboard form may send: a workflow document of
// the API's limit, plus room for the multipart envelope.
func (s *Server) uiBodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		limit := s.cfg.BodyLimit + 64<<10
		if r.ContentLength > limit {
			return tooLarge(s.cfg.BodyLimit)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
		return next(c)
	}
}

// uiErrorPages answers a failed dashboard request that is a page load (not
// an htmx swap, or an htmx-boosted link) with a whole error page; htmx swaps
// get the fragment of Server.handleError instead.
func (s *Server) uiErrorPages(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil || c.Response().Committed || clientGone(c, err) {
			return err
		}
		if isHTMX(c) && c.Request().Header.Get("HX-Boosted") != "true" {
			return err
		}
		status, body := errorView(err)
		if serverFault(status, body.Code) {
			s.logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
		}
		title := http.StatusText(status)
		if title == "" {
			title = "Error"
		}
		if perr := s.page(c, status, "error", title, "", body); perr != nil {
			return err
		}
		return nil
	}
}

// errorView maps an error as Server.handleError does: the status and what a
// client may see.
func errorView(err error) (int, errorBody) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		body := errorBody{Detail: http.StatusText(he.Code), Code: codeOfStatus(he.Code)}
		if msg, ok := he.Message.(string); ok && he.Code < 500 {
			body.Detail = msg
		}
		if he.Code == http.StatusNotFound {
			body.Detail = "There is nothing at this address."
		}
		return he.Code, body
	}
	code := workflow.ErrorCode(err)
	return statusOf(code), errorBody{Code: code, Detail: workflow.ErrorMessage(err), Problems: workflow.ErrorProblems(err)}
}

// uiStatic serves a static file. With the current ?v= checksum it may be
// cached for a year; otherwise the browser revalidates with the ETag.
func (s *Server) uiStatic(c echo.Context) error {
	a := s.ui.static[c.Param("*")]
	if a == nil {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	etag := `"` + a.hash + `"`
	h.Set("ETag", etag)
	if c.QueryParam("v") == a.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("Content-Type", a.ctype)
	if a.zip {
		h.Add("Vary", "Accept-Encoding")
	}
	if match := c.Request().Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	body := a.body
	if a.zip && acceptsGzip(c.Request()) {
		if gz := a.gzipped(); gz != nil {
			h.Set("Content-Encoding", "gzip")
			body = gz
		}
	}
	if c.Request().Method == http.MethodHead {
		h.Set("Content-Length", fmt.Sprint(len(body)))
		return c.NoContent(http.StatusOK)
	}
	return c.Blob(http.StatusOK, a.ctype, body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// funcs are the template helpers. None returns template.HTML: everything is
// escaped by html/template.
func (u *ui) funcs() template.FuncMap {
	return template.FuncMap{
		"static": u.staticURL,
		"pill":   pillClass,
		"time":   fmtTime,
		"iso":    isoTime,
		"span":   span,
		"short":  func(id string) string { return shorten(id, 9) },
		"trunc":  shorten,
		"pretty": pretty,
		"add":    func(a, b int) int { return a + b },
		"sub":    func(a, b int) int { return a - b },
		"half":   func(a int) int { return a / 2 },
		"dict":   dict,
		"state":  stateLabel,
		"ms":     fmtMillis,
		"mode":   modeText,
		"agent":  shortAgent,
		// usd takes the records' *float64 costs and plain amounts alike.
		"usd": func(v any) string {
			if f, ok := v.(float64); ok {
				return fmtUSD(&f)
			}
			p, _ := v.(*float64)
			return fmtUSD(p)
		},
	}
}

// dict builds a map for passing several values to a partial:
// {{template "x" dict "A" .A "B" .B}}.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict wants key, value pairs")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// stateLabel is how a node status reads on the page.
func stateLabel(status string) string {
	if status == workflow.NodeCompleted {
		return "done"
	}
	return status
}

// pillClass is the CSS class of a status pill; unknown statuses get the
// neutral one.
func pillClass(status string) string {
	switch status {
	case workflow.ExecQueued, workflow.ExecRunning, workflow.ExecSuccess, workflow.ExecError,
		workflow.ExecCancelled, workflow.ExecInterrupted, workflow.NodePending, workflow.NodeCompleted,
		workflow.NodeSkipped, workflow.ExecWaiting:
		return "pill pill-" + status
	}
	return "pill"
}

func fmtTime(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return fmtTime(*v)
	}
	return ""
}

func isoTime(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format(time.RFC3339Nano)
	case *time.Time:
		if v == nil {
			return ""
		}
		return isoTime(*v)
	}
	return ""
}

// span is the time from start to end, "" when either is missing.
func span(start, end *time.Time) string {
	if start == nil || end == nil {
		return ""
	}
	return fmtDuration(end.Sub(*start))
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return ""
	case d < time.Millisecond:
		return "< 1 ms"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// pretty renders a value as indented JSON (strings as they are).
func pretty(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	s, err := jsonText(v, "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

// jsonText encodes v as JSON for people to read: "&", "<" and ">" are
// left as they are (the page escapes them), unlike json.Marshal.
func jsonText(v any, indent string) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// modeText says which modes an execution asked for and used.
func modeText(requested, used string) string {
	if requested == "" || requested == used {
		return used
	}
	return requested + " → " + used
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
