package bus

import (
	"context"
	"errors"
	"fmt"
)

// Subscription is one handler registered on a channel by [Bus.Subscribe]. Release it with
// [Subscription.Close]. The zero Subscription is valid and its Close does nothing. A
// Subscription is a small value; copies refer to the same registration. Safe for concurrent use.
type Subscription struct {
	s *subscription
}

type subscription struct {
	bus     *Bus
	channel string
	h       Handler
	ctx     context.Context // given to h; cancelled by Close
	cancel  context.CancelFunc
	closed  bool // guarded by bus.mu
}

// Channel returns the channel the Subscription listens on ("" for the zero Subscription).
func (s Subscription) Channel() string {
	if s.s == nil {
		return ""
	}
	return s.s.channel
}

// Close removes the handler at once, so that messages not yet dispatched no longer reach it,
// and cancels the context of its calls in flight (and of any call dispatched just before),
// without waiting for them ([Bus.Close] does). When it was the last handler of its channel,
// Close unsubscribes the channel and returns once Redis has confirmed it, so that PUBSUB
// CHANNELS no longer lists it. If the subscriber connection is down there is nothing to confirm
// (Redis dropped the subscription with the connection, and the channel will not be
// re-subscribed), and Close returns at once. It fails only when ctx ends before the
// confirmation arrives; the UNSUBSCRIBE is still sent then, with up to 2 s of its own. Calling
// Close again, or after the Bus was closed, does nothing and returns nil. Safe for concurrent
// use.
func (s Subscription) Close(ctx context.Context) error {
	if s.s == nil {
		return nil
	}
	return s.s.close(ctx)
}

func (s *subscription) close(ctx context.Context) error {
	b := s.bus
	b.mu.Lock()
	if s.closed {
		b.mu.Unlock()
		return nil
	}
	s.closed = true
	if set := b.subs[s.channel]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.subs, s.channel)
		}
	}
	busClosed := b.closed
	b.mu.Unlock()
	s.cancel()
	if busClosed {
		return nil
	}
	err := b.reconcile(ctx, s.channel)
	if err == nil || errors.Is(err, ErrClosed) {
		return nil
	}
	if ctx.Err() != nil {
		// Do not leave the channel subscribed on Redis with no handler: send what the handlers
		// now call for, with a little time of its own.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		if _, werr := b.write(wctx, s.channel); werr != nil {
			b.logger.Debug("bus: unsubscribe after deadline", "channel", s.channel, "err", werr)
		}
		cancel()
	}
	return fmt.Errorf("unsubscribe %s: %w", s.channel, err)
}

// Subscribe registers h for the messages published on channel and returns once Redis has
// confirmed, on the shared subscriber connection, that channel is subscribed: messages
// published after Subscribe returns reach h. Several handlers may share a channel (every agent
// on [BroadcastChannel]); each message goes to all of them, each call in its own goroutine.
// h may be called before Subscribe returns, by messages sent to a channel already subscribed.
//
// A response whose reply_to names an [Bus.Ask] in flight never reaches h: the Ask gets it. So
// does a response that arrives too late for its Ask; it is dropped.
//
// Subscribe waits while Redis is unreachable (the subscriber connection is re-established in
// the background). It fails when ctx ends first (after removing the handler again; the error
// wraps ctx's error and the last connection error), when channel is empty or h nil, and with
// [ErrClosed] when the Bus is closed. Safe for concurrent use, also with Close of other
// Subscriptions of the same channel.
func (b *Bus) Subscribe(ctx context.Context, channel string, h Handler) (Subscription, error) {
	if channel == "" {
		return Subscription{}, errors.New("subscribe: empty channel")
	}
	if h == nil {
		return Subscription{}, fmt.Errorf("subscribe %s: nil handler", channel)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return Subscription{}, fmt.Errorf("subscribe %s: %w", channel, ErrClosed)
	}
	sctx, cancel := context.WithCancel(b.ctx)
	s := &subscription{bus: b, channel: channel, h: h, ctx: sctx, cancel: cancel}
	set := b.subs[channel]
	if set == nil {
		set = map[*subscription]struct{}{}
		b.subs[channel] = set
	}
	set[s] = struct{}{}
	b.mu.Unlock()

	if err := b.reconcile(ctx, channel); err != nil {
		// The caller's ctx has ended: give the clean-up a little time of its own.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		if rerr := s.close(rctx); rerr != nil {
			b.logger.Debug("bus: roll back failed subscribe", "channel", channel, "err", rerr)
		}
		rcancel()
		return Subscription{}, fmt.Errorf("subscribe %s: %w", channel, err)
	}
	return Subscription{s: s}, nil
}

// reconcile makes Redis's subscription to channel, on the shared subscriber connection, match
// whether channel has handlers, and returns once Redis confirmed it.
//
// Every change of a channel's handlers is followed by a call of reconcile, whose write decides
// from the handlers at that moment; writes are serialized (see write), so the last write to
// reach Redis reflects the last change. The check after the barrier catches a concurrent change
// between a write and its confirmation, and the loop writes again.
//
// go-redis updates the set of channels it re-subscribes on reconnect before it writes, so a
// failed UNSUBSCRIBE leaves nothing behind: the failure means the connection is gone or being
// replaced, and the new one will not subscribe the channel. A failed SUBSCRIBE is retried once
// the connection is back.
func (b *Bus) reconcile(ctx context.Context, channel string) error {
	var bo backoff
	var last error
	for {
		want, err := b.write(ctx, channel)
		if err == nil {
			err = b.barrier(ctx)
		}
		if err == nil {
			b.mu.Lock()
			want = len(b.subs[channel]) > 0
			have := b.confirmed[channel]
			b.mu.Unlock()
			if want == have {
				return nil
			}
			continue
		}
		if b.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return ErrClosed
		}
		if cerr := ctx.Err(); cerr != nil {
			if last != nil {
				return fmt.Errorf("%w (last error: %w)", cerr, last)
			}
			return cerr
		}
		if !want {
			return nil
		}
		last = err
		b.logger.Debug("bus: subscription not confirmed yet, waiting for the connection",
			"channel", channel, "err", err)
		if err := b.WaitHealthy(ctx); err != nil && errors.Is(err, ErrClosed) {
			return ErrClosed
		}
		// The reader may not have noticed the failure yet; do not spin meanwhile.
		_ = sleepCtx(ctx, bo.step())
	}
}

// write sends SUBSCRIBE or UNSUBSCRIBE for channel, whichever its handlers call for at that
// moment, and reports which. Decision and write happen under b.wire, so that the writes of
// concurrent calls reach Redis in the order they were decided. It does not write once ctx has
// ended: a write under an expired deadline would fail, and go-redis would then replace the
// whole connection.
func (b *Bus) write(ctx context.Context, channel string) (want bool, err error) {
	select {
	case b.wire <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-b.wire }()
	b.mu.Lock()
	closed := b.closed
	want = len(b.subs[channel]) > 0
	b.mu.Unlock()
	if closed {
		return want, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return want, err
	}
	if want {
		return true, b.ps.Subscribe(ctx, channel)
	}
	return false, b.ps.Unsubscribe(ctx, channel)
}
