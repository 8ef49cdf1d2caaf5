package schedule_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/schedule"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// watchLogs is a slog.Handler that writes to the test's output and sends
// the scheduler's messages on a channel, so a test can wait for one.
type watchLogs struct {
	slog.Handler
	msgs chan string
}

func (w watchLogs) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "schedule:") {
		select {
		case w.msgs <- r.Message:
		default:
		}
	}
	return w.Handler.Handle(ctx, r)
}

func (w watchLogs) WithAttrs(as []slog.Attr) slog.Handler {
	return watchLogs{w.Handler.WithAttrs(as), w.msgs}
}

// waitLog waits for a logged message containing part.
func waitLog(t *testing.T, msgs <-chan string, part string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, part) {
				return
			}
		case <-deadline:
			t.Fatalf("nothing logged with %q", part)
		}
	}
}

type env struct {
	db    *store.DB
	exec  *executor.Executor
	sched *schedule.Scheduler
	logs  chan string
}

// open starts a store on the SQLite file at path, an executor on model and
// a scheduler of them (not started); the test's end stops them.
func open(t *testing.T, path string, model executor.LLM) *env {
	t.Helper()
	logs := make(chan string, 1024)
	logger := slog.New(watchLogs{slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}), logs})
	db, err := store.Open(t.Context(), path, logger)
	if err != nil {
		t.Fatal(err)
	}
	ex := executor.New(db, model, nil, logger, executor.Config{})
	e := &env{db: db, exec: ex, sched: schedule.New(db, ex, logger), logs: logs}
	t.Cleanup(func() { e.close(t) })
	return e
}

func (e *env) close(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.sched.Stop(ctx); err != nil {
		t.Errorf("stop scheduler: %v", err)
	}
	_ = e.exec.Shutdown(ctx)
	e.db.Close()
}

func create(t *testing.T, db *store.DB, doc string) *workflow.Workflow {
	t.Helper()
	w, err := workflow.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateWorkflow(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

func scheduled(cron, extra string) string {
	return `{"name":"tick","metadata":{"schedule":{"cron":"` + cron + `"` + extra + `}},
	"nodes":[{"id":"start","type":"start"},{"id":"a","type":"ai-processor","config":{"prompt":"tick at {{trigger.scheduled_at}}"}}],
	"edges":[{"from":"start","to":"a"}]}`
}

// waitStarted waits for an execution of workflow wid to be created by the
// scheduler and returns its header.
func waitStarted(t *testing.T, events <-chan workflow.Event, wid string) *workflow.Execution {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if x := ev.Execution; ev.Kind == workflow.EventExecution && x != nil && x.WorkflowID == wid {
				return x
			}
		case <-deadline:
			t.Fatal("no scheduled run started")
		}
	}
}

// TestScheduleStartsRuns uses the optional seconds field, so that a tick
// comes within a second; the test waits for the run, not for the time.
func TestScheduleStartsRuns(t *testing.T) {
	t.Parallel()
	e := open(t, filepath.Join(t.TempDir(), "s.db"), llm.NewDemo())
	w := create(t, e.db, scheduled("* * * * * *", `,"timezone":"Europe/Paris"`))
	events, stop := e.exec.SubscribeAll()
	defer stop()
	if err := e.sched.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if next, ok := e.sched.Next(w.ID); !ok || next.Before(time.Now().Add(-time.Second)) {
		t.Fatalf("Next = %v, %v", next, ok)
	}
	x := waitStarted(t, events, w.ID)
	tr := x.Trigger
	if tr == nil || tr.Kind != workflow.TriggerSchedule || tr.ScheduledAt == nil || tr.CatchUp {
		t.Fatalf("trigger = %+v", tr)
	}
	if !tr.ScheduledAt.Equal(tr.ScheduledAt.Truncate(time.Second)) || tr.ScheduledAt.After(x.CreatedAt) {
		t.Errorf("scheduled_at %v is not a whole second before the run's creation %v", tr.ScheduledAt, x.CreatedAt)
	}
	if last, ok, err := e.db.LastTick(t.Context(), w.ID); err != nil || !ok || last.Before(*tr.ScheduledAt) {
		t.Errorf("last tick = %v, %v, %v; want at least %v", last, ok, err, tr.ScheduledAt)
	}

	// Taking the schedule away unschedules it at the reload.
	w.Metadata = map[string]any{}
	if err := e.db.UpdateWorkflow(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	e.sched.Reload(t.Context(), w.ID)
	if _, ok := e.sched.Next(w.ID); ok {
		t.Error("a workflow without a schedule still has a next run")
	}
	// So does deleting it, and a new one is scheduled at its creation.
	w2 := create(t, e.db, scheduled("0 9 * * *", ""))
	e.sched.Reload(t.Context(), w2.ID)
	if _, ok := e.sched.Next(w2.ID); !ok {
		t.Error("a new scheduled workflow has no next run after its reload")
	}
	if err := e.db.DeleteWorkflow(t.Context(), w2.ID); err != nil {
		t.Fatal(err)
	}
	e.sched.Reload(t.Context(), w2.ID)
	if _, ok := e.sched.Next(w2.ID); ok {
		t.Error("a deleted workflow still has a next run")
	}
}

// blockingModel answers only once released.
func blockingModel(t *testing.T) (executor.LLM, func()) {
	release, quit := make(chan struct{}), make(chan struct{})
	srv := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply {
		select {
		case <-release:
		case <-quit:
		}
		return llmtest.Reply{Content: "done"}
	})
	t.Cleanup(func() { close(quit) })
	var once sync.Once
	return llm.NewOpenAI(llm.Config{BaseURL: srv.URL(), MaxRetries: -1}, slog.New(slog.DiscardHandler)),
		func() { once.Do(func() { close(release) }) }
}

