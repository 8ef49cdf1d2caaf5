package executor_test

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"testing"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// heldModel blocks every call until release is closed (or the call's
// context ends), telling arrived of each call that waits.
type heldModel struct {
	arrived chan struct{}
	release chan struct{}
}

func (m *heldModel) Chat(ctx context.Context, r llm.Request) (llm.Response, error) {
	select {
	case m.arrived <- struct{}{}:
	case <-m.release:
	}
	select {
	case <-m.release:
	case <-ctx.Done():
		return llm.Response{}, ctx.Err()
	}
	return llm.Response{Content: "Done.", Model: "bench", Usage: llm.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}}, nil
}

// BenchmarkInflightMemory holds b.N Q&A executions (examples/01_qa.json)
// in flight, each waiting on its first model call, and reports the heap
// and goroutine stacks each one holds meanwhile: what a server keeps per
// execution while many wait on a slow model or on workers.
func BenchmarkInflightMemory(b *testing.B) {
	data, err := os.ReadFile("../examples/01_qa.json")
	if err != nil {
		b.Fatal(err)
	}
	w := benchParse(b, json.RawMessage(data))
	m := &heldModel{arrived: make(chan struct{}, 1024), release: make(chan struct{})}
	ex := executor.New(nopRecorder{}, m, nil, quietLogger(), executor.Config{})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60e9)
		defer cancel()
		_ = ex.Shutdown(ctx)
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	runs := make([]*executor.Run, b.N)
	for i := range runs {
		r, err := ex.Start(w, executor.Options{Mode: workflow.ModeSimple})
		if err != nil {
			b.Fatal(err)
		}
		runs[i] = r
	}
	for range b.N {
		<-m.arrived
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := float64(after.HeapAlloc+after.StackInuse) - float64(before.HeapAlloc+before.StackInuse)
	b.ReportMetric(held/float64(b.N), "B/inflight")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(b.N), "stackB/inflight")
	close(m.release)
	for _, r := range runs {
		if _, err := r.Wait(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
