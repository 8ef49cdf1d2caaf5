package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestHTTPAllowFlags: the serve and worker commands read the http_request
// allow-lists from the environment, a flag replaces the environment's
// list, and a bad entry is refused by the name of its flag or variable.
func TestHTTPAllowFlags(t *testing.T) {
	t.Parallel()
	env := func(k string) string {
		switch k {
		case "SWITCHBOARD_HTTP_ALLOW":
			return "API.example.com, *.example.org"
		case "SWITCHBOARD_HTTP_ALLOW_PRIVATE":
			return "intranet.local"
		case "REDIS_URL":
			return "redis://127.0.0.1:1"
		}
		return ""
	}
	s, err := parseServeFlags(nil, env, io.Discard)
	if err != nil || !slices.Equal(s.http.Allow, []string{"api.example.com", "*.example.org"}) || !slices.Equal(s.http.AllowPrivate, []string{"intranet.local"}) {
		t.Errorf("serve from the environment: %+v, %v", s.http, err)
	}
	w, err := parseWorkerFlags([]string{"--http-allow", "other.example.com", "--http-allow-private", ""}, env, io.Discard)
	if err != nil || !slices.Equal(w.http.Allow, []string{"other.example.com"}) || len(w.http.AllowPrivate) != 0 {
		t.Errorf("worker with flags: %+v, %v", w.http, err)
	}
	if _, err := parseServeFlags([]string{"--http-allow", "https://api.example.com"}, env, io.Discard); err == nil || !strings.Contains(err.Error(), `-http-allow: "https://api.example.com" is not a host name`) {
		t.Errorf("a URL in --http-allow: %v", err)
	}
	bad := func(k string) string {
		if k == "SWITCHBOARD_HTTP_ALLOW_PRIVATE" {
			return "10.0.0.1:8080"
		}
		return env(k)
	}
	if _, err := parseWorkerFlags(nil, bad, io.Discard); err == nil || !strings.Contains(err.Error(), `SWITCHBOARD_HTTP_ALLOW_PRIVATE: "10.0.0.1:8080"`) {
		t.Errorf("a port in SWITCHBOARD_HTTP_ALLOW_PRIVATE: %v", err)
	}
}

// TestToolsAreValidatedByTheAPI: a workflow with a bad config.tools entry
// is refused with a 422 naming its JSON path.
func TestToolsAreValidatedByTheAPI(t *testing.T) {
	t.Parallel()
	base := startServer(t, nil)
	var body map[string]any
	code := postJSON(t, base+"/workflows/", `{"name":"x","metadata":{"http_allow":["api.example.com"]},"nodes":[
		{"id":"a","type":"ai-processor","config":{"tools":["http_request","curl"]}}]}`, &body)
	if code != 422 || !strings.Contains(fmt.Sprint(body), "nodes[0].config.tools[1]") || !strings.Contains(fmt.Sprint(body), `unknown built-in tool "curl"`) {
		t.Fatalf("%d %v", code, body)
	}
}
