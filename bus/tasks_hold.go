package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ErrTaskLost is the cause (context.Cause) of the context of a held task when the consumer no
// longer holds its entry: another consumer claimed it after the lease lapsed, it is no longer
// pending, or no renewal succeeded for a whole lease, so another consumer may have claimed it.
// The node must stop: another attempt runs it now, and the server drops this attempt's
// results.
var ErrTaskLost = errors.New("bus: task lease lost")

// Hold registers t as running on this consumer, so [Consumer.KeepAlive] renews its lease, and
// returns a context derived from ctx for running it. The context is cancelled with a cause
// wrapping [ErrTaskLost] when the lease is lost. Call release when the task is done (after
// Ack, or when giving it up): it stops the renewals and cancels the context. Safe for
// concurrent use.
func (c *Consumer) Hold(ctx context.Context, t Task) (taskCtx context.Context, release func()) {
	hctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	if c.held == nil {
		c.held = map[string]context.CancelCauseFunc{}
	}
	c.held[t.ID] = cancel
	c.mu.Unlock()
	return hctx, func() {
		c.mu.Lock()
		delete(c.held, t.ID)
		c.mu.Unlock()
		cancel(context.Canceled)
	}
}

// Held returns the ids of the tasks held now, sorted.
func (c *Consumer) Held() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.held))
}

// KeepAlive renews the leases of the held tasks three times per lease until ctx ends, then
// returns nil. A task whose renewal reports it lost has its context cancelled with a cause
// wrapping [ErrTaskLost] and is no longer held. When renewals fail (Redis unreachable) for a
// whole lease, every held task is lost the same way, because another consumer may already
// have claimed it; each failed renewal is also passed to onError, when not nil, which must not
// block. Each renewal is bounded by a third of the lease. Call it once per consumer, in a
// goroutine of its own.
func (c *Consumer) KeepAlive(ctx context.Context, onError func(error)) error {
	every := c.q.lease / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		ids := c.Held()
		if len(ids) == 0 {
			lastOK = time.Now()
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		lost, err := c.Renew(rctx, ids...)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if onError != nil {
				onError(err)
			}
			if since := time.Since(lastOK); since >= c.q.lease {
				c.lose(ids, fmt.Errorf("no renewal for %s (lease %s), last error: %w: %w",
					since.Round(time.Millisecond), c.q.lease, err, ErrTaskLost))
			}
			continue
		}
		lastOK = time.Now()
		if len(lost) > 0 {
			c.lose(lost, fmt.Errorf("entry claimed by another consumer or no longer pending: %w", ErrTaskLost))
		}
	}
}

// lose cancels the held tasks ids with cause.
func (c *Consumer) lose(ids []string, cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if cancel, ok := c.held[id]; ok {
			cancel(fmt.Errorf("task %s of %s: %w", id, c.q.stream, cause))
			delete(c.held, id)
		}
	}
}
