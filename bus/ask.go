package bus

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Ask publishes query q on channel (normally Channel(q.ToAgent)) and waits for the response
// whose reply_to is q.ID, which the target publishes to Channel(q.FromAgent).
//
// The asker must be subscribed on this Bus to its own channel, Channel(q.FromAgent), for the
// reply to arrive; Ask fails at once with [ErrNotSubscribed] otherwise. The reply is taken by
// the Bus's reader before any handler sees it, whichever subscribed channel it arrives on.
//
// The waiter is registered before the query is published, so a fast reply is never missed. If
// no reply has come after half of timeout, the same query (same id) is published once more, in
// case the first was lost; a target may therefore receive a query twice and should answer an id
// it is already answering only once. A second reply, or one that comes after Ask returned, is
// dropped. timeout <= 0 means [DefaultAskTimeout].
//
// Ask fails: with an error wrapping [ErrAskTimeout] when no reply came within timeout; wrapping
// [ErrConnectionLost] as soon as the subscriber connection breaks (not after the timeout);
// wrapping [ErrClosed] when the Bus is closed; with ctx's error when ctx ends first; when q has
// no id or sender, or an Ask with the same id is already waiting; and when publishing fails. The
// reply itself may report a failure: see [Message.Answer]. Safe for concurrent use.
func (b *Bus) Ask(ctx context.Context, channel string, q Message, timeout time.Duration) (Message, error) {
	if timeout <= 0 {
		timeout = DefaultAskTimeout
	}
	if q.ID == "" || q.FromAgent == "" {
		return Message{}, fmt.Errorf("ask on %s: query needs an id and a from_agent", channel)
	}
	replies := Channel(q.FromAgent)
	ch := make(chan askResult, 1)
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return Message{}, fmt.Errorf("ask %s on %s: %w", q.ID, channel, ErrClosed)
	case len(b.subs[replies]) == 0:
		b.mu.Unlock()
		return Message{}, fmt.Errorf("ask %s on %s: replies go to %s: %w", q.ID, channel, replies, ErrNotSubscribed)
	case b.waiters[q.ID] != nil:
		b.mu.Unlock()
		return Message{}, fmt.Errorf("ask %s on %s: an ask with this id is already waiting", q.ID, channel)
	}
	b.waiters[q.ID] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if b.waiters[q.ID] == ch {
			delete(b.waiters, q.ID)
		}
		b.mu.Unlock()
	}()

	if err := b.Publish(ctx, channel, q); err != nil {
		return b.publishFailed(q, channel, ch, err)
	}
	// One timer serves both deadlines: it fires at half the timeout for the resend, and is then
	// set to the rest.
	half := timeout / 2
	timer := time.NewTimer(half)
	defer timer.Stop()
	resent := false
	for {
		select {
		case r := <-ch:
			if r.err != nil {
				return Message{}, fmt.Errorf("ask %s on %s: %w", q.ID, channel, r.err)
			}
			return r.msg, nil
		case <-timer.C:
			if resent {
				return Message{}, fmt.Errorf("ask %s on %s: no reply after %s: %w", q.ID, channel, timeout, ErrAskTimeout)
			}
			resent = true
			timer.Reset(timeout - half)
			b.logger.Debug("bus: no reply yet, publishing the query again", "id", q.ID, "channel", channel)
			if err := b.Publish(ctx, channel, q); err != nil {
				return b.publishFailed(q, channel, ch, fmt.Errorf("resend: %w", err))
			}
		case <-ctx.Done():
			err := ctx.Err()
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
				err = fmt.Errorf("%w: %w", err, cause)
			}
			return Message{}, fmt.Errorf("ask %s on %s: %w", q.ID, channel, err)
		}
	}
}

// publishFailed builds Ask's result when publishing the query failed. The waiter may already
// hold the better answer: the reply itself (the PUBLISH reached Redis but its acknowledgement
// was lost), or the reason the bus failed the waiter (connection lost, bus closed), which the
// failed PUBLISH is only a symptom of.
func (b *Bus) publishFailed(q Message, channel string, ch <-chan askResult, err error) (Message, error) {
	select {
	case r := <-ch:
		if r.err == nil {
			return r.msg, nil
		}
		return Message{}, fmt.Errorf("ask %s on %s: %w (publish: %w)", q.ID, channel, r.err, err)
	default:
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return Message{}, fmt.Errorf("ask %s on %s: %w (publish: %w)", q.ID, channel, ErrClosed, err)
	}
	return Message{}, fmt.Errorf("ask %s: %w", q.ID, err)
}
