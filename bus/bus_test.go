package bus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// rawPSubscribe returns an independent go-redis subscriber on pattern, confirmed.
func rawPSubscribe(t *testing.T, addr, pattern string) *redis.PubSub {
	t.Helper()
	ctx := testCtx(t)
	rc := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rc.Close() })
	ps := rc.PSubscribe(ctx, pattern)
	t.Cleanup(func() { _ = ps.Close() })
	rctx, cancel := context.WithTimeout(ctx, eventWait)
	defer cancel()
	msg, err := ps.Receive(rctx)
	if err != nil {
		t.Fatalf("raw psubscribe %s: %v", pattern, err)
	}
	if s, ok := msg.(*redis.Subscription); !ok || s.Kind != "psubscribe" {
		t.Fatalf("raw psubscribe %s: got %v", pattern, msg)
	}
	return ps
}

// rawNext returns the next message of a raw subscriber, failing after eventWait.
func rawNext(t *testing.T, ps *redis.PubSub) *redis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), eventWait)
	defer cancel()
	m, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatalf("raw receive: %v", err)
	}
	return m
}

func TestWireProtocolSeenByIndependentSubscriber(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		raw := rawPSubscribe(t, ctl.Addr(), bus.ChannelPattern)
		exec := uniqueExec(t)
		student, teacher := bus.AgentID(exec, "student"), bus.AgentID(exec, "teacher")
		subscribe(t, b, bus.Channel(student), ignore)
		subscribe(t, b, bus.Channel(teacher), answerer(b, teacher))

		q := bus.NewQuery(student, teacher, "What is photosynthesis?", map[string]any{"level": "school"},
			bus.Meta(exec, "wf-1"), time.Minute)
		reply, err := b.Ask(ctx, bus.Channel(teacher), q, 10*time.Second)
		if err != nil {
			t.Fatalf("Ask: %v", err)
		}

		qm := rawNext(t, raw)
		if qm.Channel != bus.Channel(teacher) {
			t.Fatalf("first message on %s, want the query on %s", qm.Channel, bus.Channel(teacher))
		}
		wq := decodeWire(t, []byte(qm.Payload))
		if wq["id"] != q.ID || wq["type"] != "query" || wq["from_agent"] != student || wq["to_agent"] != teacher ||
			wq["reply_to"] != nil || wq["requires_response"] != true || wq["priority"] != "high" {
			t.Errorf("query on the wire = %s", qm.Payload)
		}
		if c := wq["content"].(map[string]any); c["question"] != "What is photosynthesis?" || c["context"] == nil {
			t.Errorf("query content = %v", c)
		}
		if md := wq["metadata"].(map[string]any); md["execution_id"] != exec || md["workflow_id"] != "wf-1" {
			t.Errorf("query metadata = %v", md)
		}

		rm := rawNext(t, raw)
		if rm.Channel != bus.Channel(student) {
			t.Fatalf("second message on %s, want the response on %s", rm.Channel, bus.Channel(student))
		}
		wr := decodeWire(t, []byte(rm.Payload))
		if wr["type"] != "response" || wr["reply_to"] != q.ID || wr["from_agent"] != teacher || wr["to_agent"] != student {
			t.Errorf("response on the wire = %s", rm.Payload)
		}
		if c := wr["content"].(map[string]any); c["success"] != true || c["response"] != "answer from "+teacher+": What is photosynthesis?" {
			t.Errorf("response content = %v", c)
		}
		if wr["id"] != reply.ID {
			t.Errorf("Ask returned %s, the wire carried %s", reply.ID, wr["id"])
		}
	})
}

