package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrConnectionLost is wrapped by the error of every [Bus.Ask] in flight when the shared
// subscriber connection breaks (its replies could no longer arrive), and of Asks started while
// the connection is still down. Test with errors.Is.
var ErrConnectionLost = errors.New("bus: redis pub/sub connection lost")

// ErrClosed is wrapped by errors of calls made on, or interrupted by, a closed [Bus].
var ErrClosed = errors.New("bus: closed")

// ErrAskTimeout is wrapped by the error of a [Bus.Ask] that got no reply within its timeout.
var ErrAskTimeout = errors.New("bus: no reply before the ask timeout")

// ErrNotSubscribed is wrapped by the error of a [Bus.Ask] whose asker (q.FromAgent) is not
// subscribed on this Bus to its own channel, where the reply would arrive.
var ErrNotSubscribed = errors.New("bus: asker is not subscribed to its own channel")

// DefaultAskTimeout is the ask timeout of the design (30 s); [Bus.Ask] uses it when given a
// timeout <= 0.
const DefaultAskTimeout = 30 * time.Second

// rollbackTimeout bounds the clean-up after a failed Subscribe, which runs after the caller's
// context has ended.
const rollbackTimeout = 2 * time.Second

// Handler handles one message received on a subscribed channel. It runs in its own goroutine,
// concurrently with other handlers, including other calls of itself for later messages of the
// same channel (so order between messages is not preserved). ctx is cancelled when the
// Subscription or the Bus is closed; a handler should return soon after, because [Bus.Close]
// waits for it. A panic in a handler is recovered and logged.
type Handler func(ctx context.Context, m Message)

// Info describes a Bus for the settings and bus pages. URL never contains the password.
type Info struct {
	URL           string `json:"url"`           // redis:// or rediss:// URL, password masked
	Addr          string `json:"addr"`          // host:port (or socket path)
	DB            int    `json:"db"`            // database number
	TLS           bool   `json:"tls"`           // whether the connection uses TLS
	Healthy       bool   `json:"healthy"`       // see Bus.Healthy
	Channels      int    `json:"channels"`      // channels subscribed on this Bus
	Subscriptions int    `json:"subscriptions"` // handlers registered (several may share a channel)
	PendingAsks   int    `json:"pending_asks"`  // Asks waiting for a reply
}

// Bus is a process's connection to Redis Pub/Sub: one go-redis client for commands and one
// subscriber connection shared by every agent of the process, read by one goroutine at a time.
//
// A Bus is safe for concurrent use. Create it with [Connect]; release it with [Bus.Close].
//
// Connection handling: Connect does not need Redis to be up. The subscriber connection is
// established in the background and re-established after any failure, with backoff, for as long
// as the Bus is open; [Bus.Healthy] and [Bus.WaitHealthy] report when it is usable. A broken
// connection is noticed as soon as the socket reports it (a killed or restarted Redis, a reset);
// a peer that vanishes without closing the socket is only noticed by TCP keepalive (with
// go-redis's dialer, after about 45 s of silence).
type Bus struct {
	client *redis.Client
	ps     *redis.PubSub // the shared subscriber connection; read only by the current reader (see read)
	logger *slog.Logger
	static Info // the parts of Info that never change

	ctx        context.Context // cancelled by Close; parent of handler contexts
	cancel     context.CancelFunc
	readerDone chan struct{} // closed by the reader that saw the Bus close
	wire       chan struct{} // one token: serializes SUBSCRIBE/UNSUBSCRIBE decisions and writes

	mu        sync.Mutex
	closed    bool
	subs      map[string]map[*subscription]struct{} // wanted: channel -> handlers
	confirmed map[string]bool                       // as Redis confirmed on the current connection
	pings     map[string]chan error                 // barrier payload -> result
	waiters   map[string]chan askResult             // query id -> the Ask waiting for its reply
	healthy   bool
	healthyCh chan struct{} // closed while healthy, replaced when the connection fails
	probe     string        // payload of the reader's reconnect probe in flight, or ""
	seq       uint64        // makes ping payloads unique
	outage    bool          // a failure was logged and no recovery since
	outages   uint64        // connection losses so far (see Outages)

	wg sync.WaitGroup // handler goroutines, goroutines waiting to read (see read) and Monitor calls

	idleReaders chan backoff // hands the reading to a goroutine waiting for it
	idle        atomic.Int32 // goroutines waiting on idleReaders
}

