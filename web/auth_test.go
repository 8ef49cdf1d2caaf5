package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/web"
)

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func TestAuthAPI(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{Token: "s3cret-token"})
	tests := []struct {
		name, method, path, auth string
		wantStatus               int
		wantBody                 string
	}{
		{"no token", "GET", "/workflows/", "", 401, `"code":"unauthorized"`},
		{"wrong token", "GET", "/workflows/", "Bearer nope", 401, "missing or wrong bearer token"},
		{"wrong scheme", "GET", "/workflows/", "Basic s3cret-token", 401, "unauthorized"},
		{"token prefix", "GET", "/workflows/", "Bearer s3cret", 401, "unauthorized"},
		{"right token", "GET", "/workflows/", "Bearer s3cret-token", 200, "["},
		{"scheme is case-insensitive", "GET", "/workflows/", "bearer s3cret-token", 200, "["},
		{"execute needs token", "POST", "/workflows/x/execute", "", 401, "unauthorized"},
		{"healthz open", "GET", "/healthz", "", 200, `"status":"ok"`},
		{"readyz open, no details", "GET", "/readyz", "", 200, `{"status":"ok"}`},
		{"readyz details with token", "GET", "/readyz", "Bearer s3cret-token", 200, `"database"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			buf := make([]byte, 4096)
			n, _ := resp.Body.Read(buf)
			b.Write(buf[:n])
			if resp.StatusCode != tt.wantStatus || !strings.Contains(b.String(), tt.wantBody) {
				t.Fatalf("%d %s; want %d with %s", resp.StatusCode, b.String(), tt.wantStatus, tt.wantBody)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestAuthDashboardLogin(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{Token: "s3cret-token"}) // with the dashboard's pages

	code, _, hdr := c.get("/ui/workflows")
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/ui/login?next=") {
		t.Fatalf("no session: %d %s", code, hdr.Get("Location"))
	}
	// The login form carries the token the post must return.
	code, body, _ := c.get("/ui/login?next=%2Fui%2Fsettings")
	if code != http.StatusOK || c.csrf == "" {
		t.Fatalf("login form: %d, csrf %q\n%s", code, c.csrf, body)
	}
	login := func(token, next string) (int, http.Header) {
		code, _, hdr := c.do("POST", "/ui/login", strings.NewReader(url.Values{"_csrf": {c.csrf}, "token": {token}, "next": {next}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		return code, hdr
	}
	if code, _ := login("wrong", "/ui/workflows"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, hdr = login("s3cret-token", "//evil.example/")
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/" {
		t.Fatalf("login: %d to %q (an off-site next must not be followed)", code, hdr.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range (&http.Response{Header: hdr}).Cookies() {
		if ck.Name == "switchboard_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", session)
	}

	client := &http.Client{CheckRedirect: noRedirect}
	get := func(c *http.Cookie) int {
		req, _ := http.NewRequest("GET", s.URL+"/ui/settings", nil)
		req.AddCookie(c)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(session); code != http.StatusOK {
		t.Fatalf("with session: %d", code)
	}
	// A forged or expired cookie is not a session.
	forged := &http.Cookie{Name: "switchboard_session", Value: strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + ".AAAA"}
	if code := get(forged); code != http.StatusSeeOther {
		t.Fatalf("forged cookie: %d", code)
	}
	expiredValue := strings.Replace(session.Value, strings.SplitN(session.Value, ".", 2)[0], "1000", 1)
	if code := get(&http.Cookie{Name: "switchboard_session", Value: expiredValue}); code != http.StatusSeeOther {
		t.Fatalf("expired cookie: %d", code)
	}
	// The session is not an API credential.
	req, _ := http.NewRequest("GET", s.URL+"/workflows/", nil)
	req.AddCookie(session)
	resp, _ := client.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API with cookie: %d", resp.StatusCode)
	}
	// A signed-in page has the sign-out form, with its token.
	code, body, _ = c.get("/ui/settings")
	if code != http.StatusOK || !strings.Contains(body, `action="/ui/logout"`) {
		t.Fatalf("settings: %d, no sign-out form\n%s", code, clip(body))
	}
	// Logout clears the cookie.
	code, _, hdr = c.do("POST", "/ui/logout", strings.NewReader(url.Values{"_csrf": {c.csrf}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	cleared := false
	for _, ck := range (&http.Response{Header: hdr}).Cookies() {
		cleared = cleared || (ck.Name == "switchboard_session" && ck.MaxAge < 0)
	}
	if code != http.StatusSeeOther || !cleared {
		t.Fatalf("logout: %d, cookie cleared %v", code, cleared)
	}
}

// TestLoginLogoutNeedCSRF: another site cannot sign a browser in (to an
// account of its choosing) or out; a post without the form's token gets the
// form again.
func TestLoginLogoutNeedCSRF(t *testing.T) {
	t.Parallel()
	_, c := newUI(t, web.Config{Token: "s3cret-token"})
	post := func(path string, form url.Values) (int, string, http.Header) {
		return c.do("POST", path, strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	}
	hasSession := func(hdr http.Header) bool {
		for _, ck := range (&http.Response{Header: hdr}).Cookies() {
			if ck.Name == "switchboard_session" && ck.MaxAge >= 0 && ck.Value != "" {
				return true
			}
		}
		return false
	}
	// No cookie and no field, then a cookie but a wrong field.
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{"token": {"s3cret-token"}}},
		{"wrong token", url.Values{"token": {"s3cret-token"}, "_csrf": {"forged"}}},
	} {
		code, body, hdr := post("/ui/login", tc.form)
		if code != http.StatusForbidden || hasSession(hdr) || !strings.Contains(body, "Sign in again") {
			t.Fatalf("login, %s: %d, session %v\n%s", tc.name, code, hasSession(hdr), body)
		}
	}
	// The refusal's form carries a token that works.
	if c.csrf == "" {
		t.Fatal("the refusal's form has no token")
	}
	code, _, hdr := post("/ui/login", url.Values{"token": {"s3cret-token"}, "_csrf": {c.csrf}})
	if code != http.StatusSeeOther || !hasSession(hdr) {
		t.Fatalf("login with token: %d, session %v", code, hasSession(hdr))
	}
	code, _, hdr = post("/ui/logout", url.Values{})
	if code != http.StatusForbidden || strings.Contains(hdr.Get("Set-Cookie"), "switchboard_session=;") {
		t.Fatalf("logout without token: %d %q", code, hdr.Values("Set-Cookie"))
	}
	if code, _, _ := c.get("/ui/settings"); code != http.StatusOK {
		t.Fatalf("still signed in after a refused logout: %d", code)
	}
	code, _, hdr = post("/ui/logout", url.Values{"_csrf": {c.csrf}})
	if code != http.StatusSeeOther || !strings.Contains(strings.Join(hdr.Values("Set-Cookie"), "\n"), "switchboard_session=;") {
		t.Fatalf("logout with token: %d %q", code, hdr.Values("Set-Cookie"))
	}
}

// TestLoginNextStaysOnSite: after a login the browser goes to next only
// when it is a path of the dashboard; every way off the site, or to a
// header it could split, goes to /ui/ instead.
func TestLoginNextStaysOnSite(t *testing.T) {
	t.Parallel()
	_, c := newUI(t, web.Config{Token: "s3cret-token"})
	c.get("/ui/login")
	tests := []struct{ next, want string }{
		{"/ui/workflows", "/ui/workflows"},
		{"/ui/", "/ui/"},
		{"/ui", "/ui"},
		{"/ui/executions?status=error&workflow=w1", "/ui/executions?status=error&workflow=w1"},
		{"/ui/workflows/abc#graph", "/ui/workflows/abc#graph"},
		{"/ui/workflows/caf%C3%A9", "/ui/workflows/caf%C3%A9"},
		// hostile
		{"/\t/127.0.0.1:9999/x", "/ui/"},
		{"/\t/ui/127.0.0.1:9999/x", "/ui/"},
		{"/ui/\t/x", "/ui/"},
		{"//evil.example/", "/ui/"},
		{"///evil.example/ui/", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/\\evil.example", "/ui/"},
		{"\\\\evil.example/ui/", "/ui/"},
		{"/ui/\\evil", "/ui/"},
		{"/ui/%5c%5cevil.example", "/ui/"},
		{"/ui/%5C", "/ui/"},
		{"/ui/%09x", "/ui/"},
		{"/ui/%0d%0aSet-Cookie:%20x=1", "/ui/"},
		{"/ui/\r\nSet-Cookie: x=1", "/ui/"},
		{"/ui/%00", "/ui/"},
		{"/ui/\x00", "/ui/"},
		{"/ui/%7f", "/ui/"},
		{"/ui/%C2%85", "/ui/"}, // C1 next line
		{"/ui/%250d%250a", "/ui/"},
		{"/ui/%255c", "/ui/"},
		{"/ui/%ff", "/ui/"},
		{"/ui/%zz", "/ui/"},
		{"https://evil.example/ui/", "/ui/"},
		{"http:/ui/", "/ui/"},
		{"http:ui/", "/ui/"},
		{"javascript:alert(1)", "/ui/"},
		{"JavaScript:/ui/", "/ui/"},
		{"data:text/html,x", "/ui/"},
		{"//user@evil.example/ui/", "/ui/"},
		{"/ui/../workflows/", "/ui/"},
		{"/ui/%2e%2e/evil", "/ui/"},
		{"/./ui/x", "/ui/"},
		{"/uix", "/ui/"},
		{"/ui@evil.example", "/ui/"},
		{"/workflows/", "/ui/"},
		{"/", "/ui/"},
		{"", "/ui/"},
		{"ui/workflows", "/ui/"},
		{" /ui/", "/ui/"},
		{"evil.example", "/ui/"},
	}
	for _, tt := range tests {
		code, _, hdr := c.do("POST", "/ui/login", strings.NewReader(url.Values{"_csrf": {c.csrf}, "token": {"s3cret-token"}, "next": {tt.next}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if code != http.StatusSeeOther || hdr.Get("Location") != tt.want {
			t.Errorf("next %q: %d to %q, want %q", tt.next, code, hdr.Get("Location"), tt.want)
		}
	}
	// The issue's own case, as the browser sends it: the form field decoded
	// from the query of the login page.
	code, body, _ := c.get("/ui/login?next=%2F%09%2F127.0.0.1%3A9999%2Fx")
	if code != http.StatusOK || strings.Contains(body, "127.0.0.1:9999") {
		t.Errorf("login form keeps the off-site next: %d\n%s", code, body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{})
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"X-Frame-Options":         "DENY",
	} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("%s = %q, want %q", h, resp.Header.Get(h), want)
		}
	}
	if strings.Contains(resp.Header.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Error("CSP allows inline code")
	}
}
