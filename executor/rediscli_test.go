package executor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// The README's commands for talking to agents from another program, as printed there.
const (
	cliListen       = `redis-cli -p 6380 SUBSCRIBE agent:messages:my-tool`
	cliAsk          = `redis-cli -p 6380 PUBLISH agent:messages:node-$EXEC-teacher '{"id":"q-1","type":"QUERY","from_agent":"my-tool","content":{"question":"What is the capital of France?"}}'`
	cliWatch        = `redis-cli -p 6380 SUBSCRIBE agent:messages:node-$EXEC-teacher`
	cliAnswer       = `redis-cli -p 6380 PUBLISH agent:messages:node-$EXEC-student '{"id":"r-1","type":"RESPONSE","from_agent":"my-tool","reply_to":"QUERY_ID","content":{"result":{"response":"42"}}}'`
	outsideQuestion = "What is the capital of France?"
)

// cli runs one README command through sh, pointed at the test's redis-server, with EXEC set.
type cli struct {
	t          *testing.T
	host, port string
	exec       string
}

func (c cli) cmd(ctx context.Context, line string, replace ...string) *exec.Cmd {
	line = strings.Replace(line, "-p 6380", "-h "+c.host+" -p "+c.port, 1)
	line = strings.NewReplacer(replace...).Replace(line)
	cmd := exec.CommandContext(ctx, "sh", "-c", "exec "+line)
	cmd.Env = append(os.Environ(), "EXEC="+c.exec)
	return cmd
}

// run runs a command to its end and returns its output.
func (c cli) run(ctx context.Context, line string, replace ...string) string {
	c.t.Helper()
	out, err := c.cmd(ctx, line, replace...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s: %v: %s", line, err, out)
	}
	return string(out)
}

// subscribe starts a SUBSCRIBE command, waits until redis-cli reports the subscription, and
// returns the payloads of the messages it prints. The process is killed, by its pid, when the
// test ends.
func (c cli) subscribe(ctx context.Context, line string) <-chan string {
	c.t.Helper()
	cmd := c.cmd(ctx, line)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				c.t.Fatalf("%s ended", line)
			}
			return l
		case <-time.After(10 * time.Second):
			c.t.Fatalf("%s printed nothing", line)
		}
		return ""
	}
	// Without a terminal redis-cli prints each reply's elements on lines of their own:
	// "subscribe", the channel, the count; then "message", the channel, the payload.
	if l := next(); l != "subscribe" {
		c.t.Fatalf("%s: first line %q", line, l)
	}
	next()
	next()
	payloads := make(chan string, 100)
	go func() {
		defer close(payloads)
		for l := range lines {
			if l == "message" {
				<-lines // the channel
				if p, ok := <-lines; ok {
					payloads <- p
				}
			}
		}
	}()
	return payloads
}

func recvPayload(t *testing.T, ch <-chan string, what string) map[string]any {
	t.Helper()
	select {
	case p := <-ch:
		var m map[string]any
		if err := json.Unmarshal([]byte(p), &m); err != nil {
			t.Fatalf("%s: %q: %v", what, p, err)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
	return nil
}

// TestREADMERedisCLI runs the README's redis-cli commands, with the real redis-cli, against a
// real redis-server while an execution runs: an outside program asks the teacher, and answers
// the student's question for it.
func TestREADMERedisCLI(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-cli is missing (apt-get install redis-tools)")
		}
		t.Skip("redis-cli is missing (apt-get install redis-tools)")
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{cliListen, cliAsk, cliWatch, cliAnswer} {
		if !strings.Contains(string(readme), "\n"+line+"\n") {
			t.Fatalf("README.md does not show %s", line)
		}
	}
	ctl := bustest.Start(t, bustest.RedisServer)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	b := connectBus(t, ctl.URL())

	goAsk, release := make(chan struct{}), make(chan struct{})
	started := make(chan struct{}, 1)
	defer close(release)
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		last := req.Messages[len(req.Messages)-1].Content
		sys := req.Messages[0].Content
		switch {
		case strings.Contains(sys, "asks you the question") && strings.Contains(last, "6 x 7"):
			// The outside program answers this one; the teacher is slow.
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
			return llmtest.Reply{Content: "too late"}
		case strings.Contains(sys, "asks you the question"):
			return llmtest.Reply{Content: "Paris"}
		case strings.HasPrefix(last, "Results of your calls"):
			return llmtest.Reply{Content: "final: " + last}
		case strings.Contains(sys, "student"):
			started <- struct{}{}
			select {
			case <-goAsk:
			case <-time.After(30 * time.Second):
			}
			return llmtest.Reply{Content: "CALL: ask_node('teacher', 'What is 6 x 7?')"}
		}
		return llmtest.Reply{Content: "teacher done"}
	})
	e := newEnv(t, model, b, executor.Config{})
	w := parse(t, `{"name":"cli","metadata":{"communication_mode":"pubsub"},"nodes":[
		{"id":"student","type":"ai-processor","config":{"system_prompt":"You are a student.","prompt":"go","can_communicate":true}},
		{"id":"teacher","type":"ai-processor","config":{"system_prompt":"You teach.","prompt":"rest"}}]}`)
	if err := e.db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r, err := e.exec.Start(w, executor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the student did not start")
	}
	host, port, _ := net.SplitHostPort(ctl.Addr())
	c := cli{t: t, host: host, port: port, exec: r.ID}

	// Ask the teacher.
	replies := c.subscribe(ctx, cliListen)
	if out := strings.TrimSpace(c.run(ctx, cliAsk)); out != "1" {
		t.Fatalf("PUBLISH reached %s subscribers, want the teacher", out)
	}
	reply := recvPayload(t, replies, "response to q-1")
	content, _ := reply["content"].(map[string]any)
	if reply["type"] != "response" || reply["reply_to"] != "q-1" || content["response"] != "Paris" {
		t.Fatalf("reply %v", reply)
	}

	// Answer the student's question for the teacher.
	queries := c.subscribe(ctx, cliWatch)
	close(goAsk)
	q := recvPayload(t, queries, "the student's query")
	qid, _ := q["id"].(string)
	if q["type"] != "query" || q["from_agent"] != bus.AgentID(r.ID, "student") || qid == "" {
		t.Fatalf("query %v", q)
	}
	c.run(ctx, cliAnswer, "QUERY_ID", qid)

	if _, err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	x, err := e.db.GetExecution(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	if resp := findComm(x, workflow.CommResponse, "teacher", "student"); resp == nil || resp.Content != "42" || resp.Metadata["message_id"] != "r-1" {
		t.Errorf("the student's answer: %+v", resp)
	}
	ask := findComm(x, workflow.CommAsk, "my-tool", "teacher")
	answer := findComm(x, workflow.CommResponse, "teacher", "my-tool")
	if ask == nil || ask.Content != outsideQuestion || answer == nil || answer.Content != "Paris" {
		t.Errorf("the outside ask: %+v / %+v", ask, answer)
	}
}
