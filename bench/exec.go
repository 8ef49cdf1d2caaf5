package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// execs measures Q&A executions per second through the executor, one after
// another and 64 at a time.
func (b *bencher) execs(ctx context.Context) error {
	eng, err := b.openEngine(ctx, "exec")
	if err != nil {
		return err
	}
	defer eng.close()
	doc, err := qaDoc()
	if err != nil {
		return err
	}
	w, err := eng.store(ctx, doc)
	if err != nil {
		return err
	}
	ex := eng.executor(b, &benchModel{}, nil)
	once := func(ctx context.Context) error { return eng.execute(ctx, ex, w, executor.Options{}) }

	if _, _, err := throughput(ctx, 1, b.sc.execDuration/10, once); err != nil { // warm up
		return err
	}
	seq, seqCores, err := throughput(ctx, 1, b.sc.execDuration, once)
	if err != nil {
		return err
	}
	conc, cores, err := throughput(ctx, 64, b.sc.execDuration, once)
	if err != nil {
		return err
	}
	b.res.set("exec_per_s_seq", seq)
	b.res.set("exec_per_s_conc64", conc)
	b.res.set("exec_conc64_cpu_cores", cores)
	// CPU time per execution (the whole process: engine, store, GC) is what
	// the throughput figures are made of, and it is less disturbed than
	// they are by other work on a shared machine.
	b.res.set("exec_seq_cpu_us", seqCores/seq*1e6)
	b.res.set("exec_conc64_cpu_us", cores/conc*1e6)
	return nil
}

// throughput calls do from workers goroutines until d has passed and returns
// the calls per second and the CPU time the process used per second of wall
// time (2 means both cores busy).
func throughput(ctx context.Context, workers int, d time.Duration, do func(context.Context) error) (perS, cores float64, err error) {
	var (
		n     atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := do(ctx); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if first != nil {
		return 0, 0, first
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return float64(n.Load()) / elapsed, (cpuTime() - cpu0).Seconds() / elapsed, nil
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// chains measures the engine time per node of chains of 4, 64 and 512
// nodes, alternating the lengths in rounds (the first warms up).
func (b *bencher) chains(ctx context.Context) error {
	eng, err := b.openEngine(ctx, "chain")
	if err != nil {
		return err
	}
	defer eng.close()
	rec := &arrivals{purpose: llm.PurposeTask}
	ex := eng.executor(b, &benchModel{rec: rec}, nil)
	sizes := []int{4, 64, 512}
	wfs := map[int]*workflow.Workflow{}
	for _, n := range sizes {
		if wfs[n], err = eng.store(ctx, chainDoc(n)); err != nil {
			return err
		}
	}
	perNode := map[int][]time.Duration{}
	for round := 0; round <= b.sc.chainRounds; round++ {
		for _, n := range sizes {
			for range b.sc.chainRuns[n] {
				rec.take()
				if err := eng.execute(ctx, ex, wfs[n], executor.Options{}); err != nil {
					return err
				}
				ts := rec.take()
				if len(ts) != n {
					return fmt.Errorf("chain of %d: %d model calls", n, len(ts))
				}
				first := slices.MinFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
				last := slices.MaxFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
				if round > 0 {
					perNode[n] = append(perNode[n], last.Sub(first)/time.Duration(n-1))
				}
			}
		}
	}
	for _, n := range sizes {
		b.res.set(fmt.Sprintf("node_overhead_us_%d", n), us(percentile(perNode[n], 50)))
	}
	return nil
}

// overlap runs overlapN Q&A executions at once on a model that takes
// overlapLatency per call and compares the wall time with one execution
// alone (its critical path: four model calls in a row).
func (b *bencher) overlap(ctx context.Context) error {
	eng, err := b.openEngine(ctx, "overlap")
	if err != nil {
		return err
	}
	defer eng.close()
	doc, err := qaDoc()
	if err != nil {
		return err
	}
	w, err := eng.store(ctx, doc)
	if err != nil {
		return err
	}
	ex := eng.executor(b, &benchModel{latency: b.sc.overlapLatency}, nil)
	single := time.Duration(1<<63 - 1)
	for range 2 {
		t := time.Now()
		if err := eng.execute(ctx, ex, w, executor.Options{}); err != nil {
			return err
		}
		single = min(single, time.Since(t))
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := time.Now()
	for range b.sc.overlapN {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := eng.execute(ctx, ex, w, executor.Options{}); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d executions failed: %w", len(errs), b.sc.overlapN, errors.Join(errs[:min(3, len(errs))]...))
	}
	b.res.set("overlap_ratio_1000", wall.Seconds()/single.Seconds())
	b.res.set("overlap_single_ms", ms(single))
	b.res.set("overlap_wall_1000_ms", ms(wall))
	return nil
}
