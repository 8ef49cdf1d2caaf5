package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/internal/redisserver"
)

// binary measures the real program: start-up time, idle memory and peak
// memory during rssN concurrent executions.
func (b *bencher) binary(ctx context.Context) error {
	bin, err := b.build(ctx)
	if err != nil {
		return err
	}
	var starts []time.Duration
	for i := range b.sc.startups {
		p, took, err := b.startBinary(ctx, bin, fmt.Sprintf("start-%d", i), nil)
		if err != nil {
			return err
		}
		starts = append(starts, took)
		if err := p.stop(); err != nil {
			return err
		}
	}
	b.res.set("startup_ms", ms(percentile(starts, 50)))

	model, err := startFakeLLM(b.sc.overlapLatency)
	if err != nil {
		return err
	}
	defer model.close()
	p, _, err := b.startBinary(ctx, bin, "rss", map[string]string{
		"OPENAI_BASE_URL": model.url, "OPENAI_API_KEY": "bench", "SWITCHBOARD_MODEL": "bench",
	})
	if err != nil {
		return err
	}
	defer p.stop()
	// Idle: what the process holds a second after it became ready.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	idle, err := procStatusKB(p.cmd.Process.Pid, "VmRSS")
	if err != nil {
		return err
	}
	b.res.set("rss_idle_mb", idle/1024)

	c := newClient(64)
	defer c.CloseIdleConnections()
	id, err := workflowID(ctx, c, p.base, "Q&A: a student asks a teacher")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := postAsync(ctx, c, p.base+"/workflows/"+id+"/execute", b.sc.rssN, 64); err != nil {
		return err
	}
	if err := waitExecutions(ctx, c, p.base, id, b.sc.rssN, 2*time.Minute); err != nil {
		return err
	}
	wall := time.Since(start)
	peak, err := procStatusKB(p.cmd.Process.Pid, "VmHWM")
	if err != nil {
		return err
	}
	b.res.set("rss_peak_1000_mb", peak/1024)
	b.res.set("binary_wall_1000_ms", ms(wall))
	b.res.set("binary_model_requests", float64(model.requests()))
	return p.stop()
}

// build compiles the module's binary once into the run's temp dir.
func (b *bencher) build(ctx context.Context) (string, error) {
	if b.bin != "" {
		return b.bin, nil
	}
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	root := strings.TrimSpace(string(out))
	bin := filepath.Join(b.dir, "switchboard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, msg)
	}
	b.bin = bin
	return bin, nil
}

// proc is a switchboard process the bench started; stop ends it by its pid.
type proc struct {
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
	stderr *tailBuffer
	once   sync.Once
	err    error
}

// startBinary starts the binary with a fresh data directory and free ports
// and returns once /readyz answers 200, with the time that took.
func (b *bencher) startBinary(ctx context.Context, bin, name string, env map[string]string) (*proc, time.Duration, error) {
	rport, err := redisserver.FreePort()
	if err != nil {
		return nil, 0, err
	}
	return b.startServer(ctx, bin, name, env, "--embedded-redis-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(rport)), "--log-level", "warn")
}

// startServer starts `switchboard serve` with a fresh data directory on a
// free port and the flags args, and returns once /readyz answers 200.
func (b *bencher) startServer(ctx context.Context, bin, name string, env map[string]string, args ...string) (*proc, time.Duration, error) {
	port, err := redisserver.FreePort()
	if err != nil {
		return nil, 0, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", filepath.Join(b.dir, name)}, args...)...)
	cmd.Env = childEnv(env)
	return launch(ctx, cmd, "http://"+addr, "/readyz")
}

// launch starts cmd and returns once base+ready answers 200, with the time
// that took.
func launch(ctx context.Context, cmd *exec.Cmd, base, ready string) (*proc, time.Duration, error) {
	p := &proc{cmd: cmd, base: base, exited: make(chan struct{}), stderr: &tailBuffer{max: 8 << 10}}
	cmd.Stderr = p.stderr
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := start.Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+ready, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, time.Since(start), nil
			}
		}
		select {
		case <-p.exited:
			return nil, 0, fmt.Errorf("%s exited before it was ready:\n%s", strings.Join(cmd.Args, " "), p.stderr)
		case <-ctx.Done():
			p.stop()
			return nil, 0, ctx.Err()
		case <-time.After(time.Millisecond): // another process's readiness can only be polled
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, 0, fmt.Errorf("%s not ready within 30 s:\n%s", strings.Join(cmd.Args, " "), p.stderr)
		}
	}
}

// stop sends SIGTERM to the process and waits for it to exit (SIGKILL after
// 15 s); it reports a non-zero exit.
func (p *proc) stop() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.err = fmt.Errorf("switchboard (pid %d) did not stop on SIGTERM", p.cmd.Process.Pid)
			return
		}
		if !p.cmd.ProcessState.Success() {
			p.err = fmt.Errorf("switchboard (pid %d) exited with %s:\n%s", p.cmd.Process.Pid, p.cmd.ProcessState, p.stderr)
		}
	})
	return p.err
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *proc) kill() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

