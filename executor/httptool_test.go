package executor

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loopbackServer is an httptest server (on 127.0.0.1) and the allow-lists
// that let http_request reach it: by name in both lists, as an operator
// would allow a service on the host.
func loopbackServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, HTTPConfig, []string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := HTTPConfig{AllowPrivate: []string{"127.0.0.1"}}.withDefaults()
	return srv, cfg, []string{"127.0.0.1"}
}

func call(t *testing.T, cfg HTTPConfig, allow []string, args any) (string, error) {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return httpRequest(t.Context(), cfg, allow, raw)
}

func TestHTTPRequestGetAndPost(t *testing.T) {
	t.Parallel()
	srv, cfg, allow := loopbackServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Internal", "not shown")
		fmt.Fprintf(w, `{"method":%q,"path":%q,"type":%q,"token":%q,"body":%q}`, r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-Token"), body)
	})
	got, err := call(t, cfg, allow, map[string]any{"method": "GET", "url": srv.URL + "/items?q=1", "headers": map[string]string{"X-Token": "t1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "HTTP 200 OK\nContent-Type: application/json\n\n" + `{"method":"GET","path":"/items","type":"","token":"t1","body":""}`
	if got != want {
		t.Errorf("GET gave\n%s\nwant\n%s", got, want)
	}
	for _, body := range []any{map[string]any{"a": 1}, `{"a":1}`} {
		got, err = call(t, cfg, allow, map[string]any{"method": "post", "url": srv.URL + "/items", "body": body})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(got, `{"method":"POST","path":"/items","type":"application/json","token":"","body":"{\"a\":1}"}`) {
			t.Errorf("POST of %#v gave %s", body, got)
		}
	}
	for _, tt := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"method": "DELETE", "url": srv.URL}, `method "DELETE": http_request makes GET and POST requests only`},
		{map[string]any{"method": "GET", "url": srv.URL, "body": map[string]any{"a": 1}}, "a GET request has no body: use POST"},
		{map[string]any{"method": "GET", "url": "ftp://127.0.0.1/x"}, "give an http:// or https:// URL"},
		{map[string]any{"method": "GET", "url": srv.URL, "headers": map[string]any{"X-N": 3}}, "argument headers must be"},
	} {
		if _, err := call(t, cfg, allow, tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got error %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestHTTPRequestSizeCapAndTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv, cfg, allow := loopbackServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = io.WriteString(w, strings.Repeat("é", 1000)) // 2000 bytes; a cut must not split a rune
		case "/binary":
			_, _ = w.Write([]byte{0xff, 0xfe, 0x00, 0x01})
		case "/slow":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush() // the headers arrive; the body never does
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close, which waits for the handler
	cfg.MaxBytes, cfg.Timeout = 101, 300*time.Millisecond
	got, err := call(t, cfg, allow, map[string]any{"method": "GET", "url": srv.URL + "/big"})
	if err != nil {
		t.Fatal(err)
	}
	body, note, _ := strings.Cut(strings.SplitN(got, "\n\n", 2)[1], "\n[cut:")
	if body != strings.Repeat("é", 50) || note != " the body is longer than 101 bytes; only the first 100 are shown]" {
		t.Errorf("cut body %q, note %q", body, note)
	}
	if got, err = call(t, cfg, allow, map[string]any{"method": "GET", "url": srv.URL + "/binary"}); err != nil || !strings.Contains(got, "[a body of 4 bytes that is not text; it is not shown]") {
		t.Errorf("binary body: %q, %v", got, err)
	}
	started := time.Now()
	_, err = call(t, cfg, allow, map[string]any{"method": "GET", "url": srv.URL + "/slow"})
	if err == nil || !strings.Contains(err.Error(), "no complete response within 300ms") {
		t.Errorf("slow body: %v", err)
	}
	if d := time.Since(started); d > 10*time.Second {
		t.Errorf("the timeout took %s", d)
	}
}

func TestHTTPRequestRedirects(t *testing.T) {
	t.Parallel()
	var srvURL string
	srv, cfg, allow := loopbackServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/other":
			// The same server under another name, which is even allowed:
			// a redirect still may not change the host.
			http.Redirect(w, r, strings.Replace(srvURL, "127.0.0.1", "localhost", 1)+"/final", http.StatusFound)
		case "/final":
			_, _ = io.WriteString(w, "final")
		}
	})
	srvURL = srv.URL
	allow = append(allow, "localhost")
	cfg.AllowPrivate = append(cfg.AllowPrivate, "localhost")
	got, err := call(t, cfg, allow, map[string]any{"method": "GET", "url": srv.URL + "/same"})
	if err != nil || !strings.Contains(got, "(redirected to "+srv.URL+"/final)") || !strings.HasSuffix(got, "\n\nfinal") {
		t.Errorf("same-host redirect: %q, %v", got, err)
	}
	_, err = call(t, cfg, allow, map[string]any{"method": "GET", "url": srv.URL + "/other"})
	if err == nil || !strings.Contains(err.Error(), `127.0.0.1 redirected to another host, "localhost"; http_request follows redirects on the same host only`) {
		t.Errorf("redirect to another host: %v", err)
	}
}

