package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/workflow"
)

// sessionCookie names the dashboard's session cookie.
const sessionCookie = "switchboard_session"

// sessionTTL is how long a dashboard login lasts.
const sessionTTL = 7 * 24 * time.Hour

// auth checks credentials when a token is configured: the API wants
// "Authorization: Bearer <token>", the dashboard a session cookie set by its
// login page. /healthz, /readyz (status only), the login page and static
// files stay open.
type auth struct {
	token []byte
	key   []byte // signs session cookies; derived from the token, so a new token ends old sessions
	now   func() time.Time
}

func newAuth(token string) *auth {
	if token == "" {
		return nil
	}
	key := sha256.Sum256([]byte("switchboard session key\x00" + token))
	return &auth{token: []byte(token), key: key[:], now: time.Now}
}

// tokenOK compares in constant time; hashing first makes the time
// independent of the length of either side too.
func (a *auth) tokenOK(given string) bool {
	x := sha256.Sum256([]byte(given))
	y := sha256.Sum256(a.token)
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

func (a *auth) sign(expiry int64) string {
	m := hmac.New(sha256.New, a.key)
	fmt.Fprintf(m, "session:%d", expiry)
	return strconv.FormatInt(expiry, 10) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionOK checks a cookie value: an unexpired expiry with a valid MAC.
func (a *auth) sessionOK(v string) bool {
	exp, _, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || a.now().Unix() >= n {
		return false
	}
	return hmac.Equal([]byte(a.sign(n)), []byte(v))
}

func (a *auth) bearer(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	return ok && strings.EqualFold(scheme, "Bearer") && a.tokenOK(strings.TrimSpace(tok))
}

func (a *auth) session(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	return err == nil && a.sessionOK(c.Value)
}

// Authenticated reports whether the request carries valid credentials; with
// no token configured every request is.
func (s *Server) authenticated(r *http.Request) bool {
	return s.auth == nil || s.auth.bearer(r) || s.auth.session(r)
}

func isOpenPath(p string) bool {
	switch {
	case p == "/healthz", p == "/readyz", p == "/ui/login", p == "/ui/logout":
		return true
	case strings.HasPrefix(p, "/ui/static/"):
		return true
	case strings.HasPrefix(p, "/hooks/"):
		// A webhook's own token, in its path, lets it in.
		return true
	}
	return false
}

// requireAuth is the middleware that enforces auth.
func (s *Server) requireAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if s.auth == nil || isOpenPath(r.URL.Path) {
			return next(c)
		}
		if r.URL.Path == "/" || r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/") {
			if s.auth.session(r) || s.auth.bearer(r) {
				return next(c)
			}
			login := "/ui/login?next=" + url.QueryEscape(r.URL.RequestURI())
			if isHTMX(c) {
				c.Response().Header().Set("HX-Redirect", login)
				return c.NoContent(http.StatusUnauthorized)
			}
			return c.Redirect(http.StatusSeeOther, login)
		}
		if s.auth.bearer(r) {
			return next(c)
		}
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
		return workflow.Errorf(workflow.CodeUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <SWITCHBOARD_TOKEN>")
	}
}

// securityHeaders sets a strict Content-Security-Policy (no inline script
// or style) and the other headers that keep pages from being framed or
// sniffed.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		return next(c)
	}
}

const loginPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Switchboard</title><link rel="stylesheet" href="/ui/static/login.css"></head>
<body><main class="login">
<h1>Switchboard</h1>
<form method="post" action="/ui/login">
<input type="hidden" name="_csrf" value="{{.CSRF}}">
<input type="hidden" name="next" value="{{.Next}}">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<button type="submit">Sign in</button>
<p class="hint">The token is the server's SWITCHBOARD_TOKEN.</p>
</form></main></body></html>`

var loginTemplate = template.Must(template.New("login").Parse(loginPage))

func (s *Server) renderLogin(c echo.Context, status int, next, msg string) error {
	c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
	c.Response().WriteHeader(status)
	return loginTemplate.Execute(c.Response(), map[string]string{"Next": next, "Error": msg, "CSRF": csrfToken(c)})
}

// loginCSRFFailed answers a login or logout post without the form's CSRF
// token (forged by another site, or a form older than its token) with a
// fresh login form, so a person can simply try again.
func (s *Server) loginCSRFFailed(err error, c echo.Context) error {
	if s.auth == nil {
		return err
	}
	// The middleware issues no token on failure; the new form needs one.
	tok := ""
	if ck, cerr := c.Cookie(csrfCookie); cerr == nil && ck.Value != "" {
		tok = ck.Value
	} else {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		tok = base64.RawURLEncoding.EncodeToString(b)
		c.SetCookie(&http.Cookie{Name: csrfCookie, Value: tok, Path: "/ui", Expires: s.auth.now().Add(24 * time.Hour),
			HttpOnly: true, SameSite: http.SameSiteStrictMode})
	}
	c.Set("csrf", tok)
	return s.renderLogin(c, http.StatusForbidden, safeNext(c.FormValue("next")), "The form had expired. Sign in again.")
}

func (s *Server) loginForm(c echo.Context) error {
	if s.auth == nil {
		return c.Redirect(http.StatusSeeOther, "/ui/")
	}
	return s.renderLogin(c, http.StatusOK, safeNext(c.QueryParam("next")), "")
}

func (s *Server) login(c echo.Context) error {
	if s.auth == nil {
		return c.Redirect(http.StatusSeeOther, "/ui/")
	}
	next := safeNext(c.FormValue("next"))
	if !s.auth.tokenOK(c.FormValue("token")) {
		return s.renderLogin(c, http.StatusUnauthorized, next, "That token is not right.")
	}
	exp := s.auth.now().Add(sessionTTL)
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: s.auth.sign(exp.Unix()), Path: "/", Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Request().TLS != nil,
	})
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c echo.Context) error {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	if s.auth == nil {
		return c.Redirect(http.StatusSeeOther, "/ui/")
	}
	return c.Redirect(http.StatusSeeOther, "/ui/login")
}

// safeNext keeps the redirect after login on this site's dashboard: next
// must parse as a path under /ui/ with no scheme, host or user, and hold no
// backslash or control character, neither raw nor percent-encoded (a
// browser drops a tab or reads a backslash as a slash, so "/\t/host" and
// "/\\host" lead off-site). Anything else goes to /ui/.
func safeNext(next string) string {
	const home = "/ui/"
	if !cleanText(next) {
		return home
	}
	// Decode until nothing changes, so that an encoding of an encoding is
	// judged by what it finally stands for.
	for d, i := next, 0; i < 4; i++ {
		u, err := url.PathUnescape(d)
		if err != nil {
			return home
		}
		if !cleanText(u) {
			return home
		}
		if u == d {
			break
		}
		d = u
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	if p := path.Clean(u.Path); p != "/ui" && !strings.HasPrefix(p, "/ui/") {
		return home
	}
	if !strings.HasPrefix(u.Path, "/ui/") && u.Path != "/ui" {
		return home
	}
	return u.String()
}

// cleanText reports whether s is valid UTF-8 without backslashes or control
// characters.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '\\' || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// tokenFingerprint is a short, non-reversible id of the token for logs.
func tokenFingerprint(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:4])
}