type askResult struct {
	msg Message
	err error
}

// Connect returns a Bus for the Redis at rawURL (redis://[user:password@]host:port[/db],
// rediss:// for TLS, or unix://; see go-redis ParseURL for query options). It fails only when
// the URL is invalid or ctx has already ended: it does not wait for Redis, so the program starts
// even when Redis is down. The subscriber connection is established in the background (and
// re-established for as long as the Bus is open; an unreachable Redis is logged once as a
// warning, not at every attempt); use
// [Bus.Ping] to check reachability (callers use a 2 s deadline) and [Bus.WaitHealthy] to wait for
// the subscriber connection. logger may be nil. Errors never contain the password.
func Connect(ctx context.Context, rawURL string, logger *slog.Logger) (*Bus, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connect bus: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactURL(ue.URL)
		}
		return nil, fmt.Errorf("connect bus: parse redis url %s: %w", redactURL(rawURL), err)
	}
	client := redis.NewClient(opts)
	// The Bus outlives the call that created it: keep ctx's values, not its cancellation.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &Bus{
		client:     client,
		logger:     logger.With("component", "bus"),
		static:     describeOptions(opts),
		ctx:        bctx,
		cancel:     cancel,
		readerDone: make(chan struct{}),
		wire:       make(chan struct{}, 1),
		subs:       map[string]map[*subscription]struct{}{},
		confirmed:  map[string]bool{},
		pings:      map[string]chan error{},
		waiters:    map[string]chan askResult{},
		healthyCh:  make(chan struct{}),
	}
	b.idleReaders = make(chan backoff)
	// Creating the PubSub with no channel does not dial; the reader's first probe does.
	b.ps = client.Subscribe(bctx)
	go b.read(backoff{})
	return b, nil
}

// Outages returns how many times the subscriber connection has been lost since Connect. A
// caller that notes it can tell later whether Redis was lost in between, however briefly: a
// restarted Redis comes back empty, and what was in flight on it (messages, stream entries)
// is gone.
func (b *Bus) Outages() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.outages
}

// Client returns the Bus's command client, for the streams and the worker registry of worker
// mode, which share its connection pool. Blocking stream reads each hold a connection of the
// pool while they wait. The client is closed by [Bus.Close].
func (b *Bus) Client() redis.UniversalClient { return b.client }

// Ping checks that Redis answers a PING on the command connection. It fails when Redis cannot
// be reached before ctx ends (callers pass a 2 s deadline). Safe for concurrent use.
func (b *Bus) Ping(ctx context.Context) error {
	if err := b.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis at %s: %w", b.static.Addr, err)
	}
	return nil
}

// Healthy reports whether the shared subscriber connection is up and Redis has confirmed, on
// it, every channel registered when it came up. It is false until the first connection after
// [Connect] succeeds, from the moment a failure is noticed until the connection is restored,
// and after Close. Safe for concurrent use.
func (b *Bus) Healthy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.healthy && !b.closed
}

// WaitHealthy blocks until [Bus.Healthy] is true. It fails with ctx's error when ctx ends first,
// and with [ErrClosed] when the Bus is closed. Safe for concurrent use.
func (b *Bus) WaitHealthy(ctx context.Context) error {
	b.mu.Lock()
	closed, ch := b.closed, b.healthyCh
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	select {
	case <-ch:
		return nil
	case <-b.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("wait for redis pub/sub connection to %s: %w", b.static.Addr, ctx.Err())
	}
}

