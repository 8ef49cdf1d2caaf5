package executor

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// nodeClock is the timeout of an ai-processor node of an execution that
// may wait for a person: it stops while the execution waits for a budget
// approval, or while the node waits for a person's answer to its ask, which
// may come hours later, and goes on from where it stopped. Its Deadline
// moves accordingly (a node run by a worker is sent it). It is the node's
// context: cancelled with the timeout's cause when the time is up.
type nodeClock struct {
	context.Context
	cancel context.CancelCauseFunc
	cause  error

	mu       sync.Mutex
	deadline time.Time
	left     time.Duration // while held: the time left
	stops    int           // reasons to stop: a budget pause, asks to people
	held     bool          // the timer is stopped with time left
	timer    *time.Timer
}

// clockKey finds a node's clock in its context.
type clockKey struct{}

// Value answers clockKey with the clock.
func (c *nodeClock) Value(k any) any {
	if k == (clockKey{}) {
		return c
	}
	return c.Context.Value(k)
}

// holdClock stops the clock of the node whose context is ctx while it asks
// human node target, and returns what starts it again; it does nothing for
// another target, or a node without such a clock.
func holdClock(ctx context.Context, target *workflow.Node) func() {
	c, _ := ctx.Value(clockKey{}).(*nodeClock)
	if c == nil || target.Type != workflow.NodeHuman {
		return func() {}
	}
	c.stop()
	return c.start
}

// nodeDeadline bounds a node's run by timeout, cancelling it with cause: a
// plain timeout, unless the execution may wait for a person (it pauses
// over its budget, or has a human node), whose clock stops while it does.
func (x *execution) nodeDeadline(ctx context.Context, timeout time.Duration, cause error) (context.Context, context.CancelFunc) {
	if !x.room.clocked {
		return context.WithTimeoutCause(ctx, timeout, cause)
	}
	room := x.room
	cctx, cancel := context.WithCancelCause(ctx)
	c := &nodeClock{Context: cctx, cancel: cancel, cause: cause, deadline: time.Now().Add(timeout)}
	c.timer = time.AfterFunc(timeout, func() { cancel(cause) })
	room.mu.Lock()
	if room.clocks == nil {
		room.clocks = map[*nodeClock]bool{}
	}
	room.clocks[c] = true
	if room.clocksStopped {
		c.stop()
	}
	room.mu.Unlock()
	return c, func() {
		c.timer.Stop()
		cancel(context.Canceled)
		room.mu.Lock()
		delete(room.clocks, c)
		room.mu.Unlock()
	}
}

// Deadline is when the node's time is up if the clock runs on.
func (c *nodeClock) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		return time.Now().Add(c.left), true
	}
	return c.deadline, true
}

// stop adds a reason to stop the clock; the first stops it, unless the
// time is up.
func (c *nodeClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stops++
	if c.stops == 1 && c.timer.Stop() {
		c.left, c.held = time.Until(c.deadline), true
	}
}

// start takes a reason away; the last starts the clock again with the
// time it had left.
func (c *nodeClock) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stops == 0 {
		return
	}
	c.stops--
	if c.stops == 0 && c.held {
		c.held = false
		c.deadline = time.Now().Add(c.left)
		c.timer.Reset(c.left)
	}
}

// stopClocks stops the clocks of the execution's running nodes, and of
// those that start, until startClocks.
func (room *waitRoom) stopClocks() {
	room.mu.Lock()
	defer room.mu.Unlock()
	if room.clocksStopped {
		return
	}
	room.clocksStopped = true
	for c := range room.clocks {
		c.stop()
	}
}

func (room *waitRoom) startClocks() {
	room.mu.Lock()
	defer room.mu.Unlock()
	if !room.clocksStopped {
		return
	}
	room.clocksStopped = false
	for c := range room.clocks {
		c.start()
	}
}
