package bus

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Monitor watches every message published on channels matching pattern (normally
// [ChannelPattern]) for the dashboard, on a pub/sub connection of its own, so that watching
// never slows the agents' connection. It returns an error, without calling fn, when the
// PSUBSCRIBE cannot be sent or confirmed (Redis unreachable, ctx ended); once Redis confirmed
// it, Monitor calls fn for each message, in order and in Monitor's goroutine (so fn should be
// quick), and blocks until ctx ends, then closes its connection and returns nil. If the
// connection breaks meanwhile, it reconnects and re-subscribes with backoff (messages published
// while it is down are missed). It returns [ErrClosed] when the Bus is closed, which ends every
// Monitor before the client closes. fn may keep payload. Safe for concurrent use; each call
// has its own connection.
func (b *Bus) Monitor(ctx context.Context, pattern string, fn func(channel string, payload []byte)) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("monitor %s: %w", pattern, ErrClosed)
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(b.ctx, cancel)
	defer stopOnClose()
	result := func(err error) error {
		if b.ctx.Err() != nil {
			return fmt.Errorf("monitor %s: %w", pattern, ErrClosed)
		}
		return err
	}

	ps := b.client.PSubscribe(ctx) // no pattern yet: does not dial
	// Closing the PubSub is what interrupts a blocked Receive.
	stopCloser := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if stopCloser() {
			_ = ps.Close()
		}
	}()

	if err := ps.PSubscribe(ctx, pattern); err != nil {
		return result(fmt.Errorf("monitor %s: psubscribe: %w", pattern, err))
	}
	for confirmed := false; !confirmed; {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return result(fmt.Errorf("monitor %s: confirm psubscribe: %w", pattern, ctx.Err()))
			}
			return result(fmt.Errorf("monitor %s: confirm psubscribe: %w", pattern, err))
		}
		if s, ok := msg.(*redis.Subscription); ok && s.Kind == "psubscribe" && s.Channel == pattern {
			confirmed = true
		}
	}
	b.logger.Debug("bus: monitor started", "pattern", pattern)

	var bo backoff
	down := false
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return result(nil)
			}
			if isTimeout(err) {
				continue
			}
			if !down {
				down = true
				b.logger.Warn("bus: monitor connection lost, reconnecting", "pattern", pattern, "err", err)
			}
			if sleepCtx(ctx, bo.step()) != nil {
				return result(nil)
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Message:
			fn(m.Channel, []byte(m.Payload))
		case *redis.Subscription:
			if down && m.Kind == "psubscribe" {
				down = false
				bo.reset()
				b.logger.Info("bus: monitor reconnected", "pattern", pattern)
			}
		}
	}
}
