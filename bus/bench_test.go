package bus_test

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// BenchmarkRawRoundTrip is the floor BenchmarkAsk is measured against: plain go-redis, one
// PUBLISH of a pre-encoded query, a responder goroutine that PUBLISHes a pre-encoded reply,
// and the asker receiving it. No JSON work and no bus code.
func BenchmarkRawRoundTrip(b *testing.B) {
	bustest.ForEachB(b, func(b *testing.B, url string, ctl bustest.Controller) {
		ctx := b.Context()
		query, reply, reqCh, repCh := rawExchange()

		rc := redis.NewClient(&redis.Options{Addr: ctl.Addr()})
		defer rc.Close()
		responder := rc.Subscribe(ctx, reqCh)
		asker := rc.Subscribe(ctx, repCh)
		for _, ps := range []*redis.PubSub{responder, asker} {
			if _, err := ps.Receive(ctx); err != nil { // the confirmation
				b.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := responder.ReceiveMessage(ctx); err != nil {
					return // closed
				}
				if err := rc.Publish(ctx, repCh, reply).Err(); err != nil {
					return
				}
			}
		}()
		defer func() {
			_ = responder.Close()
			<-done
			_ = asker.Close()
		}()

		b.ReportAllocs()
		for b.Loop() {
			if err := rc.Publish(ctx, reqCh, query).Err(); err != nil {
				b.Fatal(err)
			}
			if _, err := asker.ReceiveMessage(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAsk is one bus.Ask round trip: encode, publish, the target's handler decodes and
// publishes a response, the reader resolves the waiter.
func BenchmarkAsk(b *testing.B) {
	bustest.ForEachB(b, func(b *testing.B, url string, _ bustest.Controller) {
		ctx := b.Context()
		bb, err := bus.Connect(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer bb.Close()
		a, c := "node-bench-a", "node-bench-b"
		for ch, h := range map[string]bus.Handler{bus.Channel(a): ignore, bus.Channel(c): answerer(bb, c)} {
			s, err := bb.Subscribe(ctx, ch, h)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(ctx)
		}
		meta := bus.Meta("bench", "wf")
		b.ReportAllocs()
		for b.Loop() {
			q := bus.NewQuery(a, c, "ping?", nil, meta, 0)
			if _, err := bb.Ask(ctx, bus.Channel(c), q, 10*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSharedSubscriber is the raw round trip of BenchmarkRawRoundTrip with the two
// constraints the bus works under, in plain go-redis, to show what each costs: one subscriber
// connection for both channels, read by one goroutine that hands the reply to the waiting asker
// over a Go channel; and a query's handler that must not hold that connection, since in the
// engine it calls a model. The answering side runs
//   - inline: in the reader itself (what a handler that never blocks could do);
//   - goroutine: in a goroutine of its own per query;
//   - next-reader: in the reader, after it has started the next reader (what bus.Bus does).
func BenchmarkSharedSubscriber(b *testing.B) {
	bustest.ForEachB(b, func(b *testing.B, url string, ctl bustest.Controller) {
		for _, how := range []string{"inline", "goroutine", "next-reader"} {
			b.Run(how, func(b *testing.B) { benchSharedSubscriber(b, ctl.Addr(), how) })
		}
	})
}

func benchSharedSubscriber(b *testing.B, addr, how string) {
	ctx := b.Context()
	query, reply, reqCh, repCh := rawExchange()

	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ps := rc.Subscribe(ctx, reqCh, repCh)
	for range 2 {
		if _, err := ps.Receive(ctx); err != nil { // the confirmations
			b.Fatal(err)
		}
	}
	replies := make(chan struct{})
	var readers sync.WaitGroup
	answer := func() { _ = rc.Publish(ctx, repCh, reply).Err() }
	var read func()
	read = func() {
		defer readers.Done()
		for {
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				return // closed
			}
			if m.Channel == repCh {
				replies <- struct{}{}
				continue
			}
			switch how {
			case "inline":
				answer()
			case "goroutine":
				readers.Add(1)
				go func() { defer readers.Done(); answer() }()
			case "next-reader":
				readers.Add(1)
				go read()
				answer()
				return
			}
		}
	}
	readers.Add(1)
	go read()
	defer func() {
		_ = ps.Close()
		readers.Wait()
	}()

	b.ReportAllocs()
	for b.Loop() {
		if err := rc.Publish(ctx, reqCh, query).Err(); err != nil {
			b.Fatal(err)
		}
		<-replies
	}
}

// rawExchange is the pre-encoded query and reply of the raw benchmarks, and
// the channels they go on: the answerer's, then the asker's.
func rawExchange() (query, reply []byte, reqCh, repCh string) {
	q := bus.NewQuery("node-bench-a", "node-bench-b", "ping?", nil, bus.Meta("bench", "wf"), 0)
	query, _ = q.MarshalJSON()
	reply, _ = bus.NewResponse(q, "node-bench-b", "pong").MarshalJSON()
	return query, reply, bus.Channel("node-bench-b"), bus.Channel("node-bench-a")
}

// BenchmarkMessageJSON is the JSON work of one ask: a query and its response, each encoded
// once by its sender and decoded once by its receiver.
func BenchmarkMessageJSON(b *testing.B) {
	q := bus.NewQuery("node-e-asker", "node-e-answerer", "Question 1: what is the next step?",
		map[string]any{"from_node": "asker", "to_node": "answerer", "chain": []string{"asker"}},
		bus.Meta("e", "w"), 30*time.Second)
	r := bus.NewResponse(q, "node-e-answerer", "An answer, in one sentence.")
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range []bus.Message{q, r} {
			data, err := m.MarshalJSON()
			if err != nil {
				b.Fatal(err)
			}
			var back bus.Message
			if err := back.UnmarshalJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	}
}
