package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// startServer runs the whole program in-process on a free port and returns
// its base URL. The program stops when the test ends.
func startServer(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	base, _, _ := startServerOut(t, env, nil, args...)
	return base
}

// startServerOut runs the program like startServer and returns its base URL,
// the first submatch of each pattern in its output (printed before the
// "running at" line), and a function that stops the program and waits for
// it to return, as the test's end does.
func startServerOut(t *testing.T, env map[string]string, patterns []string, args ...string) (string, []string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return testEnv(k)
	}
	// The embedded Redis gets a free port too, so that tests running in
	// parallel each own theirs.
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--embedded-redis-addr", "127.0.0.1:0",
		"--data", t.TempDir(), "--log-level", "warn"}, args...)
	// The program's output and log (warnings and errors) are shown when the
	// test fails, after the program has stopped: a run that hangs says why
	// there. (Not t.Output(): a program that does not stop could write to it
	// after the test has ended.)
	var (
		logMu sync.Mutex
		logs  []string
	)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logMu.Lock()
		defer logMu.Unlock()
		t.Logf("the program's log (%d lines):\n%s", len(logs), strings.Join(logs, "\n"))
	})
	go func() {
		done <- run(ctx, all, getenv, pw, pw)
		pw.Close()
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	type found struct {
		base  string
		extra []string
	}
	ready := make(chan found, 1)
	go func() {
		re := regexp.MustCompile(`running at (http://\S+?)/ `)
		res := make([]*regexp.Regexp, len(patterns))
		for i, p := range patterns {
			res[i] = regexp.MustCompile(p)
		}
		extra := make([]string, len(patterns))
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			for i, r := range res {
				if m := r.FindStringSubmatch(line); m != nil && extra[i] == "" {
					extra[i] = m[1]
				}
			}
			if m := re.FindStringSubmatch(line); m != nil && !sent {
				ready <- found{m[1], extra}
				sent = true
			}
			logMu.Lock()
			logs = append(logs, line)
			logMu.Unlock()
		}
	}()
	select {
	case f := <-ready:
		return f.base, f.extra, stop
	case err := <-done:
		t.Fatalf("run ended before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return "", nil, stop
}

func postJSON(t *testing.T, url, body string, out any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("decode answer of %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestEndToEndOriginalSimpleQA(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "shared", "compat", "original-examples", "01_simple_qa.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: %v", path, err)
		}
		t.Skipf("skipping: %s not present (it exists on the team's machines and in CI)", path)
	}
	base := startServer(t, nil)
	var created map[string]any
	if code := postJSON(t, base+"/workflows/", string(data), &created); code != 201 {
		t.Fatalf("import: %d %v", code, created)
	}
	id := created["_id"].(string)
	var x workflow.Execution
	if code := postJSON(t, base+"/workflows/"+id+"/execute", `{"inputs":{},"async_execution":false}`, &x); code != 200 {
		t.Fatalf("execute: %d", code)
	}
	resp, err := http.Get(base + "/workflows/executions/" + x.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got workflow.Execution
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "success" {
		t.Fatalf("status %s: %s", got.Status, got.Error)
	}
	var answer string
	asked := false
	for _, c := range got.CommunicationLog {
		if c.Type == "ask" && c.From == "student" && c.To == "teacher" {
			asked = true
		}
		if c.Type == "response" && c.From == "teacher" && c.To == "student" {
			answer = c.Content
		}
	}
	if !asked || answer == "" {
		t.Fatalf("want an ask and a response in %+v", got.CommunicationLog)
	}
	if out, _ := got.NodeStates["student"].Output.(string); !strings.Contains(out, answer) {
		t.Fatalf("the student's output does not contain the teacher's answer\noutput: %s\nanswer: %s", out, answer)
	}
}

func TestServeLoadsExamplesOnFirstStart(t *testing.T) {
	t.Parallel()
	base := startServer(t, nil)
	resp, err := http.Get(base + "/workflows/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []workflow.Workflow
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list) < 4 {
		t.Fatalf("want the examples, got %d workflows", len(list))
	}
}

func TestValidateCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"name":"x","nodes":[{"id":"a","type":"start"}],"edges":[{"from":"a","to":"b"}]}`), 0o600)
	var out strings.Builder
	err := run(t.Context(), []string{"validate", bad}, testEnv, &out, t.Output())
	if err == nil || !strings.Contains(out.String(), `edges[0].to: edge to "b": no node has that id`) {
		t.Fatalf("validate bad: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"validate", "examples/01_qa.json"}, testEnv, &out, t.Output()); err != nil {
		t.Fatalf("validate good: %v %s", err, out.String())
	}
}

func TestRunCommand(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	err := run(t.Context(), []string{"run", "examples/01_qa.json", "--input", "question_topic=volcanoes"},
		testEnv, &out, t.Output())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"student → teacher  ask: Can you explain volcanoes in two sentences?", "teacher → student  answer:", "success (mode simple", " tokens, ≈ 0 USD)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// A failing workflow exits non-zero.
	dir := t.TempDir()
	f := filepath.Join(dir, "fail.json")
	os.WriteFile(f, []byte(`{"name":"x","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"{{missing}}"}}]}`), 0o600)
	if err := run(t.Context(), []string{"run", f}, testEnv, io.Discard, t.Output()); err == nil {
		t.Fatal("want an error for a failing execution")
	}
}

func TestServeRefusesOpenAddressWithoutToken(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"serve", "--addr", "0.0.0.0:0", "--data", t.TempDir()},
		testEnv, io.Discard, t.Output())
	if err == nil || !strings.Contains(err.Error(), "refusing to listen on 0.0.0.0:0 without a token") ||
		!strings.Contains(err.Error(), "SWITCHBOARD_TOKEN") {
		t.Fatalf("got %v", err)
	}
	// With a token it starts (loopback port, so nothing is exposed in the test).
	base := startServer(t, map[string]string{"SWITCHBOARD_TOKEN": "tok"})
	resp, err := http.Get(base + "/workflows/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API without token: %d", resp.StatusCode)
	}
}

func TestServeWithRedisDown(t *testing.T) {
	t.Parallel()
	base := startServer(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:1"})
	var ready map[string]any
	if code := getJSON(t, base+"/readyz", &ready); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis down: %d %v", code, ready)
	}
	if b, _ := ready["bus"].(map[string]any); b["status"] != "unavailable" || b["kind"] != "external" {
		t.Fatalf("readyz bus: %v", ready["bus"])
	}
	// It still serves, and a pubsub run falls back to simple and succeeds.
	data, err := os.ReadFile("examples/04_pubsub_qa.json")
	if err != nil {
		t.Fatal(err)
	}
	var w map[string]any
	postJSON(t, base+"/workflows/", string(data), &w)
	var x workflow.Execution
	if code := postJSON(t, base+"/workflows/"+w["id"].(string)+"/execute", `{}`, &x); code != 200 {
		t.Fatalf("execute: %d", code)
	}
	if x.Status != "success" || x.RequestedMode != "pubsub" || x.Mode != "simple" || x.FallbackReason == "" {
		t.Fatalf("fallback: %s %s→%s %q", x.Status, x.RequestedMode, x.Mode, x.FallbackReason)
	}
}

// testEnv is the environment of in-process runs: empty, but for a demo
// model that answers at once (a person watching wants it paced; tests don't).
func testEnv(k string) string {
	if k == "SWITCHBOARD_DEMO_DELAY" {
		return "0"
	}
	return ""
}
