package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/pricing"
	"github.com/switchboard-dev/switchboard/workflow"
)

// inputFlags collects repeated --input key=value flags.
type inputFlags map[string]any

func (f inputFlags) String() string { return "" }
func (f inputFlags) Set(s string) error {
	k, v, ok := splitKV(s)
	if !ok {
		return fmt.Errorf("want key=value, got %q", s)
	}
	f[k] = v
	return nil
}

func readWorkflowFile(path string) (*workflow.Workflow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read workflow file: %w", err)
	}
	return workflow.Parse(data)
}

func validateFile(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: switchboard validate FILE")
	}
	w, err := readWorkflowFile(args[0])
	if err != nil {
		if ps := workflow.ErrorProblems(err); len(ps) > 0 {
			fmt.Fprintf(stdout, "%s: %d problem(s)\n", args[0], len(ps))
			for _, p := range ps {
				fmt.Fprintf(stdout, "  %s\n", p)
			}
			return fmt.Errorf("%s is invalid", args[0])
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: ok, %q with %d nodes and %d edges, %s mode\n", args[0], w.Name, len(w.Nodes), len(w.Edges), w.Mode())
	return nil
}

// runFile runs one workflow file with a throw-away database (or --data's)
// and prints progress and the conversation as they happen.
func runFile(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	inputs := inputFlags{}
	fs.Var(inputs, "input", "an input as key=value (repeatable); overrides the workflow's variable of that name")
	mode := fs.String("mode", "", "communication mode: simple or pubsub (default: the workflow's)")
	placement := fs.String("placement", "", "where pubsub agents run: auto (on the workers sharing the Redis, if any) or local")
	data := fs.String("data", "", "directory for the database (default: a temporary one, removed afterwards)")
	logLevel := fs.String("log-level", envOr(getenv, "SWITCHBOARD_LOG_LEVEL", "warn"), "debug, info, warn or error")
	var bc busConfig
	addBusFlags(fs, getenv, &bc)
	var hc executor.HTTPConfig
	if err := addHTTPFlags(fs, getenv, &hc); err != nil {
		return err
	}
	var mc executor.MCPConfig
	if err := addMCPFlags(fs, getenv, &mc); err != nil {
		return err
	}
	var prices *pricing.Table
	if err := addPricesFlag(fs, getenv, &prices); err != nil {
		return err
	}
	var sc executor.SMTPConfig
	if err := addSMTPFlags(fs, getenv, &sc); err != nil {
		return err
	}
	// Accept the file before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Flags may also follow the file: parse what comes after it too.
	for fs.NArg() > 0 {
		if file != "" {
			return fmt.Errorf("run takes one file, got also %q", fs.Arg(0))
		}
		file = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if err := checkSMTP(&sc); err != nil {
		return err
	}
	if file == "" {
		return fmt.Errorf("usage: switchboard run FILE [--input key=value]... [--mode simple|pubsub]")
	}
	logger, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	w, err := readWorkflowFile(file)
	if err != nil {
		return err
	}
	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "switchboard-run-")
		if err != nil {
			return fmt.Errorf("make temporary data directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if bc.redisURL == "" && *mode != "pubsub" && w.Mode() != "pubsub" {
		// Simple mode needs no Redis: don't take the embedded port for nothing.
		bc.embeddedAddr = "127.0.0.1:0"
	}
	a, err := openApp(ctx, dir, bc, executor.Config{HTTP: hc, MCP: mc, Prices: prices, SMTP: sc}, getenv, logger)
	if err != nil {
		return err
	}
	defer a.close()
	// Pubsub agents go to the workers sharing the Redis, as with the server.
	workersCtx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	if err := a.exec.UseWorkers(workersCtx, a.bus.Client(), executor.WorkerOptions{}); err != nil {
		return fmt.Errorf("worker mode: %w", err)
	}
	if err := a.db.CreateWorkflow(ctx, w); err != nil {
		return fmt.Errorf("store workflow: %w", err)
	}
	events, stop := a.exec.SubscribeAll()
	defer stop()
	r, err := a.exec.Start(w, executor.Options{Inputs: inputs, Mode: *mode, Placement: *placement, Trigger: &workflow.Trigger{Kind: workflow.TriggerCLI}})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Running %q (execution %s)\n", w.Name, r.ID)
	desk := newConsoleDesk(a.exec, r.ID, stdin, stdout)
	defer desk.close()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for ev := range events {
			if ev.ExecutionID == r.ID {
				printEvent(stdout, ev)
				if ev.Kind == workflow.EventExecution && ev.Execution.Status == workflow.ExecWaiting {
					desk.waiting(ev.Execution.Waiting)
				}
			}
			if ev.Kind == workflow.EventExecution && ev.ExecutionID == r.ID && workflow.Terminal(ev.Execution.Status) {
				return
			}
		}
	}()
	go func() { // a second Ctrl-C is not needed: cancel on the first
		<-ctx.Done()
		a.exec.Cancel(r.ID)
	}()
	status, err := r.Wait(context.Background())
	<-printed
	if err != nil {
		return err
	}
	x, err := a.db.GetExecution(context.Background(), r.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nExecution %s: %s (mode %s", x.ID, x.Status, x.Mode)
	if x.FallbackReason != "" {
		fmt.Fprintf(stdout, ", fell back from pubsub: %s", x.FallbackReason)
	}
	approx := ""
	if x.Usage.Estimated {
		approx = "≈ "
	}
	fmt.Fprintf(stdout, ", %s%d tokens, %s)\n", approx, x.Usage.TotalTokens, costText(x))
	if status != workflow.ExecSuccess {
		return fmt.Errorf("execution ended with status %s: %s", status, x.Error)
	}
	return nil
}

func printEvent(w io.Writer, ev workflow.Event) {
	switch ev.Kind {
	case workflow.EventNode:
		n := ev.Node
		switch n.Status {
		case workflow.NodeRunning:
			fmt.Fprintf(w, "▶ %s started\n", n.NodeID)
		case workflow.NodeCompleted:
			fmt.Fprintf(w, "✔ %s completed", n.NodeID)
			if s, ok := n.Output.(string); ok {
				fmt.Fprintf(w, ":\n%s\n", indent(s))
			} else {
				data, _ := json.Marshal(n.Output)
				fmt.Fprintf(w, " → %s\n", data)
			}
		case workflow.NodeSkipped: // a branch not taken, or after a failure: the reason says which
			fmt.Fprintf(w, "↷ %s skipped: %s\n", n.NodeID, strings.TrimPrefix(n.Error, "skipped: "))
		case workflow.NodeError, workflow.NodeCancelled:
			fmt.Fprintf(w, "✘ %s %s: %s\n", n.NodeID, n.Status, n.Error)
		}
	case workflow.EventMessage:
		m := ev.Message
		switch m.Type {
		case workflow.CommAsk:
			fmt.Fprintf(w, "  %s → %s  ask: %s\n", m.From, m.To, m.Content)
		case workflow.CommResponse:
			if m.Metadata["success"] == false {
				fmt.Fprintf(w, "  %s → %s  no answer: %v\n", m.From, m.To, m.Metadata["error"])
			} else {
				fmt.Fprintf(w, "  %s → %s  answer: %s\n", m.From, m.To, m.Content)
			}
		case workflow.CommBroadcast:
			fmt.Fprintf(w, "  %s → all  broadcast: %s\n", m.From, m.Content)
		case workflow.CommContext:
			fmt.Fprintf(w, "  %s sets shared %s\n", m.From, m.Content)
		case workflow.CommToolCall:
			fmt.Fprintf(w, "  %s calls the tool %v\n", m.From, m.Metadata["tool"])
		}
	case workflow.EventLog:
		if ev.Log.Level == "warning" || ev.Log.Level == "error" {
			fmt.Fprintf(w, "  ! %s\n", ev.Log.Message)
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}