func TestAskAnswer(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)
		a, c := bus.AgentID(exec, "a"), bus.AgentID(exec, "b")
		subscribe(t, b, bus.Channel(a), ignore)
		subscribe(t, b, bus.Channel(c), answerer(b, c))

		q := bus.NewQuery(a, c, "2+2?", nil, bus.Meta(exec, "wf"), 0)
		reply, err := b.Ask(ctx, bus.Channel(c), q, 10*time.Second)
		if err != nil {
			t.Fatalf("Ask: %v", err)
		}
		text, err := reply.Answer()
		if err != nil || text != "answer from "+c+": 2+2?" {
			t.Errorf("Answer = %q, %v", text, err)
		}
		if reply.ReplyToID() != q.ID || reply.FromAgent != c || reply.ToAgent != a || reply.ExecutionID() != exec {
			t.Errorf("reply = %+v", reply)
		}
		if n := b.Describe().PendingAsks; n != 0 {
			t.Errorf("PendingAsks = %d after the ask, want 0", n)
		}

		// Asks nest: the target asks a third agent before it answers.
		expert := bus.AgentID(exec, "expert")
		subscribe(t, b, bus.Channel(expert), answerer(b, expert))
		mid := bus.AgentID(exec, "mid")
		subscribe(t, b, bus.Channel(mid), func(ctx context.Context, m bus.Message) {
			sub, err := b.Ask(ctx, bus.Channel(expert), bus.NewQuery(mid, expert, "inner", nil, nil, 0), 10*time.Second)
			text, _ := sub.Answer()
			if err != nil {
				text = err.Error()
			}
			_ = b.Publish(ctx, bus.Channel(m.FromAgent), bus.NewResponse(m, mid, "via "+text))
		})
		nested, err := b.Ask(ctx, bus.Channel(mid), bus.NewQuery(a, mid, "outer", nil, nil, 0), 10*time.Second)
		if text, _ := nested.Answer(); err != nil || text != "via answer from "+expert+": inner" {
			t.Errorf("nested ask = %q, %v", text, err)
		}

		// The asker must listen on its own channel.
		stranger := bus.AgentID(exec, "stranger")
		_, err = b.Ask(ctx, bus.Channel(c), bus.NewQuery(stranger, c, "?", nil, nil, 0), time.Second)
		if !errors.Is(err, bus.ErrNotSubscribed) {
			t.Errorf("Ask from an unsubscribed agent = %v, want ErrNotSubscribed", err)
		}
	})
}

func TestDuplicateResponseDropped(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, logs := connect(t, url)
		exec := uniqueExec(t)
		a, c := bus.AgentID(exec, "a"), bus.AgentID(exec, "b")
		toA, gotA := collector(10)
		subscribe(t, b, bus.Channel(a), toA)

		sent := make(chan [2]string, 1)
		subscribe(t, b, bus.Channel(c), func(ctx context.Context, m bus.Message) {
			r1 := bus.NewResponse(m, c, "first")
			r2 := bus.NewResponse(m, c, "second")
			_ = b.Publish(ctx, bus.Channel(a), r1)
			_ = b.Publish(ctx, bus.Channel(a), r2)
			sent <- [2]string{r1.ID, r2.ID}
		})

		q := bus.NewQuery(a, c, "once?", nil, nil, 0)
		reply, err := b.Ask(ctx, bus.Channel(c), q, 10*time.Second)
		if err != nil {
			t.Fatalf("Ask: %v", err)
		}
		ids := recv(t, sent, "both responses published")
		if reply.ID != ids[0] {
			t.Errorf("Ask returned %s, want the first response %s", reply.ID, ids[0])
		}
		// Messages of one connection are read in order: once the sentinel reached A's handler,
		// the reader has dealt with the duplicate.
		if err := b.Publish(ctx, bus.Channel(a), notification(c, a, "sentinel")); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, gotA, "sentinel"); m.ID != "note:sentinel" {
			t.Fatalf("A's handler got %s (%s), want only the sentinel", m.ID, m.Type)
		}
		if err := b.Close(); err != nil { // waits for every handler goroutine
			t.Fatal(err)
		}
		if len(gotA) != 0 {
			t.Errorf("A's handler got %d more messages; the duplicate response leaked to it", len(gotA))
		}
		if logs.count("bus: dropped late or duplicate response") != 1 {
			t.Errorf("duplicate not logged as dropped:\n%s", logs)
		}
	})
}

func TestAskTimeoutResendsOnce(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)
		a, c := bus.AgentID(exec, "a"), bus.AgentID(exec, "silent")
		subscribe(t, b, bus.Channel(a), ignore)
		raw := rawPSubscribe(t, ctl.Addr(), bus.Channel(c))
		count, got := collector(10) // counts, never answers
		subscribe(t, b, bus.Channel(c), count)

		q := bus.NewQuery(a, c, "anyone?", nil, nil, 0)
		_, err := b.Ask(ctx, bus.Channel(c), q, 400*time.Millisecond)
		if !errors.Is(err, bus.ErrAskTimeout) {
			t.Fatalf("Ask = %v, want ErrAskTimeout", err)
		}
		if n := b.Describe().PendingAsks; n != 0 {
			t.Errorf("PendingAsks = %d after the timeout, want 0 (waiter not removed)", n)
		}
		for i := range 2 {
			if m := recv(t, got, fmt.Sprintf("query copy %d", i+1)); m.ID != q.ID {
				t.Errorf("copy %d has id %s, want %s", i+1, m.ID, q.ID)
			}
		}
		// Count publications exactly on an independent connection, up to a sentinel.
		if err := b.Publish(ctx, bus.Channel(c), notification(a, c, "sentinel")); err != nil {
			t.Fatal(err)
		}
		queries := 0
		for m := rawNext(t, raw); !strings.Contains(m.Payload, "note:sentinel"); m = rawNext(t, raw) {
			if strings.Contains(m.Payload, q.ID) {
				queries++
			}
		}
		if queries != 2 {
			t.Errorf("query published %d times, want 2 (first try and one resend)", queries)
		}
	})
}

