package executor

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/metrics"
)

// QueueDepths reads worker mode's queues for the metrics: the workers
// alive (the listing placement uses, at most a second old) and, in one
// round trip, the length of each one's task stream and of this server's
// result stream. It fails without worker mode (UseWorkers) or when Redis
// cannot be reached before ctx ends. Safe for concurrent use.
func (e *Executor) QueueDepths(ctx context.Context) (metrics.Queues, error) {
	p := e.workerPool()
	if p == nil {
		return metrics.Queues{}, errors.New("worker mode is off")
	}
	live, err := p.liveWorkers(ctx)
	if err != nil {
		return metrics.Queues{}, fmt.Errorf("list workers: %w", err)
	}
	pipe := p.rdb.Pipeline()
	tasks := make([]*redis.IntCmd, len(live))
	for i, w := range live {
		tasks[i] = pipe.XLen(ctx, bus.WorkerTasksStream(w.Name))
	}
	results := pipe.XLen(ctx, p.results.Stream())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return metrics.Queues{}, fmt.Errorf("read stream lengths: %w", err)
	}
	q := metrics.Queues{Workers: len(live), Tasks: make(map[string]int64, len(live)), Results: results.Val()}
	for i, w := range live {
		q.Tasks[w.Name] = tasks[i].Val()
	}
	return q, nil
}
