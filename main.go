// Command switchboard stores AI multi-agent workflows in SQLite and runs
// them, serving a JSON API and a dashboard.
//
//	switchboard [serve] [--addr 127.0.0.1:8000] [--data ./switchboard-data]
//	switchboard run FILE [--input key=value]... [--mode simple|pubsub]
//	switchboard worker --redis-url URL [--concurrency 16] [--name NAME] [--health-addr ADDR]
//	switchboard validate FILE
//	switchboard version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// version is the release of this binary.
const version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// go-redis logs every failed dial through a process-wide logger; the bus
	// reports Redis being down itself, once, so these lines are only noise.
	redis.SetLogger(quietRedisLog{})
	if err := runWith(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

// run is the whole program with no input; end-to-end tests call it with
// their own arguments, environment and outputs. It returns when ctx is done
// (serve) or the command has finished.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, getenv, nil, stdout, stderr)
}

// runWith is run with an input, where `switchboard run` reads a person's
// answers (a human node's question, a budget approval); nil is no input.
func runWith(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "run":
		return runFile(ctx, args, getenv, stdin, stdout, stderr)
	case "worker":
		return worker(ctx, args, getenv, stdout, stderr)
	case "validate":
		return validateFile(args, stdout)
	case "version":
		fmt.Fprintln(stdout, "switchboard", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  switchboard [serve] [flags]        serve the API and dashboard (default)
  switchboard run FILE [flags]       run a workflow file once and print the conversation
  switchboard worker --redis-url URL host agents of pubsub executions for a server on that Redis
  switchboard validate FILE          check a workflow file and print its problems
  switchboard version                print the version
Run "switchboard serve -h", "switchboard run -h" or "switchboard worker -h" for flags.
`

// quietRedisLog drops go-redis's internal log lines.
type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...interface{}) {}