func TestConcurrentAsks(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)
		var askers, responders []string
		for i := range 4 {
			askers = append(askers, bus.AgentID(exec, fmt.Sprintf("asker%d", i)))
			responders = append(responders, bus.AgentID(exec, fmt.Sprintf("responder%d", i)))
			subscribe(t, b, bus.Channel(askers[i]), ignore)
			subscribe(t, b, bus.Channel(responders[i]), answerer(b, responders[i]))
		}

		const n = 200
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				from, to := askers[i%4], responders[(i/4)%4]
				question := fmt.Sprintf("question %d", i)
				q := bus.NewQuery(from, to, question, nil, bus.Meta(exec, "wf"), 0)
				reply, err := b.Ask(ctx, bus.Channel(to), q, 20*time.Second)
				if err != nil {
					errs <- fmt.Errorf("ask %d: %w", i, err)
					return
				}
				text, _ := reply.Answer()
				if want := "answer from " + to + ": " + question; text != want || reply.ReplyToID() != q.ID || reply.ToAgent != from {
					errs <- fmt.Errorf("ask %d got %q (reply_to %s, to %s), want %q", i, text, reply.ReplyToID(), reply.ToAgent, want)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if p := b.Describe().PendingAsks; p != 0 {
			t.Errorf("PendingAsks = %d, want 0", p)
		}
	})
}

func TestSlowHandlerDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)
		slow, fast := bus.AgentID(exec, "slow"), bus.AgentID(exec, "fast")

		release := make(chan struct{})
		defer close(release)
		entered := make(chan string, 2)
		subscribe(t, b, bus.Channel(slow), func(ctx context.Context, m bus.Message) {
			entered <- m.ID
			select { // stuck until the test is done with it
			case <-release:
			case <-ctx.Done():
			}
		})
		toFast, gotFast := collector(1)
		subscribe(t, b, bus.Channel(fast), toFast)

		if err := b.Publish(ctx, bus.Channel(slow), notification(fast, slow, "one")); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "slow handler entered")
		if err := b.Publish(ctx, bus.Channel(fast), notification(slow, fast, "hi")); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, gotFast, "fast agent's message while the slow handler is stuck"); m.ID != "note:hi" {
			t.Errorf("fast agent got %s", m.ID)
		}
		// The same agent's next message does not wait for its stuck call either.
		if err := b.Publish(ctx, bus.Channel(slow), notification(fast, slow, "two")); err != nil {
			t.Fatal(err)
		}
		if id := recv(t, entered, "second message to the stuck agent"); id != "note:two" {
			t.Errorf("second call got %s", id)
		}
	})
}

func TestBroadcast(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)
		type got struct {
			agent string
			m     bus.Message
		}
		gotCh := make(chan got, 10)
		agents := []string{bus.AgentID(exec, "a"), bus.AgentID(exec, "b"), bus.AgentID(exec, "c")}
		for _, ag := range agents {
			subscribe(t, b, bus.Channel(ag), ignore)
			subscribe(t, b, bus.BroadcastChannel, func(_ context.Context, m bus.Message) {
				m.Content["seen_by"] = ag // each handler has its own maps
				gotCh <- got{ag, m}
			})
		}
		if info := b.Describe(); info.Channels != 4 || info.Subscriptions != 6 {
			t.Errorf("Describe = %+v, want 4 channels and 6 subscriptions", info)
		}
		bc := bus.NewBroadcast(agents[0], "Session finished", []string{"ai-processor"}, bus.Meta(exec, "wf"), time.Minute)
		if err := b.Publish(ctx, bus.BroadcastChannel, bc); err != nil {
			t.Fatal(err)
		}
		var seen []string
		for range agents {
			g := recv(t, gotCh, "broadcast")
			if g.m.ID != bc.ID || g.m.Type != bus.TypeBroadcast || g.m.ToAgent != "" || g.m.BroadcastText() != "Session finished" ||
				!slices.Equal(g.m.TargetTypes(), []string{"ai-processor"}) || g.m.ExecutionID() != exec {
				t.Errorf("%s got %+v", g.agent, g.m)
			}
			if g.m.Content["seen_by"] != g.agent {
				t.Errorf("handlers share content maps: %s sees %v", g.agent, g.m.Content["seen_by"])
			}
			seen = append(seen, g.agent)
		}
		slices.Sort(seen)
		if !slices.Equal(seen, agents) {
			t.Errorf("broadcast reached %v, want %v", seen, agents)
		}
	})
}

