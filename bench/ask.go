package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/internal/redisserver"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// asks measures the ask figures: the three floors and the engine in simple
// mode and in pubsub mode on miniredis and on redis-server, alternating in
// rounds (the first round warms up and is not counted).
func (b *bencher) asks(ctx context.Context) error {
	mini, err := bus.StartEmbedded("127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	defer mini.Close()
	rdir := filepath.Join(b.dir, "redis")
	if err := os.MkdirAll(rdir, 0o700); err != nil {
		return err
	}
	rs, err := redisserver.Start(rdir)
	if err != nil {
		return err
	}
	defer func() { _ = rs.Kill() }()
	busMini, err := connectBus(ctx, mini.URL())
	if err != nil {
		return err
	}
	defer busMini.Close()
	busRedis, err := connectBus(ctx, rs.URL())
	if err != nil {
		return err
	}
	defer busRedis.Close()

	eng, err := b.openEngine(ctx, "ask")
	if err != nil {
		return err
	}
	defer eng.close() // first: executors stop before the buses close
	w, err := eng.store(ctx, askDoc(b.sc.asksPerRun, workflow.ModeSimple))
	if err != nil {
		return err
	}
	type engineMode struct {
		name string
		mode string
		ex   *executor.Executor
		rec  *arrivals
	}
	newMode := func(name, mode string, ps executor.PubSub) engineMode {
		rec := &arrivals{purpose: llm.PurposeAnswer}
		return engineMode{name, mode, eng.executor(b, &benchModel{rec: rec}, ps), rec}
	}
	modes := []engineMode{
		newMode("ask_simple", workflow.ModeSimple, nil),
		newMode("ask_pubsub_miniredis", workflow.ModePubSub, busMini),
		newMode("ask_pubsub_redis", workflow.ModePubSub, busRedis),
	}

	floor := newChanPair()
	defer floor.close()
	rawMini, err := newRawPair(ctx, mini.Addr())
	if err != nil {
		return err
	}
	defer rawMini.close()
	rawRedis, err := newRawPair(ctx, rs.Addr())
	if err != nil {
		return err
	}
	defer rawRedis.close()

	busFloorMini, err := newBusPair(ctx, busMini)
	if err != nil {
		return err
	}
	defer busFloorMini.close()
	busFloorRedis, err := newBusPair(ctx, busRedis)
	if err != nil {
		return err
	}
	defer busFloorRedis.close()

	samples := map[string][]time.Duration{}
	perRound := b.sc.askRuns * (b.sc.asksPerRun - 1)
	for round := 0; round <= b.sc.askRounds; round++ {
		keep := func(name string, ds []time.Duration) {
			if round > 0 {
				samples[name] = append(samples[name], ds...)
			}
		}
		keep("ask_inprocess_floor", floor.roundTrips(perRound))
		for i, m := range modes {
			switch i {
			case 1:
				ds, err := rawMini.roundTrips(ctx, perRound)
				if err != nil {
					return fmt.Errorf("raw miniredis: %w", err)
				}
				keep("ask_raw_miniredis", ds)
				if ds, err = busFloorMini.roundTrips(ctx, perRound); err != nil {
					return fmt.Errorf("bus miniredis: %w", err)
				}
				keep("ask_bus_miniredis", ds)
			case 2:
				ds, err := rawRedis.roundTrips(ctx, perRound)
				if err != nil {
					return fmt.Errorf("raw redis-server: %w", err)
				}
				keep("ask_raw_redis", ds)
				if ds, err = busFloorRedis.roundTrips(ctx, perRound); err != nil {
					return fmt.Errorf("bus redis-server: %w", err)
				}
				keep("ask_bus_redis", ds)
			}
			ds, err := engineAsks(ctx, eng, m.ex, m.rec, w, m.mode, b.sc.askRuns)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			keep(m.name, ds)
		}
	}
	for name, ds := range samples {
		b.res.set(name+"_p50_us", us(percentile(ds, 50)))
		b.res.set(name+"_p99_us", us(percentile(ds, 99)))
	}
	return nil
}

func connectBus(ctx context.Context, url string) (*bus.Bus, error) {
	bb, err := bus.Connect(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := bb.WaitHealthy(wctx); err != nil {
		bb.Close()
		return nil, err
	}
	return bb, nil
}

// engineAsks runs w (its asker asks the answerer again and again) runs
// times in mode and returns the time between consecutive questions reaching
// the answerer's model: one whole ask each.
func engineAsks(ctx context.Context, eng *engine, ex *executor.Executor, rec *arrivals, w *workflow.Workflow, mode string, runs int) ([]time.Duration, error) {
	var out []time.Duration
	for range runs {
		rec.take()
		r, err := ex.Start(w, executor.Options{Mode: mode})
		if err != nil {
			return nil, err
		}
		if status, err := r.Wait(ctx); err != nil || status != workflow.ExecSuccess {
			return nil, fmt.Errorf("execution %s ended %q: %v", r.ID, status, err)
		}
		ts := rec.take()
		for i := 1; i < len(ts); i++ {
			out = append(out, ts[i].Sub(ts[i-1]))
		}
		if mode == workflow.ModePubSub {
			x, err := eng.db.GetExecution(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			if x.Mode != workflow.ModePubSub {
				return nil, fmt.Errorf("execution %s ran in %s mode: %s", r.ID, x.Mode, x.FallbackReason)
			}
		}
	}
	return out, nil
}

// chanPair is the in-process floor: the wire message JSON-encoded, sent over a
// Go channel to a responder goroutine that decodes it and sends back an
// encoded response, which the asker decodes.
type chanPair struct {
	req, rep chan []byte
}

func newChanPair() *chanPair {
	p := &chanPair{req: make(chan []byte), rep: make(chan []byte)}
	go func() {
		for data := range p.req {
			var q bus.Message
			if err := q.UnmarshalJSON(data); err != nil {
				panic(err) // our own encoding
			}
			out, err := bus.NewResponse(q, q.ToAgent, answerText).MarshalJSON()
			if err != nil {
				panic(err)
			}
			p.rep <- out
		}
	}()
	return p
}

func (p *chanPair) close() { close(p.req) }

func (p *chanPair) roundTrips(n int) []time.Duration {
	from, to := bus.AgentID("bench", "asker"), bus.AgentID("bench", "answerer")
	meta := bus.Meta("bench", "wf")
	qctx := map[string]any{"from_node": "asker", "to_node": "answerer", "chain": []string{"asker"}}
	out := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		data, err := bus.NewQuery(from, to, "Question 1: what is the next step?", qctx, meta, 30*time.Second).MarshalJSON()
		if err != nil {
			panic(err)
		}
		p.req <- data
		var r bus.Message
		if err := r.UnmarshalJSON(<-p.rep); err != nil {
			panic(err)
		}
		if _, err := r.Answer(); err != nil {
			panic(err)
		}
		out = append(out, time.Since(t))
	}
	return out
}

// rawPair is the Redis floor: plain go-redis, a pre-encoded query PUBLISHed
// to a subscriber that PUBLISHes a pre-encoded reply to the asker's channel.
// No JSON work and no bus code.
type rawPair struct {
	rc               *redis.Client
	asker            *redis.PubSub
	query            []byte
	reqChan, repChan string
	// stopResponder ends the responder, in this process or another.
	stopResponder func()
}

func newRawPair(ctx context.Context, addr string) (*rawPair, error) {
	from, to := bus.AgentID("raw", "asker"), bus.AgentID("raw", "answerer")
	q := bus.NewQuery(from, to, "Question 1: what is the next step?", nil, bus.Meta("raw", "wf"), 30*time.Second)
	query, _ := q.MarshalJSON()
	reply, _ := bus.NewResponse(q, to, answerText).MarshalJSON()
	p := &rawPair{
		rc:      redis.NewClient(&redis.Options{Addr: addr}),
		query:   query,
		reqChan: bus.Channel(to), repChan: bus.Channel(from),
	}
	responder := p.rc.Subscribe(ctx, p.reqChan)
	p.asker = p.rc.Subscribe(ctx, p.repChan)
	for _, ps := range []*redis.PubSub{responder, p.asker} {
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			_ = responder.Close()
			_ = p.asker.Close()
			_ = p.rc.Close()
			return nil, err
		}
	}
	finished := make(chan struct{})
	p.stopResponder = func() {
		_ = responder.Close()
		<-finished
	}
	go func() {
		defer close(finished)
		for {
			if _, err := responder.ReceiveMessage(context.Background()); err != nil {
				return // closed
			}
			if err := p.rc.Publish(context.Background(), p.repChan, reply).Err(); err != nil {
				return
			}
		}
	}()
	return p, nil
}

func (p *rawPair) roundTrips(ctx context.Context, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := p.rc.Publish(ctx, p.reqChan, p.query).Err(); err != nil {
			return nil, err
		}
		if _, err := p.asker.ReceiveMessage(ctx); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
	}
	return out, nil
}

