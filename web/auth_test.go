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
	s, _ := newUI(t, web.Config{Token: "s3cret-token"}) // with the dashboard's pages
	client := &http.Client{CheckRedirect: noRedirect}

	resp, err := client.Get(s.URL + "/ui/workflows")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login?next=") {
		t.Fatalf("no session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	resp, _ = client.PostForm(s.URL+"/ui/login", url.Values{"token": {"wrong"}, "next": {"/ui/workflows"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}

	resp, _ = client.PostForm(s.URL+"/ui/login", url.Values{"token": {"s3cret-token"}, "next": {"//evil.example/"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("login: %d to %q (an off-site next must not be followed)", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "switchboard_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", session)
	}

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
	resp, _ = client.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API with cookie: %d", resp.StatusCode)
	}
	// Logout clears the cookie.
	resp, _ = client.PostForm(s.URL+"/ui/logout", nil)
	resp.Body.Close()
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == "switchboard_session" && c.MaxAge < 0)
	}
	if !cleared {
		t.Fatal("logout did not clear the cookie")
	}
}

func TestSecurityHeaders(t *testing.T) {
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
