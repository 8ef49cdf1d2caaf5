package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// warnings is a slog.Handler that passes every record at warn level or above to a channel.
type warnings struct{ ch chan slog.Record }

func (w warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w warnings) Handle(_ context.Context, r slog.Record) error {
	select {
	case w.ch <- r.Clone():
	default:
	}
	return nil
}
func (w warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnings) WithGroup(string) slog.Handler      { return w }

// waitWarning waits for a warning whose channel attribute is channel and whose reason contains
// reason.
func (w warnings) waitWarning(t *testing.T, channel, reason string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r := <-w.ch:
			attrs := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
			if attrs["channel"] == channel && strings.Contains(attrs["reason"], reason) {
				return
			}
		case <-timeout:
			t.Fatalf("no warning on %s with reason %q", channel, reason)
		}
	}
}

func newEnvLogger(t *testing.T, model executor.LLM, ps executor.PubSub, logger *slog.Logger) *env {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ex := executor.New(db, model, ps, slog.New(slog.NewMultiHandler(logger.Handler(), testLogger(t).Handler())), executor.Config{PingTimeout: 30 * time.Second}) // as newEnv
	t.Cleanup(func() {
		// t.Context() is done before cleanups run: the shutdown gets its own.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ex.Shutdown(sctx)
		db.Close()
	})
	return &env{db: db, exec: ex}
}

// blockedExpert returns a model whose node's own run waits until release is closed (started
// says it began), while it answers every question at once with "answer to {question}".
func blockedExpert(t *testing.T, started chan<- struct{}, release <-chan struct{}) executor.LLM {
	model, _ := openAIModel(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		last := req.Messages[len(req.Messages)-1].Content
		if strings.Contains(req.Messages[0].Content, "asks you the question") {
			return llmtest.Reply{Content: "answer to " + last}
		}
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
		return llmtest.Reply{Content: "done"}
	})
	return model
}

// TestPubSubOutsideAgentAsks: a program that is not one of the execution's agents asks an agent
// in the shapes other writers use, and gets answers; what cannot be used is logged at warn
// level with the channel and the reason; the answered asks are in the communication log.
func TestPubSubOutsideAgentAsks(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		b := connectBus(t, url)
		warn := warnings{ch: make(chan slog.Record, 1000)}
		started, release := make(chan struct{}, 1), make(chan struct{})
		e := newEnvLogger(t, blockedExpert(t, started, release), b, slog.New(warn))
		// Ids with '-' in them: the agent id cannot be split back into execution and node.
		w := parse(t, `{"name":"outside","metadata":{"communication_mode":"pubsub"},"nodes":[
			{"id":"ex-pert","type":"ai-processor","config":{"system_prompt":"You know things.","prompt":"own run"}}]}`)
		if err := e.db.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
		r, err := e.exec.Start(w, executor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			select {
			case <-release:
			default:
				close(release)
			}
		}()
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatal("the node did not start")
		}
		agent := bus.AgentID(r.ID, "ex-pert")
		opts, _ := redis.ParseURL(url)
		raw := redis.NewClient(opts)
		defer raw.Close()
		mine := raw.Subscribe(ctx, "agent:messages:my-tool")
		defer mine.Close()
		if _, err := mine.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		queries := []struct{ id, payload string }{
			{"q-upper", `{"id":"q-upper","type":"QUERY","from_agent":"my-tool","to_agent":"` + agent + `","content":{"question":"one?"}}`},
			{"q-task", `{"id":"q-task","type":"task_request","from_agent":"my-tool","content":{"question":"two?"},"metadata":{"execution_id":"` + r.ID + `"}}`},
			{"q-lower", `{"id":"q-lower","type":"query","from_agent":"my-tool","content":{"question":"three?","context":{"k":"v"}}}`},
		}
		for _, q := range queries {
			if err := raw.Publish(ctx, bus.Channel(agent), q.payload).Err(); err != nil {
				t.Fatal(err)
			}
			m, err := mine.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var reply map[string]any
			if err := json.Unmarshal([]byte(m.Payload), &reply); err != nil {
				t.Fatal(err)
			}
			content, _ := reply["content"].(map[string]any)
			meta, _ := reply["metadata"].(map[string]any)
			if reply["type"] != "response" || reply["reply_to"] != q.id || reply["from_agent"] != agent ||
				!strings.HasPrefix(fmt.Sprint(content["response"]), "answer to ") || content["success"] != true ||
				meta["execution_id"] != r.ID || meta["workflow_id"] != w.ID {
				t.Errorf("reply to %s: %s", q.id, m.Payload)
			}
		}
		channel := bus.Channel(agent)
		unusable := []struct{ payload, reason string }{
			{`{"id":"n-1","type":"NOTIFICATION","from_agent":"my-tool","content":{"text":"hi"}}`, `type "notification" is not a query`},
			{`{"id":"q-other","type":"query","from_agent":"my-tool","content":{"question":"?"},"metadata":{"execution_id":"other"}}`, `metadata.execution_id "other" is not the execution`},
			{`{"id":"r-1","type":"response","from_agent":"my-tool","content":{"response":"x"}}`, "a response without reply_to"},
			{`{"id":"q-empty","type":"query","from_agent":"my-tool","content":{"question":7}}`, "content.question is missing"},
		}
		for _, u := range unusable {
			if err := raw.Publish(ctx, channel, u.payload).Err(); err != nil {
				t.Fatal(err)
			}
			warn.waitWarning(t, channel, u.reason)
		}
		close(release)
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
		for _, q := range []string{"one?", "two?", "three?"} {
			var ask, resp *workflow.CommEntry
			for i, c := range x.CommunicationLog {
				switch {
				case c.Type == workflow.CommAsk && c.From == "my-tool" && c.To == "ex-pert" && c.Content == q:
					ask = &x.CommunicationLog[i]
				case c.Type == workflow.CommResponse && c.From == "ex-pert" && c.To == "my-tool" && c.Content == "answer to "+q:
					resp = &x.CommunicationLog[i]
				}
			}
			if ask == nil || resp == nil || resp.Metadata["success"] != true || ask.Metadata["transport"] != "redis" {
				t.Errorf("question %q: ask %+v response %+v in %+v", q, ask, resp, x.CommunicationLog)
			}
		}
		noAgentChannels(t, b)
	})
}