func TestExpiredMessageDropped(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, logs := connect(t, url)
		exec := uniqueExec(t)
		a := bus.AgentID(exec, "a")
		h, got := collector(10)
		subscribe(t, b, bus.Channel(a), h)

		old := notification("x", a, "stale")
		past := time.Now().Add(-time.Second)
		old.ExpiresAt = &past
		if err := b.Publish(ctx, bus.Channel(a), old); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, bus.Channel(a), notification("x", a, "sentinel")); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, got, "sentinel"); m.ID != "note:sentinel" {
			t.Errorf("handler got %s, want the sentinel only", m.ID)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("handler got %d more messages; the expired one was delivered", len(got))
		}
		if logs.count("bus: dropped expired message") != 1 {
			t.Errorf("expired message not logged as dropped:\n%s", logs)
		}
	})
}

func TestMalformedPayloadSurvives(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		ctx := testCtx(t)
		b, logs := connect(t, url)
		exec := uniqueExec(t)
		a := bus.AgentID(exec, "a")
		h, got := collector(10)
		subscribe(t, b, bus.Channel(a), h)

		rc := redis.NewClient(&redis.Options{Addr: ctl.Addr()})
		defer rc.Close()
		bad := []string{"not json", "", "[1,2]", `{"id":5}`, `{"id":"x","content":"text"}`, `{}`, `{"id":"x","type":"query"}`,
			`{"id":"x","type":"response","from_agent":"y","timestamp":"never"}`}
		for _, p := range bad {
			if err := rc.Publish(ctx, bus.Channel(a), p).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Publish(ctx, bus.Channel(a), notification("x", a, "sentinel")); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, got, "sentinel after malformed payloads"); m.ID != "note:sentinel" {
			t.Errorf("handler got %s", m.ID)
		}
		if !b.Healthy() {
			t.Error("bus unhealthy after malformed payloads")
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("handler got %d malformed messages", len(got))
		}
		if n := logs.count("bus: dropped malformed message"); n != len(bad) {
			t.Errorf("%d malformed payloads logged, want %d:\n%s", n, len(bad), logs)
		}
	})
}

