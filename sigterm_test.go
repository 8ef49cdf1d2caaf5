package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// TestMain lets a test run this test binary as the real program: with
// SWITCHBOARD_TEST_MAIN=1 it is main, with its own signals and exit code.
func TestMain(m *testing.M) {
	if os.Getenv("SWITCHBOARD_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is the program running as a subprocess.
type process struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	log  *logWatch // its stderr
}

func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "SWITCHBOARD_TEST_MAIN=1"), env...)
	stdout, _ := cmd.StdoutPipe()
	stderr := newLogWatch()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1), log: stderr}
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`running at (http://\S+?)/ `)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("program log:\n%s", stderr.String())
		}
	})
	select {
	case p.url = <-urls:
	case err := <-p.done:
		t.Fatalf("program exited before serving: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("program did not start")
	}
	return p
}

// logWatch is a program's log: it can be read whole, and waited on for a
// line.
type logWatch struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed and replaced at each write
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.b.Write(p)
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the log holds text.
func (l *logWatch) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		l.mu.Lock()
		has, changed := strings.Contains(l.b.String(), text), l.changed
		l.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the program never logged %q", text)
		}
	}
}

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// TestSIGTERMDuringRunThenResume stops the real program with SIGTERM while
// a node waits on the model, restarts it on the same data, finds the
// execution interrupted with the completed node's output kept, resumes it,
// and proves through the model server's counts that the completed node was
// not run again.
func TestSIGTERMDuringRunThenResume(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := map[string]int{}
	slowArrived := make(chan struct{}, 1)
	var slowHangs = true
	srv := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		prompt := req.Messages[len(req.Messages)-1].Content
		mu.Lock()
		calls[prompt]++
		hang := slowHangs && prompt == "slow step"
		mu.Unlock()
		if hang {
			slowArrived <- struct{}{}
			return llmtest.Reply{Delay: time.Hour} // until the client goes away
		}
		return llmtest.Reply{Content: "done: " + prompt}
	})
	env := []string{"OPENAI_BASE_URL=" + srv.URL(), "OPENAI_API_KEY=test", "SWITCHBOARD_LOG_LEVEL=warn"}
	data := t.TempDir()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--shutdown-grace", "300ms", "--embedded-redis-addr", "127.0.0.1:0"}

	p := startProcess(t, env, args...)
	doc := `{"name":"two steps","nodes":[
		{"id":"start","type":"start"},
		{"id":"fast","type":"ai-processor","config":{"prompt":"fast step"}},
		{"id":"slow","type":"ai-processor","config":{"prompt":"slow step"}},
		{"id":"end","type":"end"}],
		"edges":[{"from":"start","to":"fast"},{"from":"fast","to":"slow"},{"from":"slow","to":"end"}]}`
	var w map[string]any
	if code := postJSON(t, p.url+"/workflows/", doc, &w); code != 201 {
		t.Fatalf("create: %d", code)
	}
	var started map[string]any
	postJSON(t, fmt.Sprintf("%s/workflows/%s/execute", p.url, w["id"]), `{"async_execution":true}`, &started)
	execID := started["execution_id"].(string)
	select {
	case <-slowArrived:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow node never called the model")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("program exited with %v after SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("program did not stop after SIGTERM")
	}

	mu.Lock()
	slowHangs = false
	mu.Unlock()
	p2 := startProcess(t, env, args...)
	var x workflow.Execution
	getJSON(t, p2.url+"/workflows/executions/"+execID, &x)
	if x.Status != workflow.ExecInterrupted {
		t.Fatalf("after restart the execution is %s, want interrupted", x.Status)
	}
	if x.NodeStates["fast"].Status != "completed" || x.NodeStates["fast"].Output != "done: fast step" || x.NodeStates["slow"].Status != "cancelled" {
		t.Fatalf("node states: fast %+v slow %+v", x.NodeStates["fast"], x.NodeStates["slow"])
	}
	var resumed workflow.Execution
	if code := postJSON(t, p2.url+"/workflows/executions/"+execID+"/resume", `{}`, &resumed); code != 200 {
		t.Fatalf("resume: %d", code)
	}
	if resumed.Status != "success" || resumed.ResumedFrom != execID || resumed.NodeStates["fast"].Output != "done: fast step" {
		t.Fatalf("resumed: %s from %q fast %+v (%s)", resumed.Status, resumed.ResumedFrom, resumed.NodeStates["fast"], resumed.Error)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["fast step"] != 1 || calls["slow step"] != 2 {
		t.Fatalf("model calls: %v (fast must not run again)", calls)
	}
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
}

