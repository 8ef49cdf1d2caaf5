package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
)

// benchStreams makes every sub-benchmark run use streams of its own, since the servers of
// ForEachB are shared between runs.
var benchStreams atomic.Int64

func benchQueue(b *testing.B, rdb *redis.Client, name string) *bus.TaskQueue {
	b.Helper()
	n := benchStreams.Add(1)
	q := bus.NewTaskQueue(rdb, bus.QueueOptions{Stream: fmt.Sprintf("bench:%s:%d", name, n), Group: "g"})
	if err := q.Ensure(b.Context()); err != nil {
		b.Fatal(err)
	}
	return q
}

var benchPayload = json.RawMessage(`{"prompt":"Summarise the input in one sentence.","model":"demo","temperature":0.2}`)

// BenchmarkTaskRoundTrip is one task's trip through a stream in one goroutine: Submit (XADD),
// Next (XREADGROUP, and an XAUTOCLAIM every 500 ms), Ack (XACK). Three round trips to Redis.
func BenchmarkTaskRoundTrip(b *testing.B) {
	bustest.ForEachB(b, func(b *testing.B, url string, ctl bustest.Controller) {
		ctx := b.Context()
		rdb := redis.NewClient(&redis.Options{Addr: ctl.Addr()})
		defer rdb.Close()
		q := benchQueue(b, rdb, "tasks")
		c := q.Consumer("w")
		task := bus.Task{Kind: bus.TypeTaskRequest, ExecutionID: "bench", NodeID: "n", Payload: benchPayload}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.Submit(ctx, task); err != nil {
				b.Fatal(err)
			}
			got, err := c.Next(ctx, 1)
			if err != nil || len(got) != 1 {
				b.Fatal(len(got), err)
			}
			if err := c.Ack(ctx, got[0].ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTaskResultRoundTrip is what running a node on a worker costs in transport: the
// server submits a task_request, a worker goroutine takes it, submits the task_response and
// acks, and the server takes the result and acks it.
func BenchmarkTaskResultRoundTrip(b *testing.B) {
	bustest.ForEachB(b, func(b *testing.B, url string, ctl bustest.Controller) {
		ctx, cancel := context.WithCancel(b.Context())
		defer cancel()
		rdb := redis.NewClient(&redis.Options{Addr: ctl.Addr()})
		defer rdb.Close()
		tasks, results := benchQueue(b, rdb, "tasks"), benchQueue(b, rdb, "results")
		done := make(chan struct{})
		go func() {
			defer close(done)
			w := tasks.Consumer("w")
			for {
				got, err := w.Next(ctx, 16)
				if err != nil {
					return // cancelled
				}
				for _, t := range got {
					res := bus.Task{Kind: bus.TypeTaskResponse, ExecutionID: t.ExecutionID, NodeID: t.NodeID,
						Attempt: t.RunAttempt(), Payload: t.Payload}
					if _, err := results.Submit(ctx, res); err != nil {
						return
					}
					if err := w.Ack(ctx, t.ID); err != nil {
						return
					}
				}
			}
		}()
		server := results.Consumer("server")
		task := bus.Task{Kind: bus.TypeTaskRequest, ExecutionID: "bench", NodeID: "n", Payload: benchPayload}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tasks.Submit(ctx, task); err != nil {
				b.Fatal(err)
			}
			got, err := server.Next(ctx, 1)
			if err != nil || len(got) != 1 {
				b.Fatal(len(got), err)
			}
			if err := server.Ack(ctx, got[0].ID); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cancel()
		<-done // the worker's last read returns within one Block
	})
}
