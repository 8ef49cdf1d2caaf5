package executor

import (
	"context"
	"sync"
	"time"
)

// nodeClock is the timeout of an ai-processor node of an execution that
// pauses over its budget: it stops while the execution waits for an
// approval, which a person may give hours later, and goes on from where it
// stopped. Its Deadline moves accordingly (a node run by a worker is sent
// it). It is the node's context: cancelled with the timeout's cause when
// the time is up.
type nodeClock struct {
	context.Context
	cancel context.CancelCauseFunc
	cause  error

	mu       sync.Mutex
	deadline time.Time
	left     time.Duration // while stopped: the time left
	stopped  bool
	timer    *time.Timer
}

// nodeDeadline bounds a node's run by timeout, cancelling it with cause: a
// plain timeout, unless the execution pauses over its budget (on_budget
// "pause"), whose clock stops during the pause.
func (x *execution) nodeDeadline(ctx context.Context, timeout time.Duration, cause error) (context.Context, context.CancelFunc) {
	if g, ok := x.guard.(*guard); !ok || g.gate == nil {
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
	if c.stopped {
		return time.Now().Add(c.left), true
	}
	return c.deadline, true
}

func (c *nodeClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || !c.timer.Stop() {
		return // stopped already, or the time is up
	}
	c.left, c.stopped = time.Until(c.deadline), true
}

func (c *nodeClock) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		return
	}
	c.stopped = false
	c.deadline = time.Now().Add(c.left)
	c.timer.Reset(c.left)
}

// stopClocks stops the clocks of the execution's running nodes, and of
// those that start, until startClocks.
func (room *waitRoom) stopClocks() {
	room.mu.Lock()
	defer room.mu.Unlock()
	room.clocksStopped = true
	for c := range room.clocks {
		c.stop()
	}
}

func (room *waitRoom) startClocks() {
	room.mu.Lock()
	defer room.mu.Unlock()
	room.clocksStopped = false
	for c := range room.clocks {
		c.start()
	}
}