// Describe returns the address (password masked) and the current state of the Bus. It never
// blocks on Redis and is safe for concurrent use.
func (b *Bus) Describe() Info {
	info := b.static
	b.mu.Lock()
	defer b.mu.Unlock()
	info.Healthy = b.healthy && !b.closed
	info.Channels = len(b.subs)
	for _, set := range b.subs {
		info.Subscriptions += len(set)
	}
	info.PendingAsks = len(b.waiters)
	return info
}

// Publish sends m, JSON-encoded, on channel through the command connection. A zero Timestamp is
// set to now. It fails when m lacks an id, type or sender ([Message.Validate]; receivers would
// drop it), when m cannot be encoded, or when Redis does not accept the PUBLISH before ctx ends
// (go-redis retries a few times first, so against a Redis that is down this takes about 1.5 s
// unless ctx is shorter); it does not fail when nobody listens. Publish keeps working while the Bus is closing
// (until the client is closed), so handlers still running can send their replies. Safe for
// concurrent use.
func (b *Bus) Publish(ctx context.Context, channel string, m Message) error {
	if channel == "" {
		return fmt.Errorf("publish %s %s: empty channel", m.Type, m.ID)
	}
	if err := m.Validate(); err != nil {
		// Every receiver would drop it.
		return fmt.Errorf("publish to %s: %w", channel, err)
	}
	if m.Timestamp.IsZero() {
		m.Timestamp = wireNow()
	}
	w, err := m.encodeWire()
	if err != nil {
		return fmt.Errorf("publish to %s: encode message %s: %w", channel, m.ID, err)
	}
	// go-redis copies the payload into its writer and keeps no reference once PUBLISH returns.
	err = b.client.Publish(ctx, channel, w.bytes()).Err()
	w.release()
	if err != nil {
		return fmt.Errorf("publish %s %s to %s: %w", m.Type, m.ID, channel, err)
	}
	return nil
}

// ActiveChannels lists, sorted, the channels matching pattern that have at least one subscriber
// on the Redis server (PUBSUB CHANNELS), whoever the subscriber is. It fails when Redis cannot
// be reached before ctx ends. Safe for concurrent use.
func (b *Bus) ActiveChannels(ctx context.Context, pattern string) ([]string, error) {
	chans, err := b.client.PubSubChannels(ctx, pattern).Result()
	if err != nil {
		return nil, fmt.Errorf("pubsub channels %q: %w", pattern, err)
	}
	slices.Sort(chans)
	return chans, nil
}

// Close shuts the Bus down, in this order: every Ask in flight fails with [ErrClosed]; handler
// and Monitor contexts are cancelled; the subscriber connection is closed (Redis drops its
// subscriptions with it); Close waits for the reader goroutine, every handler goroutine and
// every Monitor call to return; then the client is closed. Close can block for as long as a
// handler ignores its cancelled context; it must not be called from a Handler (it would wait
// for itself). Call it when nothing will use the Bus any more: afterwards every other method
// fails with ErrClosed or a closed-client error. Further calls of Close do nothing and return
// nil.
// Close takes no context: what it waits for is bounded by the handlers honouring theirs. Safe
// for concurrent use with the other methods.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for id, w := range b.waiters {
		w <- askResult{err: ErrClosed}
		delete(b.waiters, id)
	}
	for p, ch := range b.pings {
		ch <- ErrClosed
		delete(b.pings, p)
	}
	if b.healthy {
		b.healthy = false
		b.healthyCh = make(chan struct{})
	}
	b.mu.Unlock()

	b.cancel()
	var errs []error
	if err := b.ps.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close bus: close subscriber connection: %w", err))
	}
	<-b.readerDone
	b.wg.Wait()
	if err := b.client.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close bus: close redis client: %w", err))
	}
	b.logger.Debug("bus closed")
	return errors.Join(errs...)
}