// TestScheduleSkipsWhileTheLastRunGoesOn: with the default overlap a tick
// that comes while the run is still going is skipped and logged; with
// "allow" it starts a second run.
func TestScheduleSkipsWhileTheLastRunGoesOn(t *testing.T) {
	t.Parallel()
	for _, overlap := range []string{"skip", "allow"} {
		t.Run(overlap, func(t *testing.T) {
			t.Parallel()
			model, release := blockingModel(t)
			e := open(t, filepath.Join(t.TempDir(), "s.db"), model)
			extra := ""
			if overlap == "allow" {
				extra = `,"overlap":"allow"`
			}
			w := create(t, e.db, scheduled("* * * * * *", extra))
			events, stop := e.exec.SubscribeAll()
			defer stop()
			if err := e.sched.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			first := waitStarted(t, events, w.ID)
			if overlap == "skip" {
				waitLog(t, e.logs, "tick skipped")
				list, err := e.db.ListExecutions(t.Context(), store.ExecutionFilter{WorkflowID: w.ID})
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != 1 || list[0].ID != first.ID {
					t.Fatalf("%d executions after a skipped tick, want only the first", len(list))
				}
			} else {
				for {
					x := waitStarted(t, events, w.ID)
					if x.ID != first.ID {
						break // a second run while the first is held by the model
					}
				}
			}
			release()
		})
	}
}

// TestMissedTickRunsOnceAtStart runs the scheduler over a real SQLite file
// twice, as a server restarted: a daily tick missed twice during the
// downtime starts one run at start, marked as a catch-up of the latest
// missed tick; the next start, with nothing missed, starts none. A
// workflow seen for the first time starts nothing.
func TestMissedTickRunsOnceAtStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "restart.db")
	first := open(t, path, llm.NewDemo())
	w := create(t, first.db, scheduled("0 3 * * *", ""))
	fresh := create(t, first.db, scheduled("0 3 * * *", ""))
	down := time.Now().UTC().Add(-50 * time.Hour)
	if err := first.db.SetLastTick(t.Context(), w.ID, down); err != nil {
		t.Fatal(err)
	}
	first.close(t)

	second := open(t, path, llm.NewDemo())
	sc := w.Schedule()
	latest := sc.Next(down)
	for n := sc.Next(latest); !n.After(time.Now()); n = sc.Next(n) {
		latest = n
	}
	if err := second.sched.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	list, err := second.db.ListExecutions(t.Context(), store.ExecutionFilter{WorkflowID: w.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%d runs at start after two missed ticks, want 1", len(list))
	}
	tr := list[0].Trigger
	if tr == nil || tr.Kind != workflow.TriggerSchedule || !tr.CatchUp || tr.ScheduledAt == nil || !tr.ScheduledAt.Equal(latest) {
		t.Fatalf("catch-up trigger = %+v, want the latest missed tick %v", tr, latest)
	}
	if others, _ := second.db.ListExecutions(t.Context(), store.ExecutionFilter{WorkflowID: fresh.ID}); len(others) != 0 {
		t.Errorf("a workflow with no tick recorded ran %d times at start", len(others))
	}
	if _, ok, _ := second.db.LastTick(t.Context(), fresh.ID); !ok {
		t.Error("the first start recorded no tick for the new workflow")
	}
	second.close(t)

	third := open(t, path, llm.NewDemo())
	if err := third.sched.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := third.db.CountExecutions(t.Context(), store.ExecutionFilter{WorkflowID: w.ID}); err != nil || n != 1 {
		t.Fatalf("%d runs after a start with nothing missed, want still 1 (%v)", n, err)
	}
}
