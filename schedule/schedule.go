// Package schedule starts the runs of workflows that have a
// metadata.schedule, on the ticks of their cron expressions in their time
// zones, with robfig/cron. It keeps each workflow's last tick in the store,
// so that a tick missed while the server was down runs once when it starts
// again; and it skips a tick while the run the schedule started last is
// still going, unless the schedule allows overlap.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/workflow"
)

// Store is where the scheduler reads workflows and keeps their last ticks.
// store.DB satisfies it.
type Store interface {
	ListWorkflows(ctx context.Context, limit, offset int) ([]*workflow.Workflow, error)
	GetWorkflow(ctx context.Context, id string) (*workflow.Workflow, error)
	LastTick(ctx context.Context, id string) (time.Time, bool, error)
	SetLastTick(ctx context.Context, id string, at time.Time) error
}

// Runner starts executions. executor.Executor satisfies it.
type Runner interface {
	Start(wf *workflow.Workflow, opts executor.Options) (*executor.Run, error)
}

// Scheduler runs the schedules of the stored workflows. Create it with New,
// call Start once, Reload whenever a workflow is created, updated or
// deleted, and Stop at shutdown. It is safe for concurrent use.
type Scheduler struct {
	store  Store
	runner Runner
	logger *slog.Logger
	cron   *cron.Cron

	base   context.Context // of every tick's store calls; cancelled by Stop
	cancel context.CancelFunc

	mu      sync.Mutex
	entries map[string]*entry // by workflow id
}

// entry is one scheduled workflow.
type entry struct {
	cronID   cron.EntryID
	sched    *workflow.Schedule
	starting bool          // a tick is starting a run now
	last     *executor.Run // the run the schedule started last
}

// New returns a scheduler of the workflows in st that starts their runs
// with r. Nothing runs before Start.
func New(st Store, r Runner, logger *slog.Logger) *Scheduler {
	base, cancel := context.WithCancel(context.Background())
	cl := cronLogger{logger}
	return &Scheduler{
		store: st, runner: r, logger: logger, base: base, cancel: cancel, entries: map[string]*entry{},
		cron: cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cl), cron.WithChain(cron.Recover(cl))),
	}
}

// Start schedules every stored workflow that has a schedule, starts once
// those whose tick came due while the server was down (since the last tick
// recorded; the run's trigger has the latest such tick and catch_up), and
// starts the clock. It fails when the workflows cannot be
// read.
func (s *Scheduler) Start(ctx context.Context) error {
	const pageSize = 500
	now := time.Now().UTC()
	var due []func()
	for off := 0; ; off += pageSize {
		list, err := s.store.ListWorkflows(ctx, pageSize, off)
		if err != nil {
			return fmt.Errorf("read scheduled workflows: %w", err)
		}
		for _, w := range list {
			sc := w.Schedule()
			if sc == nil {
				continue
			}
			last, ok, err := s.store.LastTick(ctx, w.ID)
			if err != nil {
				return fmt.Errorf("read last tick of workflow %s: %w", w.ID, err)
			}
			if !ok {
				// First seen now: ticks count from here.
				if err := s.store.SetLastTick(ctx, w.ID, now); err != nil {
					return err
				}
				last = now
			}
			s.put(w.ID, sc)
			if missed := latestDue(sc, last, now); !missed.IsZero() {
				id := w.ID
				s.logger.Info("schedule: a tick came due while the server was down; running it once now",
					"workflow_id", id, "scheduled_at", missed, "last_tick", last)
				due = append(due, func() { s.tick(id, missed, true) })
			}
		}
		if len(list) < pageSize {
			break
		}
	}
	s.cron.Start()
	for _, f := range due {
		f()
	}
	return nil
}

// latestDue returns the last tick of sc after last and at or before now,
// or the zero time when none is due. A schedule of seconds down for days
// has many; past a thousand it gives now, which no tick follows either.
func latestDue(sc *workflow.Schedule, last, now time.Time) time.Time {
	t := sc.Next(last)
	if t.IsZero() || t.After(now) {
		return time.Time{}
	}
	for range 1000 {
		n := sc.Next(t)
		if n.IsZero() || n.After(now) {
			return t
		}
		t = n
	}
	return now
}

// Reload schedules workflow id as it is stored now: added, changed, or
// removed when it has no schedule any more or was deleted. A new or changed
// schedule counts its ticks from now. Failures are logged; the workflow
// keeps its previous schedule then.
func (s *Scheduler) Reload(ctx context.Context, id string) {
	w, err := s.store.GetWorkflow(ctx, id)
	if workflow.ErrorCode(err) == workflow.CodeNotFound {
		s.remove(id)
		return
	}
	if err != nil {
		s.logger.Error("schedule: could not read the workflow to reload its schedule", "workflow_id", id, "err", err)
		return
	}
	sc := w.Schedule()
	if sc == nil {
		s.remove(id)
		return
	}
	s.mu.Lock()
	var old *workflow.Schedule
	if e := s.entries[id]; e != nil {
		old = e.sched
	}
	s.mu.Unlock()
	if old == nil || old.Cron != sc.Cron || old.Timezone != sc.Timezone {
		if err := s.store.SetLastTick(ctx, id, time.Now().UTC()); err != nil {
			s.logger.Error("schedule: could not record the start of a new schedule", "workflow_id", id, "err", err)
		}
	}
	s.put(id, sc)
}