// read is the reader of the subscriber connection: one goroutine at a time runs it. It keeps
// the connection up (probing it with a PING after every failure; go-redis dials again and
// re-subscribes every channel it knows before sending it), records subscription confirmations,
// resolves pings and Ask waiters, and hands every other message to the channel's handlers.
//
// The goroutine that read a message for a handler runs that handler itself, after starting the
// next reader: the handler starts at once, instead of after a new goroutine is scheduled, and
// the new reader only has to be reading by the time the next message arrives. So a handler
// still never holds up the connection, and handlers still run concurrently.
//
// A goroutine whose handler returned waits, up to maxIdleReaders of them, to be the next reader
// instead of ending: a new goroutine grows its stack (go-redis's reads and the JSON decoder go
// deep) by copying it, a cost on every query that a waiting goroutine, whose stack has grown
// already, does not pay. A waiting goroutine holds a count of wg, so Close waits for it.
func (b *Bus) read(bo backoff) {
	held := false // whether this goroutine holds a count of wg for the time it waits
	defer func() {
		if held {
			b.wg.Done()
		}
	}()
	for {
		s, m, ok := b.readUntilHandler(&bo)
		if !ok {
			close(b.readerDone)
			return
		}
		select {
		case b.idleReaders <- bo:
		default:
			go b.read(bo)
		}
		if !held {
			// Taken while dispatch's count for the handler is held, so never from zero.
			b.wg.Add(1)
			held = true
		}
		b.runHandler(s, m)
		if b.idle.Add(1) > maxIdleReaders {
			b.idle.Add(-1)
			return
		}
		select {
		case bo = <-b.idleReaders:
			b.idle.Add(-1)
		case <-b.ctx.Done():
			b.idle.Add(-1)
			return
		}
	}
}

// maxIdleReaders is how many goroutines wait to be the next reader (see read); more handlers
// than that at once are rare, and a goroutine more is only a new one.
const maxIdleReaders = 4

// readUntilHandler reads the subscriber connection until a message calls for a handler, and
// returns that handler and message; ok is false once the Bus is closed.
func (b *Bus) readUntilHandler(bo *backoff) (s *subscription, m Message, ok bool) {
	for {
		if b.ctx.Err() != nil {
			return nil, Message{}, false
		}
		if err := b.sendProbe(); err != nil {
			if b.ctx.Err() != nil {
				return nil, Message{}, false
			}
			b.connectionFailed(err)
			if sleepCtx(b.ctx, bo.step()) != nil {
				return nil, Message{}, false
			}
			continue
		}
		msg, err := b.ps.Receive(b.ctx)
		if err != nil {
			if b.ctx.Err() != nil {
				return nil, Message{}, false
			}
			if isTimeout(err) {
				continue
			}
			if strings.HasPrefix(err.Error(), "redis: unsupported pubsub message") {
				// The frame was read whole; the connection is fine.
				b.logger.Warn("bus: ignored unexpected pub/sub frame", "err", err)
				continue
			}
			b.connectionFailed(err)
			if sleepCtx(b.ctx, bo.step()) != nil {
				return nil, Message{}, false
			}
			continue
		}
		switch rm := msg.(type) {
		case *redis.Subscription:
			b.onSubscription(rm)
		case *redis.Pong:
			if b.onPong(rm.Payload) {
				bo.reset()
			}
		case *redis.Message:
			if s, m, ok := b.dispatch(rm); ok {
				return s, m, true
			}
		}
	}
}

// sendProbe sends the reader's reconnect probe when the Bus is not healthy and no probe is in
// flight. Replies on a connection come in order, so when its pong arrives Redis has already
// confirmed every channel go-redis re-subscribed on that connection.
func (b *Bus) sendProbe() error {
	b.mu.Lock()
	if b.healthy || b.probe != "" {
		b.mu.Unlock()
		return nil
	}
	b.seq++
	nonce := "switchboard:probe:" + strconv.FormatUint(b.seq, 10)
	b.probe = nonce
	b.mu.Unlock()
	if err := b.ps.Ping(b.ctx, nonce); err != nil {
		b.mu.Lock()
		b.probe = ""
		b.mu.Unlock()
		return fmt.Errorf("ping subscriber connection: %w", err)
	}
	return nil
}