// TestHTTPRequestRefusals: a host on no allow-list, and every kind of
// address that is not public, are refused before anything is sent.
func TestHTTPRequestRefusals(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	cfg := HTTPConfig{Timeout: 5 * time.Second}.withDefaults()
	_, err := call(t, cfg, []string{"api.example.com"}, map[string]any{"method": "GET", "url": "http://evil.example.net/x"})
	if err == nil || err.Error() != `host "evil.example.net" is not allowed: `+httpAllowHint {
		t.Errorf("a host not allowed: %v", err)
	}
	for _, tt := range []struct{ host, addr, kind string }{
		{"127.0.0.1", "127.0.0.1", "loopback"},
		{"[::1]", "::1", "loopback"},
		{"localhost", "", "loopback"}, // a name that resolves to loopback
		{"169.254.169.254", "169.254.169.254", "link-local"},
		{"10.0.0.1", "10.0.0.1", "private"},
		{"[::ffff:192.168.0.1]", "192.168.0.1", "private"},
		{"0.0.0.0", "0.0.0.0", "unspecified"},
	} {
		u := "http://" + tt.host + port + "/"
		host, _ := url.Parse(u)
		// Allowed by name, but not as a private address.
		_, err := call(t, cfg, []string{host.Hostname()}, map[string]any{"method": "GET", "url": u})
		want := fmt.Sprintf("host %q resolves to %s, a %s address: http_request and http nodes refuse", host.Hostname(), tt.addr, tt.kind)
		if tt.addr == "" {
			want = fmt.Sprintf("host %q resolves to ", host.Hostname())
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--http-allow-private") {
			t.Errorf("%s: got %v, want %q", tt.host, err, want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests", n)
	}
	// Named in AllowPrivate, the same loopback server is reached.
	cfg.AllowPrivate = []string{"localhost"}
	if got, err := call(t, cfg, []string{"localhost"}, map[string]any{"method": "GET", "url": "http://localhost" + port + "/"}); err != nil || !strings.HasPrefix(got, "HTTP 200") {
		t.Errorf("allowed private host: %q, %v", got, err)
	}
}

func TestNonPublicAddresses(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "127.9.9.9": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"169.254.169.254": "link-local", "fe80::1": "link-local", "ff02::1": "link-local",
		"10.0.0.1": "private", "172.16.3.4": "private", "192.168.1.1": "private", "fc00::1": "private", "fd12::1": "private", "100.64.0.1": "private",
		"0.0.0.0": "unspecified", "0.1.2.3": "unspecified", "::": "unspecified",
		"224.0.0.1": "link-local", "239.1.2.3": "multicast", "ff05::1": "multicast",
		"8.8.8.8": "", "93.184.216.34": "", "2606:4700::1111": "", "172.32.0.1": "",
	} {
		if got := nonPublic(netip.MustParseAddr(addr)); got != want {
			t.Errorf("nonPublic(%s) = %q, want %q", addr, got, want)
		}
	}
}
