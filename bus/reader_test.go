package bus_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// goroutineID returns the id of the calling goroutine, from the header of its stack trace.
func goroutineID() string {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf[:n], []byte("goroutine ")), []byte(" "))
	return string(id)
}

// TestHandlersReuseReaders checks that queries answered one after another run on a few
// goroutines, which wait to be the next reader once their handler returns, and not each on a
// new one (whose stack would grow again on the way); and that Close ends the waiting ones
// (the package's TestMain finds leaked goroutines).
func TestHandlersReuseReaders(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, _ bustest.Controller) {
		ctx := testCtx(t)
		b, _ := connect(t, url)
		exec := uniqueExec(t)
		a, c := bus.AgentID(exec, "a"), bus.AgentID(exec, "b")
		subscribe(t, b, bus.Channel(a), ignore)
		ids := make(chan string, 1)
		subscribe(t, b, bus.Channel(c), func(ctx context.Context, m bus.Message) {
			ids <- goroutineID()
			_ = b.Publish(ctx, bus.Channel(m.FromAgent), bus.NewResponse(m, c, "ok"))
		})
		const asks = 20
		seen := map[string]bool{}
		for range asks {
			if _, err := b.Ask(ctx, bus.Channel(c), bus.NewQuery(a, c, "?", nil, bus.Meta(exec, "wf"), 0), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			seen[recv(t, ids, "the handler's goroutine")] = true
		}
		// A goroutine may miss its turn while it is on the way to wait (on a
		// loaded machine, many may); without reuse every one is new.
		if len(seen) == asks {
			t.Errorf("%d asks one after another ran their handlers on %d goroutines", asks, len(seen))
		}
	})
}