func (b *Bus) onSubscription(s *redis.Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch s.Kind {
	case "subscribe":
		b.confirmed[s.Channel] = true
	case "unsubscribe":
		delete(b.confirmed, s.Channel)
	}
}

// onPong resolves the probe or a barrier ping; it reports whether the pong was the probe's
// (the connection is healthy again).
func (b *Bus) onPong(payload string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if payload != "" && payload == b.probe {
		b.probe = ""
		if !b.healthy && !b.closed {
			b.healthy = true
			close(b.healthyCh)
			if b.outage {
				b.outage = false
				b.logger.Info("bus: redis pub/sub connection restored",
					"addr", b.static.Addr, "channels", len(b.confirmed))
			} else {
				b.logger.Debug("bus: redis pub/sub connection up", "addr", b.static.Addr)
			}
		}
		return true
	}
	if ch, ok := b.pings[payload]; ok {
		delete(b.pings, payload)
		ch <- nil
	}
	return false
}

// connectionFailed records that the subscriber connection failed: the Bus turns unhealthy, the
// confirmations it held are void (Redis dropped them with the connection), and every barrier
// and every Ask in flight fails at once, since their replies may have been lost.
func (b *Bus) connectionFailed(cause error) {
	lost := fmt.Errorf("%w: %w", ErrConnectionLost, cause)
	b.mu.Lock()
	if b.healthy {
		b.healthy = false
		b.healthyCh = make(chan struct{})
	}
	b.probe = ""
	clear(b.confirmed)
	for p, ch := range b.pings {
		ch <- lost
		delete(b.pings, p)
	}
	failed := len(b.waiters)
	for id, w := range b.waiters {
		w <- askResult{err: lost}
		delete(b.waiters, id)
	}
	first := !b.outage
	b.outage = true
	if first {
		b.outages++
	}
	b.mu.Unlock()
	if first {
		b.logger.Warn("bus: redis pub/sub connection down, reconnecting",
			"addr", b.static.Addr, "err", cause, "failed_asks", failed)
	} else {
		b.logger.Debug("bus: reconnect attempt failed", "addr", b.static.Addr, "err", cause, "failed_asks", failed)
	}
}

// dispatch decodes one message and delivers it: to the Ask waiting for it when it is a
// response, otherwise to every handler of its channel. Every handler but one gets a goroutine
// of its own here; that one is returned (ok true), for the reader to run itself.
func (b *Bus) dispatch(rm *redis.Message) (first *subscription, fm Message, ok bool) {
	var m Message
	err := m.decodeWireString(rm.Payload)
	if err == nil {
		err = m.Validate()
	}
	if err != nil {
		b.logger.Warn("bus: dropped malformed message", "channel", rm.Channel, "err", err,
			"payload", truncate(rm.Payload, 200))
		return
	}
	if m.Expired(time.Now()) {
		b.logger.Debug("bus: dropped expired message", "channel", rm.Channel, "id", m.ID,
			"expires_at", formatTime(*m.ExpiresAt))
		return
	}
	if m.IsResponse() && m.IsReply() {
		b.mu.Lock()
		w, found := b.waiters[*m.ReplyTo]
		if found {
			delete(b.waiters, *m.ReplyTo)
		}
		b.mu.Unlock()
		if found {
			w <- askResult{msg: m}
		} else {
			b.logger.Debug("bus: dropped late or duplicate response", "channel", rm.Channel,
				"id", m.ID, "reply_to", *m.ReplyTo, "from", m.FromAgent)
		}
		return
	}

	b.mu.Lock()
	set := b.subs[rm.Channel]
	var others []*subscription
	for s := range set {
		if first == nil {
			first = s
		} else {
			others = append(others, s)
		}
	}
	// Add before Close can Wait: Close waits for the reader first, and the next reader is
	// started after this.
	b.wg.Add(len(set))
	b.mu.Unlock()
	if first == nil {
		b.logger.Debug("bus: no handler for message", "channel", rm.Channel, "id", m.ID)
		return nil, Message{}, false
	}
	for _, s := range others {
		// Each handler gets its own maps, so one cannot race another by modifying them.
		var mm Message
		_ = mm.decodeWireString(rm.Payload)
		go b.runHandler(s, mm)
	}
	return first, m, true
}