// put schedules workflow id with sc in place of any schedule it had,
// keeping what it knows of the run it started last.
func (s *Scheduler) put(id string, sc *workflow.Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		e = &entry{}
		s.entries[id] = e
	} else {
		s.cron.Remove(e.cronID)
	}
	e.sched = sc
	e.cronID = s.cron.Schedule(sc.CronSchedule(), cron.FuncJob(func() { s.fire(id) }))
	s.logger.Info("schedule: workflow scheduled", "workflow_id", id, "cron", sc.Cron, "timezone", sc.Location.String(),
		"overlap", sc.Overlap, "next", sc.Next(time.Now()))
}

func (s *Scheduler) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[id]; e != nil {
		s.cron.Remove(e.cronID)
		delete(s.entries, id)
		s.logger.Info("schedule: workflow unscheduled", "workflow_id", id)
	}
}

// Next returns the time of workflow id's next scheduled run, in UTC, and
// false when it has no schedule.
func (s *Scheduler) Next(id string) (time.Time, bool) {
	s.mu.Lock()
	e := s.entries[id]
	var sc *workflow.Schedule
	if e != nil {
		sc = e.sched
	}
	s.mu.Unlock()
	if sc == nil {
		return time.Time{}, false
	}
	n := sc.Next(time.Now())
	return n, !n.IsZero()
}

// fire is the cron job of workflow id: the tick it stands for is the
// entry's Prev, which cron sets before it answers Entry.
func (s *Scheduler) fire(id string) {
	s.mu.Lock()
	e := s.entries[id]
	var cronID cron.EntryID
	if e != nil {
		cronID = e.cronID
	}
	s.mu.Unlock()
	if e == nil {
		return
	}
	at := s.cron.Entry(cronID).Prev
	if at.IsZero() {
		at = time.Now()
	}
	s.tick(id, at.UTC().Truncate(time.Second), false)
}

// tick starts a run of workflow id for the tick at, unless the run it
// started last is still going and the schedule skips overlaps.
func (s *Scheduler) tick(id string, at time.Time, catchUp bool) {
	ctx := s.base
	s.mu.Lock()
	e := s.entries[id]
	if e == nil {
		s.mu.Unlock()
		return
	}
	if e.sched.Overlap != workflow.OverlapAllow && (e.starting || e.last != nil && running(e.last)) {
		prev := ""
		if e.last != nil {
			prev = e.last.ID
		}
		s.mu.Unlock()
		s.logger.Info("schedule: tick skipped: the previous scheduled run is still going", "workflow_id", id,
			"scheduled_at", at, "running_execution_id", prev)
		s.setLastTick(ctx, id, at)
		return
	}
	e.starting = true
	s.mu.Unlock()
	run := s.start(ctx, id, at, catchUp)
	s.mu.Lock()
	e.starting = false
	if run != nil {
		e.last = run
	}
	s.mu.Unlock()
}

func (s *Scheduler) start(ctx context.Context, id string, at time.Time, catchUp bool) *executor.Run {
	// The tick is recorded before the run starts: a crash during the run
	// marks it interrupted, and must not start it again at the next start.
	s.setLastTick(ctx, id, at)
	w, err := s.store.GetWorkflow(ctx, id)
	if err != nil {
		s.logger.Error("schedule: could not read the workflow to run it", "workflow_id", id, "scheduled_at", at, "err", err)
		return nil
	}
	scheduled := at
	run, err := s.runner.Start(w, executor.Options{Trigger: &workflow.Trigger{Kind: workflow.TriggerSchedule, ScheduledAt: &scheduled, CatchUp: catchUp}})
	if err != nil {
		s.logger.Error("schedule: could not start a scheduled run", "workflow_id", id, "scheduled_at", at, "err", err)
		return nil
	}
	if err := run.Stored(ctx); err != nil {
		s.logger.Error("schedule: could not record a scheduled run", "workflow_id", id, "execution_id", run.ID, "err", err)
		return run
	}
	s.logger.Info("schedule: run started", "workflow_id", id, "execution_id", run.ID, "scheduled_at", at, "catch_up", catchUp)
	return run
}

func (s *Scheduler) setLastTick(ctx context.Context, id string, at time.Time) {
	if err := s.store.SetLastTick(ctx, id, at); err != nil {
		s.logger.Error("schedule: could not record the tick", "workflow_id", id, "scheduled_at", at, "err", err)
	}
}

func running(r *executor.Run) bool {
	select {
	case <-r.Done():
		return false
	default:
		return true
	}
}

// Stop stops the clock and waits, until ctx is done, for the ticks that
// are starting runs; the runs themselves go on (the executor's shutdown
// ends them). It returns ctx's error if ctx ended first.
func (s *Scheduler) Stop(ctx context.Context) error {
	stopped := s.cron.Stop()
	defer s.cancel()
	select {
	case <-stopped.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cronLogger hands robfig/cron's log lines to slog.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
