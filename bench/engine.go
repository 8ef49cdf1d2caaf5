package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/examples"
	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// engine is a store in the run's temp dir and the executors running on it.
type engine struct {
	db    *store.DB
	execs []*executor.Executor
}

func (b *bencher) openEngine(ctx context.Context, name string) (*engine, error) {
	db, err := store.Open(ctx, filepath.Join(b.dir, name, "switchboard.db"), b.logger)
	if err != nil {
		return nil, err
	}
	return &engine{db: db}, nil
}

// executor returns a new executor on the engine's store; ps may be nil.
func (e *engine) executor(b *bencher, model executor.LLM, ps executor.PubSub) *executor.Executor {
	ex := executor.New(e.db, model, ps, b.logger, executor.Config{})
	e.execs = append(e.execs, ex)
	return ex
}

// close stops the executors (each waits for its executions), then closes
// the store.
func (e *engine) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ex := range e.execs {
		_ = ex.Shutdown(ctx)
	}
	return e.db.Close()
}

// store parses doc and stores it, as an import through the API would.
func (e *engine) store(ctx context.Context, doc []byte) (*workflow.Workflow, error) {
	w, err := workflow.Parse(doc)
	if err != nil {
		return nil, err
	}
	if err := e.db.CreateWorkflow(ctx, w); err != nil {
		return nil, err
	}
	return w, nil
}

// qaDoc is the example Q&A workflow: start → student (asks the teacher) →
// teacher → end.
func qaDoc() ([]byte, error) {
	return examples.FS.ReadFile("01_qa.json")
}

// execute runs w once and fails unless it succeeds.
func (e *engine) execute(ctx context.Context, ex *executor.Executor, w *workflow.Workflow, opts executor.Options) error {
	r, err := ex.Start(w, opts)
	if err != nil {
		return err
	}
	status, err := r.Wait(ctx)
	if err != nil {
		return err
	}
	if status != workflow.ExecSuccess {
		why := ""
		if x, err := e.db.GetExecution(ctx, r.ID); err == nil {
			why = x.Error
		}
		return fmt.Errorf("execution %s of %q ended %s: %s", r.ID, w.Name, status, why)
	}
	return nil
}

// askDoc is a workflow whose asker makes n asks of the answerer in a row.
func askDoc(n int, mode string) []byte {
	var prompt strings.Builder
	for i := range n {
		fmt.Fprintf(&prompt, "CALL: ask_node('answerer', 'Question %d: what is the next step?')\n", i+1)
	}
	doc := map[string]any{
		"name": "bench: " + fmt.Sprint(n) + " asks",
		// The loop guards would refuse the sixth ask between the same two nodes.
		"metadata": map[string]any{"communication_mode": mode, "max_asks": n + 1, "max_asks_per_pair": n + 1, "max_llm_calls": 4 * n},
		"nodes": []any{
			map[string]any{"id": "start", "type": "start"},
			map[string]any{"id": "asker", "type": "ai-processor", "config": map[string]any{
				"name": "Asker", "system_prompt": "You ask questions.", "prompt": prompt.String(), "can_communicate": true}},
			map[string]any{"id": "answerer", "type": "ai-processor", "config": map[string]any{
				"name": "Answerer", "system_prompt": "You answer questions briefly.", "can_communicate": true}},
		},
		"edges": []any{
			map[string]any{"from": "start", "to": "asker"},
			map[string]any{"from": "asker", "to": "answerer"},
		},
	}
	data, _ := json.Marshal(doc)
	return data
}

// chainDoc is a chain of n ai-processor nodes, each prompt rendering the
// previous node's output.
func chainDoc(n int) []byte {
	nodes := make([]any, 0, n)
	edges := make([]any, 0, n)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		prompt := "Step 1: begin."
		if i > 0 {
			prev := fmt.Sprintf("n%d", i)
			prompt = fmt.Sprintf("Step %d: continue from {{outputs.%s}}.", i+1, prev)
			edges = append(edges, map[string]any{"from": prev, "to": id})
		}
		nodes = append(nodes, map[string]any{"id": id, "type": "ai-processor", "config": map[string]any{
			"name": "Step " + fmt.Sprint(i+1), "system_prompt": "You do one step.", "prompt": prompt}})
	}
	doc := map[string]any{"name": fmt.Sprintf("bench: chain of %d", n), "nodes": nodes, "edges": edges,
		"metadata": map[string]any{"max_llm_calls": n}} // the default guard allows 200 model calls
	data, _ := json.Marshal(doc)
	return data
}