// childEnv is the bench's environment without the variables that configure
// switchboard, plus set.
func childEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OPENAI_") || strings.HasPrefix(k, "SWITCHBOARD_") || k == "REDIS_URL" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// procStatusKB reads a kB field (VmRSS, VmHWM) of /proc/pid/status.
func procStatusKB(pid int, field string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("%s of pid %d: %w", field, pid, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func workflowID(ctx context.Context, c *http.Client, base, name string) (string, error) {
	_, data, err := call(ctx, c, http.MethodGet, base+"/workflows/?limit=1000", "", http.StatusOK)
	if err != nil {
		return "", err
	}
	var list []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return "", err
	}
	for _, w := range list {
		if w.Name == name {
			return w.ID, nil
		}
	}
	return "", fmt.Errorf("no workflow named %q among the examples", name)
}

// postAsync starts n executions (async) from workers clients.
func postAsync(ctx context.Context, c *http.Client, url string, n, workers int) error {
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				if _, _, err := call(ctx, c, http.MethodPost, url, `{"async_execution": true}`, http.StatusAccepted); err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// waitExecutions polls until n executions of workflow id have succeeded; it
// fails as soon as one ended otherwise.
func waitExecutions(ctx context.Context, c *http.Client, base, id string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	count := func(status string) (int, error) {
		resp, _, err := call(ctx, c, http.MethodGet, base+"/workflows/"+id+"/executions?limit=1&status="+status, "", http.StatusOK)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(resp.Header.Get("X-Total-Count"))
	}
	for {
		done, err := count("success")
		if err != nil {
			return err
		}
		if done >= n {
			return nil
		}
		for _, bad := range []string{"error", "cancelled", "interrupted"} {
			if k, err := count(bad); err != nil || k > 0 {
				return fmt.Errorf("%d executions ended %s (%v)", k, bad, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d executions finished within %s", done, n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fakeLLM is an OpenAI-compatible chat-completions server answering like
// benchModel after a fixed latency, streaming when asked to.
type fakeLLM struct {
	url   string
	srv   *http.Server
	done  chan error
	mu    sync.Mutex
	count int
}

func startFakeLLM(latency time.Duration) (*fakeLLM, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeLLM{url: "http://" + ln.Addr().String() + "/v1", done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.count++
		f.mu.Unlock()
		var req openai.ChatCompletionRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		content := fakeReply(req.Messages)
		usage := openai.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(openai.ChatCompletionResponse{
				ID: "bench", Object: "chat.completion", Model: "bench",
				Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: content}, FinishReason: openai.FinishReasonStop}},
				Usage:   usage,
			})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		var buf bytes.Buffer
		chunk := func(v openai.ChatCompletionStreamResponse) {
			data, _ := json.Marshal(v)
			buf.WriteString("data: ")
			buf.Write(data)
			buf.WriteString("\n\n")
		}
		chunk(openai.ChatCompletionStreamResponse{ID: "bench", Object: "chat.completion.chunk", Model: "bench",
			Choices: []openai.ChatCompletionStreamChoice{{Delta: openai.ChatCompletionStreamChoiceDelta{Role: openai.ChatMessageRoleAssistant, Content: content}}}})
		chunk(openai.ChatCompletionStreamResponse{ID: "bench", Object: "chat.completion.chunk", Model: "bench",
			Choices: []openai.ChatCompletionStreamChoice{{FinishReason: openai.FinishReasonStop}}})
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			chunk(openai.ChatCompletionStreamResponse{ID: "bench", Object: "chat.completion.chunk", Model: "bench",
				Choices: []openai.ChatCompletionStreamChoice{}, Usage: &usage})
		}
		buf.WriteString("data: [DONE]\n\n")
		_, _ = w.Write(buf.Bytes())
	})
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { f.done <- f.srv.Serve(ln) }()
	return f, nil
}

// fakeReply is benchModel's reply, told from the messages alone.
func fakeReply(msgs []openai.ChatCompletionMessage) string {
	var system, last string
	for _, m := range msgs {
		switch m.Role {
		case openai.ChatMessageRoleSystem:
			system = m.Content
		case openai.ChatMessageRoleUser:
			last = m.Content
		}
	}
	switch {
	case strings.HasPrefix(last, "Results of your calls"):
		return followUpText
	case strings.Contains(system, "asks you the question"):
		return answerText
	case strings.Contains(last, "CALL:"):
		return last
	}
	return doneText
}

func (f *fakeLLM) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

func (f *fakeLLM) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.srv.Shutdown(ctx)
	<-f.done
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