func (p *rawPair) close() {
	p.stopResponder()
	if p.asker != nil {
		_ = p.asker.Close()
	}
	_ = p.rc.Close()
}

// busPair is bus.Ask alone on the same Redis: the asker's and the
// answerer's channels subscribed on the bus the engine uses, the answerer's
// handler publishing a response at once. Between the raw floor and the
// engine, it shows which part of an ask is the bus and which the engine.
type busPair struct {
	b    *bus.Bus
	subs []bus.Subscription
	from string
	to   string
}

func newBusPair(ctx context.Context, b *bus.Bus) (*busPair, error) {
	p := &busPair{b: b, from: bus.AgentID("busfloor", "asker"), to: bus.AgentID("busfloor", "answerer")}
	answer := func(ctx context.Context, m bus.Message) {
		if m.Type == bus.TypeQuery {
			_ = b.Publish(ctx, bus.Channel(m.FromAgent), bus.NewResponse(m, p.to, answerText))
		}
	}
	for ch, h := range map[string]bus.Handler{bus.Channel(p.from): func(context.Context, bus.Message) {}, bus.Channel(p.to): answer} {
		s, err := b.Subscribe(ctx, ch, h)
		if err != nil {
			p.close()
			return nil, err
		}
		p.subs = append(p.subs, s)
	}
	return p, nil
}

func (p *busPair) roundTrips(ctx context.Context, n int) ([]time.Duration, error) {
	meta := bus.Meta("busfloor", "wf")
	qctx := map[string]any{"from_node": "asker", "to_node": "answerer", "chain": []string{"asker"}}
	out := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		q := bus.NewQuery(p.from, p.to, "Question 1: what is the next step?", qctx, meta, 30*time.Second)
		r, err := p.b.Ask(ctx, bus.Channel(p.to), q, 30*time.Second)
		if err != nil {
			return nil, err
		}
		if _, err := r.Answer(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
	}
	return out, nil
}

func (p *busPair) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range p.subs {
		_ = s.Close(ctx)
	}
}