func TestNoLeakedChannels(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)

		const agents = 20
		subs := make([]bus.Subscription, 0, 2*agents)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range agents {
			wg.Go(func() {
				ag := bus.AgentID(exec, fmt.Sprintf("n%02d", i))
				s1, err1 := b.Subscribe(ctx, bus.Channel(ag), ignore)
				s2, err2 := b.Subscribe(ctx, bus.BroadcastChannel, ignore)
				if err := errors.Join(err1, err2); err != nil {
					t.Error(err)
				}
				mu.Lock()
				subs = append(subs, s1, s2)
				mu.Unlock()
			})
		}
		wg.Wait()
		active, err := b.ActiveChannels(ctx, "agent:messages:node-*")
		if err != nil {
			t.Fatal(err)
		}
		if len(active) != agents {
			t.Errorf("active agent channels = %d (%v), want %d", len(active), active, agents)
		}

		// Subscribe and close one channel from many goroutines at once while a long-lived
		// subscription holds it: it must stay subscribed.
		shared := bus.Channel(bus.AgentID(exec, "shared"))
		h, got := collector(1)
		keep, err := b.Subscribe(ctx, shared, h)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			wg.Go(func() {
				s, err := b.Subscribe(ctx, shared, ignore)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Close(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if err := b.Publish(ctx, shared, notification("x", "shared", "still there")); err != nil {
			t.Fatal(err)
		}
		recv(t, got, "message on the shared channel after the churn")
		subs = append(subs, keep)

		for _, s := range subs {
			wg.Go(func() {
				if err := s.Close(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, pattern := range []string{"agent:messages:node-*", bus.ChannelPattern} {
			active, err := b.ActiveChannels(ctx, pattern)
			if err != nil {
				t.Fatal(err)
			}
			if len(active) != 0 {
				t.Errorf("after closing every subscription, %s still has %v", pattern, active)
			}
		}
		if info := b.Describe(); info.Channels != 0 || info.Subscriptions != 0 {
			t.Errorf("Describe = %+v, want no channels", info)
		}
	})
}

func TestMultipleHandlersOnOneChannel(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		ch := bus.Channel(bus.AgentID(uniqueExec(t), "twin"))
		h1, got1 := collector(10)
		h2, got2 := collector(10)
		s1 := subscribe(t, b, ch, h1)
		subscribe(t, b, ch, h2)
		if err := b.Publish(ctx, ch, notification("x", "twin", "both")); err != nil {
			t.Fatal(err)
		}
		recv(t, got1, "first handler")
		recv(t, got2, "second handler")

		if err := s1.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s1.Close(ctx); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if active, _ := b.ActiveChannels(ctx, ch); !slices.Equal(active, []string{ch}) {
			t.Errorf("closing one of two handlers unsubscribed the channel: %v", active)
		}
		if err := b.Publish(ctx, ch, notification("x", "twin", "one")); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, got2, "remaining handler"); m.ID != "note:one" {
			t.Errorf("remaining handler got %s", m.ID)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if len(got1) != 0 {
			t.Errorf("closed handler still called")
		}
	})
}

func TestHandlerPanicRecovered(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, logs := connect(t, url)
		ch := bus.Channel(bus.AgentID(uniqueExec(t), "p"))
		got := make(chan string, 2)
		subscribe(t, b, ch, func(_ context.Context, m bus.Message) {
			got <- m.ID
			if m.ID == "note:boom" {
				panic("boom")
			}
		})
		for _, text := range []string{"boom", "after"} {
			if err := b.Publish(ctx, ch, notification("x", "p", text)); err != nil {
				t.Fatal(err)
			}
		}
		recv(t, got, "first")
		recv(t, got, "second")
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if logs.count("bus: handler panicked") != 1 {
			t.Errorf("panic not logged:\n%s", logs)
		}
	})
}

func TestCloseWaitsForHandlersAndFailsAsks(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)
		a, c := bus.AgentID(exec, "a"), bus.AgentID(exec, "busy")
		subscribe(t, b, bus.Channel(a), ignore)
		entered := make(chan struct{}, 1)
		var finished atomic.Bool
		subscribe(t, b, bus.Channel(c), func(ctx context.Context, m bus.Message) {
			entered <- struct{}{}
			<-ctx.Done() // a long call that honours cancellation
			finished.Store(true)
		})

		askErr := make(chan error, 1)
		go func() {
			_, err := b.Ask(ctx, bus.Channel(c), bus.NewQuery(a, c, "?", nil, nil, 0), 30*time.Second)
			askErr <- err
		}()
		recv(t, entered, "query reached the busy agent")
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if !finished.Load() {
			t.Error("Close returned before the handler did")
		}
		if err := recv(t, askErr, "ask result"); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Ask across Close = %v, want ErrClosed", err)
		}
		if _, err := b.Subscribe(ctx, bus.Channel(a), ignore); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
		}
		if b.Healthy() {
			t.Error("closed bus reports healthy")
		}
	})
}

func TestMonitor(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)
		a, c := bus.AgentID(exec, "a"), bus.AgentID(exec, "b")
		subscribe(t, b, bus.Channel(a), ignore)
		subscribe(t, b, bus.Channel(c), answerer(b, c))

		type seen struct{ channel, payload string }
		seenCh := make(chan seen, 100)
		mctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- b.Monitor(mctx, bus.ChannelPattern, func(channel string, payload []byte) {
				seenCh <- seen{channel, string(payload)}
			})
		}()

		// Monitor has no "ready" signal: publish a probe until it shows up.
		probe := bus.Channel(bus.AgentID(exec, "probe"))
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		deadline := time.NewTimer(eventWait)
		defer deadline.Stop()
	waitReady:
		for {
			if err := b.Publish(ctx, probe, notification("x", "probe", "probe")); err != nil {
				t.Fatal(err)
			}
			select {
			case <-seenCh:
				break waitReady
			case <-tick.C:
			case <-deadline.C:
				t.Fatal("monitor never saw a message")
			}
		}

		q := bus.NewQuery(a, c, "watched?", nil, nil, 0)
		if _, err := b.Ask(ctx, bus.Channel(c), q, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		var channels []string
		for len(channels) < 2 {
			s := recv(t, seenCh, "monitored message")
			if s.channel == probe {
				continue
			}
			channels = append(channels, s.channel)
			decodeWire(t, []byte(s.payload))
		}
		if !slices.Equal(channels, []string{bus.Channel(c), bus.Channel(a)}) {
			t.Errorf("monitor saw %v, want the query then the response", channels)
		}
		stop()
		if err := recv(t, done, "Monitor to return"); err != nil {
			t.Errorf("Monitor = %v, want nil after ctx ended", err)
		}

		// Close ends a running Monitor.
		go func() { done <- b.Monitor(ctx, bus.ChannelPattern, func(string, []byte) {}) }()
		// It may return before or after it confirmed; either way Close must end it.
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := recv(t, done, "Monitor to end on Close"); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Monitor across Close = %v, want ErrClosed", err)
		}
	})
}

func TestConnectWhileRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	logger, logs := newLogger(t)
	b, err := bus.Connect(testCtx(t), "redis://"+addr, logger)
	if err != nil {
		t.Fatalf("Connect with Redis down = %v, want success", err)
	}
	defer b.Close()

	pctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := b.Ping(pctx); err == nil {
		t.Fatal("Ping succeeded with nothing listening")
	}
	if b.Healthy() {
		t.Error("Healthy with Redis down")
	}
	sctx, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	if _, err := b.Subscribe(sctx, bus.Channel("node-x-y"), ignore); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Subscribe with Redis down = %v, want DeadlineExceeded", err)
	}
	if info := b.Describe(); info.Addr != addr || info.Channels != 0 || info.Healthy {
		t.Errorf("Describe = %+v", info)
	}

	// Redis comes up later: the bus connects by itself.
	e, err := bus.StartEmbedded(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Addr() != addr {
		t.Skipf("port %s was taken meanwhile", addr)
	}
	wctx, cancel3 := context.WithTimeout(t.Context(), eventWait)
	defer cancel3()
	if err := b.WaitHealthy(wctx); err != nil {
		t.Fatalf("bus did not connect once Redis came up: %v", err)
	}
	h, got := collector(1)
	ch := bus.Channel("node-x-late")
	if _, err := b.Subscribe(wctx, ch, h); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(wctx, ch, notification("x", "late", "hello")); err != nil {
		t.Fatal(err)
	}
	recv(t, got, "message after Redis came up")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if logs.count("bus: redis pub/sub connection down, reconnecting") != 1 ||
		logs.count("bus: redis pub/sub connection restored") != 1 {
		t.Errorf("outage should be logged once and its end once:\n%s", logs)
	}
}

func TestDescribeMasksPassword(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://user:s3cret@127.0.0.1:6390/3", "redis://user:xxxxx@127.0.0.1:6390/3"},
		{"redis://:s3cret@localhost:6379", "redis://:xxxxx@localhost:6379/0"},
		{"rediss://127.0.0.1:6390", "rediss://127.0.0.1:6390/0"},
	} {
		b, err := bus.Connect(t.Context(), tc.url, nil)
		if err != nil {
			t.Fatalf("Connect %s: %v", tc.url, err)
		}
		info := b.Describe()
		if info.URL != tc.want || strings.Contains(fmt.Sprint(info), "s3cret") {
			t.Errorf("Describe(%s) = %+v, want URL %s", tc.url, info, tc.want)
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}
	_, err := bus.Connect(t.Context(), "redis://user:s3cret@[::1/0", nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Connect with a bad URL = %v, want an error without the password", err)
	}
	if _, err := bus.Connect(t.Context(), "http://example.com", nil); err == nil {
		t.Error("Connect accepted http://")
	}
}

func TestStartEmbeddedFallsBack(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	logger, logs := newLogger(t)
	e, err := bus.StartEmbedded(ln.Addr().String(), logger)
	if err != nil {
		t.Fatalf("StartEmbedded on a taken address = %v, want a fallback", err)
	}
	defer e.Close()
	if e.Addr() == ln.Addr().String() || !strings.HasPrefix(e.Addr(), "127.0.0.1:") || e.URL() != "redis://"+e.Addr() {
		t.Errorf("fallback addr %s, url %s", e.Addr(), e.URL())
	}
	if logs.count("embedded redis: address in use, listening on a free port instead") != 1 {
		t.Errorf("fallback not logged:\n%s", logs)
	}
	if _, err := bus.StartEmbedded("not-an-address", nil); err == nil {
		t.Error("StartEmbedded accepted an invalid address")
	}
}
