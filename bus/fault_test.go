package bus_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// TestConnectionLoss kills the server while an Ask waits for a reply that will never come: the
// Ask must fail with ErrConnectionLost long before its 30 s timeout (the test's own wait is
// eventWait), and once the server is back the bus must re-subscribe by itself and work again.
func TestConnectionLoss(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		b, logs := connect(t, url)
		exec := uniqueExec(t)
		a, c := bus.AgentID(exec, "asker"), bus.AgentID(exec, "target")
		toA, gotA := collector(10)
		subscribe(t, b, bus.Channel(a), toA)
		entered := make(chan string, 10)
		subscribe(t, b, bus.Channel(c), func(ctx context.Context, m bus.Message) {
			if m.Type != bus.TypeQuery {
				return
			}
			entered <- m.Question()
			if m.Question() == "hang" {
				<-ctx.Done() // never answers
				return
			}
			_ = b.Publish(ctx, bus.Channel(m.FromAgent), bus.NewResponse(m, c, "back: "+m.Question()))
		})

		gone := subscribe(t, b, bus.Channel(bus.AgentID(exec, "gone")), ignore)

		askErr := make(chan error, 1)
		go func() {
			_, err := b.Ask(ctx, bus.Channel(c), bus.NewQuery(a, c, "hang", nil, nil, 0), 30*time.Second)
			askErr <- err
		}()
		recv(t, entered, "the query to reach the target")
		ctl.Kill()
		err := recv(t, askErr, "the ask to fail after the kill")
		if !errors.Is(err, bus.ErrConnectionLost) {
			t.Fatalf("Ask after kill = %v, want ErrConnectionLost", err)
		}
		if b.Healthy() {
			t.Error("Healthy with the server killed")
		}
		if n := b.Describe().PendingAsks; n != 0 {
			t.Errorf("PendingAsks = %d after the failure", n)
		}
		// While the server is down, a new Ask fails at once instead of waiting 30 s.
		_, err = b.Ask(ctx, bus.Channel(c), bus.NewQuery(a, c, "down?", nil, nil, 0), 30*time.Second)
		if err == nil {
			t.Error("Ask with the server down succeeded")
		}

		// Closing a subscription while the server is down needs no confirmation, and the
		// channel must not come back with the connection.
		if err := gone.Close(ctx); err != nil {
			t.Errorf("Subscription.Close with the server down: %v", err)
		}

		ctl.Restart()
		wctx, cancel := context.WithTimeout(ctx, eventWait)
		defer cancel()
		if err := b.WaitHealthy(wctx); err != nil {
			t.Fatalf("bus did not recover after restart: %v", err)
		}
		// The restarted server knows the channels only because the bus re-subscribed them, and
		// only those still registered.
		active, err := b.ActiveChannels(ctx, "agent:messages:node-*")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{bus.Channel(a), bus.Channel(c)}; !slices.Equal(active, want) {
			t.Errorf("after restart active channels = %v, want %v", active, want)
		}
		if err := b.Publish(ctx, bus.Channel(a), notification(c, a, "after restart")); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, gotA, "a message after the restart"); m.ID != "note:after restart" {
			t.Errorf("got %s", m.ID)
		}
		reply, err := b.Ask(ctx, bus.Channel(c), bus.NewQuery(a, c, "again", nil, nil, 0), 10*time.Second)
		if err != nil {
			t.Fatalf("Ask after restart: %v", err)
		}
		if text, _ := reply.Answer(); text != "back: again" {
			t.Errorf("answer after restart = %q", text)
		}
		if logs.count("bus: redis pub/sub connection down, reconnecting") != 1 ||
			logs.count("bus: redis pub/sub connection restored") != 1 {
			t.Errorf("outage should be logged once and its end once:\n%s", logs)
		}
	})
}