func (b *Bus) runHandler(s *subscription, m Message) {
	defer b.wg.Done()
	if s.ctx.Err() != nil {
		return // closed since the message was dispatched
	}
	defer func() {
		if r := recover(); r != nil {
			b.logger.Error("bus: handler panicked", "channel", s.channel, "id", m.ID, "panic", r,
				"stack", string(debug.Stack()))
		}
	}()
	s.h(s.ctx, m)
}

// barrier sends a PING carrying a unique payload through the subscriber connection and waits
// for its pong. Redis answers the commands of one connection in order, so once the pong is back
// the reader has applied the confirmation of every SUBSCRIBE or UNSUBSCRIBE written before it.
func (b *Bus) barrier(ctx context.Context) error {
	ch := make(chan error, 1)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.seq++
	nonce := "switchboard:sync:" + strconv.FormatUint(b.seq, 10)
	b.pings[nonce] = ch
	b.mu.Unlock()
	drop := func() {
		b.mu.Lock()
		delete(b.pings, nonce)
		b.mu.Unlock()
	}
	// go-redis replaces the whole connection after a write fails on a context error, so do
	// not write once ctx has ended.
	if err := ctx.Err(); err != nil {
		drop()
		return err
	}
	if err := b.ps.Ping(ctx, nonce); err != nil {
		drop()
		return fmt.Errorf("ping subscriber connection: %w", err)
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		drop()
		return ctx.Err()
	}
}

func describeOptions(o *redis.Options) Info {
	u := url.URL{Scheme: "redis", Host: o.Addr, Path: "/" + strconv.Itoa(o.DB)}
	switch {
	case o.Network == "unix":
		u = url.URL{Scheme: "unix", Path: o.Addr}
		if o.DB != 0 {
			u.RawQuery = "db=" + strconv.Itoa(o.DB)
		}
	case o.TLSConfig != nil:
		u.Scheme = "rediss"
	}
	switch {
	case o.Password != "":
		u.User = url.UserPassword(o.Username, "xxxxx")
	case o.Username != "":
		u.User = url.User(o.Username)
	}
	return Info{URL: u.String(), Addr: o.Addr, DB: o.DB, TLS: o.TLSConfig != nil}
}

// redactURL masks the password of a URL that may not even parse.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	scheme := strings.Index(raw, "://")
	at := strings.LastIndex(raw, "@")
	if scheme < 0 || at < scheme {
		return raw
	}
	userinfo := raw[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		return raw[:scheme+3] + userinfo[:i] + ":xxxxx" + raw[at:]
	}
	return raw
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// backoff yields the delays between reconnect attempts: none for the first retry after a
// healthy period, then 50 ms doubling up to 1 s. An attempt is one dial, so retrying every
// second costs a down Redis nothing and brings the bus back within a second of Redis.
type backoff struct{ next time.Duration }

func (b *backoff) reset() { b.next = 0 }

func (b *backoff) step() time.Duration {
	d := b.next
	switch {
	case b.next == 0:
		b.next = 50 * time.Millisecond
	case b.next < time.Second:
		b.next = min(2*b.next, time.Second)
	}
	return d
}

// sleepCtx waits for d, or until ctx ends (then it returns ctx's error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