// TestKillDuringRunThenRetainAndResume kills the real program with SIGKILL
// while a node waits on the model, after a dozen newer executions, and
// restarts it on the same data with --retain 10. The start-up marks the
// execution interrupted and prunes at once: the count must not delete it,
// and its total usage must be what its completed node stored. Then it is
// resumed.
func TestKillDuringRunThenRetainAndResume(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	hang := true
	slowArrived := make(chan struct{}, 1)
	srv := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		prompt := req.Messages[len(req.Messages)-1].Content
		mu.Lock()
		h := hang && prompt == "slow step"
		mu.Unlock()
		if h {
			slowArrived <- struct{}{}
			return llmtest.Reply{Delay: time.Hour}
		}
		return llmtest.Reply{Content: "done: " + prompt, Usage: &openai.Usage{PromptTokens: 11, CompletionTokens: 3, TotalTokens: 14}}
	})
	env := []string{"OPENAI_BASE_URL=" + srv.URL(), "OPENAI_API_KEY=test", "SWITCHBOARD_LOG_LEVEL=warn"}
	data := t.TempDir()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--embedded-redis-addr", "127.0.0.1:0"}

	p := startProcess(t, env, args...)
	var slow, quick map[string]any
	postJSON(t, p.url+"/workflows/", `{"name":"two steps","nodes":[
		{"id":"fast","type":"ai-processor","config":{"prompt":"fast step"}},
		{"id":"slow","type":"ai-processor","config":{"prompt":"slow step"}}],
		"edges":[{"from":"fast","to":"slow"}]}`, &slow)
	postJSON(t, p.url+"/workflows/", `{"name":"one step","nodes":[{"id":"q","type":"ai-processor","config":{"prompt":"quick"}}]}`, &quick)
	var started map[string]any
	postJSON(t, fmt.Sprintf("%s/workflows/%s/execute", p.url, slow["id"]), `{"async_execution":true}`, &started)
	execID := started["execution_id"].(string)
	select {
	case <-slowArrived:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow node never called the model")
	}
	// Twelve newer executions; each synchronous answer comes after
	// everything submitted before it is committed, the fast node's end too.
	for range 12 {
		var x workflow.Execution
		if code := postJSON(t, fmt.Sprintf("%s/workflows/%s/execute", p.url, quick["id"]), `{}`, &x); code != 200 || x.Status != "success" {
			t.Fatalf("quick execution: %d %s", code, x.Status)
		}
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("program did not die after SIGKILL")
	}

	mu.Lock()
	hang = false
	mu.Unlock()
	p2 := startProcess(t, append(env, "SWITCHBOARD_LOG_LEVEL=info"), append(args, "--retain", "10")...)
	p2.log.waitFor(t, "pruned old executions")
	var x workflow.Execution
	if code := getJSON(t, p2.url+"/workflows/executions/"+execID, &x); code != 200 || x.Status != workflow.ExecInterrupted {
		t.Fatalf("after restart with --retain 10: %d %s, want 200 interrupted", code, x.Status)
	}
	fast := x.NodeStates["fast"]
	if fast == nil || fast.Status != "completed" || fast.Usage.TotalTokens != 14 {
		t.Fatalf("fast node: %+v", fast)
	}
	if x.Usage != fast.Usage {
		t.Errorf("interrupted execution's usage %+v, want its completed node's %+v", x.Usage, fast.Usage)
	}
	var resumed workflow.Execution
	if code := postJSON(t, p2.url+"/workflows/executions/"+execID+"/resume", `{}`, &resumed); code != 200 || resumed.Status != "success" {
		t.Fatalf("resume: %d %s %s", code, resumed.Status, resumed.Error)
	}
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
}
