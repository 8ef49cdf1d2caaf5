package bus_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
)

// eventWait bounds every wait for something that should happen within milliseconds; it only
// matters when the test is failing.
const eventWait = 10 * time.Second

// testCtx returns a context for the test's calls, bounded so a hang fails instead of blocking.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// logRecorder is a slog.Handler keeping every record (debug included) for assertions, and
// writing each to the test's output as it comes, so a failing or -v run shows the bus's log
// in order with the test's own.
type logRecorder struct {
	mu    *sync.Mutex
	buf   *bytes.Buffer
	out   *io.Writer // the test's output, shared by WithAttrs copies; nil once the test is over
	attrs []slog.Attr
}

func newLogger(t testing.TB) (*slog.Logger, *logRecorder) {
	out := t.Output()
	rec := &logRecorder{mu: &sync.Mutex{}, buf: &bytes.Buffer{}, out: &out}
	// Writing to a finished test's output panics; a record logged after the test (by a
	// goroutine that outlives it) is kept in buf only.
	t.Cleanup(func() {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		*rec.out = nil
	})
	return slog.New(rec), rec
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s %q", rec.Time.Format("15:04:05.000000"), rec.Level, rec.Message)
	for _, a := range r.attrs {
		fmt.Fprintf(&sb, " %s", a)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s", a)
		return true
	})
	sb.WriteString("\n")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.WriteString(sb.String())
	if *r.out != nil {
		_, _ = io.WriteString(*r.out, sb.String())
	}
	return nil
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), as...)
	return &c
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// count returns how many records have message msg.
func (r *logRecorder) count(msg string) int {
	return strings.Count(r.String(), fmt.Sprintf("%q", msg))
}

// connect returns a healthy Bus on url, closed when the test ends.
func connect(t *testing.T, url string) (*bus.Bus, *logRecorder) {
	t.Helper()
	logger, rec := newLogger(t)
	b, err := bus.Connect(testCtx(t), url, logger)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), eventWait)
	defer cancel()
	if err := b.WaitHealthy(ctx); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	return b, rec
}

// subscribe subscribes h to channel, closing the subscription when the test ends.
func subscribe(t *testing.T, b *bus.Bus, channel string, h bus.Handler) bus.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), eventWait)
	defer cancel()
	s, err := b.Subscribe(ctx, channel, h)
	if err != nil {
		t.Fatalf("Subscribe %s: %v", channel, err)
	}
	t.Cleanup(func() {
		// t.Context() has ended by the time cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), eventWait)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close subscription %s: %v", channel, err)
		}
	})
	return s
}

// answerer is the handler of an agent that answers every query with "answer from {self}: {question}".
func answerer(b *bus.Bus, self string) bus.Handler {
	return func(ctx context.Context, m bus.Message) {
		if m.Type != bus.TypeQuery {
			return
		}
		r := bus.NewResponse(m, self, "answer from "+self+": "+m.Question())
		_ = b.Publish(ctx, bus.Channel(m.FromAgent), r)
	}
}

// collector is a handler that sends every message to a buffered channel.
func collector(size int) (bus.Handler, chan bus.Message) {
	ch := make(chan bus.Message, size)
	return func(_ context.Context, m bus.Message) { ch <- m }, ch
}

func ignore(context.Context, bus.Message) {}

// recv waits for one value from ch, failing the test after eventWait.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(eventWait)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// uniqueExec returns an execution id unique to the test, so agent ids do not collide.
func uniqueExec(t *testing.T) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
}

func notification(from, to, text string) bus.Message {
	return bus.Message{
		ID: "note:" + text, Type: bus.TypeNotification, FromAgent: from, ToAgent: to,
		Subject: "note", Content: map[string]any{"text": text}, Priority: bus.PriorityLow,
		Metadata: bus.Meta("e", "w"),
	}
}
