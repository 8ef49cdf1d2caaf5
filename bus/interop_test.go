package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// TestAskTakesOtherWritersReplies answers an Ask with replies shaped as other programs write
// them: the type in any case, the original's task_response, and the answer in
// content.response, content.result.response or content.result.
func TestAskTakesOtherWritersReplies(t *testing.T) {
	replies := []struct {
		name, typ, content string
		want               string
		wantErr            error
	}{
		{"upper case", "RESPONSE", `{"response":"A"}`, "A", nil},
		{"result.response", "response", `{"result":{"response":"B","agent":"x"},"success":true}`, "B", nil},
		{"result string", "Response", `{"result":"C"}`, "C", nil},
		{"task_response", "task_response", `{"result":{"response":"D"}}`, "D", nil},
		{"TASK_RESPONSE", "TASK_RESPONSE", `{"response":"E","success":true}`, "E", nil},
		{"failure in result", "response", `{"result":{"success":false,"error":"boom"}}`, "", bus.ErrRemote},
		{"no answer", "response", `{"note":"nothing here"}`, "", bus.ErrMalformed},
	}
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		raw := rawClient(t, ctl)
		exec := uniqueExec(t)
		asker, target := bus.AgentID(exec, "asker"), "outside-agent"
		subscribe(t, b, bus.Channel(asker), ignore)
		for _, r := range replies {
			t.Run(r.name, func(t *testing.T) {
				// The target is another program: it sees the query on its channel and publishes
				// its own JSON.
				sctx, cancel := context.WithCancel(ctx)
				defer cancel()
				ps := raw.Subscribe(sctx, bus.Channel(target))
				defer ps.Close()
				if _, err := ps.Receive(sctx); err != nil {
					t.Fatal(err)
				}
				go func() {
					m, err := ps.ReceiveMessage(sctx)
					if err != nil {
						return
					}
					var q bus.Message
					if err := q.UnmarshalJSON([]byte(m.Payload)); err != nil {
						return
					}
					reply := fmt.Sprintf(`{"id":"r-%s","type":%q,"from_agent":%q,"reply_to":%q,"content":%s}`,
						q.ID, r.typ, target, q.ID, r.content)
					raw.Publish(sctx, bus.Channel(q.FromAgent), reply)
				}()
				q := bus.NewQuery(asker, target, "what?", nil, bus.Meta(exec, "wf"), 0)
				reply, err := b.Ask(ctx, bus.Channel(target), q, eventWait)
				if err != nil {
					t.Fatalf("Ask: %v", err)
				}
				if !reply.IsResponse() {
					t.Errorf("reply type %q is not a response", reply.Type)
				}
				got, err := reply.Answer()
				if got != r.want || !errors.Is(err, r.wantErr) {
					t.Errorf("Answer = %q, %v; want %q, %v", got, err, r.want, r.wantErr)
				}
			})
		}
	})
}

// TestQueryTypesAsOthersWriteThem: a query and a task_request arrive as queries whatever the
// case of their type, and are handed to the channel's handler.
func TestQueryTypesAsOthersWriteThem(t *testing.T) {
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		raw := rawClient(t, ctl)
		agent := bus.AgentID(uniqueExec(t), "a")
		h, got := collector(10)
		subscribe(t, b, bus.Channel(agent), h)
		for _, typ := range []string{"QUERY", "Query", "query", "task_request", "TASK_REQUEST"} {
			payload := fmt.Sprintf(`{"id":"q-%s","type":%q,"from_agent":"outside","content":{"question":"hi"}}`, typ, typ)
			if err := raw.Publish(ctx, bus.Channel(agent), payload).Err(); err != nil {
				t.Fatal(err)
			}
			m := recv(t, got, typ)
			if !m.IsQuery() || m.IsResponse() || m.Question() != "hi" {
				t.Errorf("%s decoded as type %q", typ, m.Type)
			}
		}
		// The bus writes lowercase.
		q := bus.NewQuery("outside", agent, "hi", nil, nil, time.Minute)
		if err := b.Publish(ctx, bus.Channel(agent), q); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, got, "own query"); m.Type != "query" {
			t.Errorf("sent type %q", m.Type)
		}
	})
}
