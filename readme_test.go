package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeSkips are the README's shell lines this test does not run, each
// with the reason. Every other line of every ```sh block runs.
var readmeSkips = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`^go run \.(\s|$)`), "starts the server; the test runs the whole program in-process with run() instead"},
	{regexp.MustCompile(`^go run \./bench`), "the benchmark program measures for minutes; .ci/run runs its -quick smoke run"},
	{regexp.MustCompile(`^go test -run '\^\$' -bench`), "benchmarks measure for minutes"},
	{regexp.MustCompile(`^go test \./\.\.\.`), "the test suite itself: running it from a test would recurse"},
	{regexp.MustCompile(`^redis-cli .*\bP?SUBSCRIBE\b`), "needs a terminal: it listens until interrupted"},
	{regexp.MustCompile(`^redis-cli .*\bPUBLISH agent:messages:node-\$EXEC-`), "talks to a running execution's agents: executor's TestREADMERedisCLI runs these lines with the real redis-cli while an execution waits"},
	{regexp.MustCompile(`^\./switchboard\s*(#|$)`), "starts the server"},
	{regexp.MustCompile(`^REDIS_URL=\S+ \./switchboard\s*(#|$)`), "starts the server"},
	{regexp.MustCompile(`^\./switchboard worker `), "starts a worker, which runs until interrupted: worker_process_test.go runs the binary as a server and two workers"},
	{regexp.MustCompile(`^redis-server `), "starts Redis, which runs until interrupted; the tests start their own"},
}

// readmeSubs are the changes made to a line before it runs, each with the
// reason.
var readmeSubs = []struct {
	old, new, why string
}{
	{"http://127.0.0.1:8000", "$SB_BASE", "the test's server listens on a free port"},
	{"-o switchboard ", `-o "$SB_TMP/switchboard" `, "the binary is built outside the work tree"},
	{"./switchboard ", `"$SB_TMP/switchboard" `, "the binary built by the line before"},
	{" [--mode simple|pubsub]", "", "notation for an optional argument"},
	{"my-workflow.json", "examples/01_qa.json", "the reader's own file"},
}

// readmePlaceholder is a line where the reader copies a field of the
// answer above: "ID=6a1f…   # the id from the answer above". The test
// copies it the same way.
var readmePlaceholder = regexp.MustCompile(`^(\w+)=\S*…\s+# the (\w+) from the answer above$`)

// readmeFragment is a "key":"value" pair that a "# → …" comment promises
// in the answer of the command above it.
var readmeFragment = regexp.MustCompile(`"\w+":"[^"…]*"`)

type readmeCommand struct {
	line   int    // in README.md, 1-based
	text   string // continuation lines joined, with their backslashes
	expect []string
}

// readmeShell returns the commands of README.md's ```sh blocks, block by
// block.
func readmeShell(t *testing.T) [][]readmeCommand {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks [][]readmeCommand
		in     bool
		cont   *readmeCommand
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in = true
			blocks = append(blocks, nil)
			continue
		case in && strings.TrimSpace(line) == "```":
			in = false
			continue
		case !in:
			continue
		}
		b := &blocks[len(blocks)-1]
		if cont != nil {
			cont.text += "\n" + line
			if !strings.HasSuffix(line, "\\") {
				*b = append(*b, *cont)
				cont = nil
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
		case strings.HasPrefix(trimmed, "# →"):
			if len(*b) > 0 {
				last := &(*b)[len(*b)-1]
				last.expect = append(last.expect, readmeFragment.FindAllString(trimmed, -1)...)
			}
		case strings.HasPrefix(trimmed, "#"):
		case strings.HasSuffix(line, "\\"):
			cont = &readmeCommand{line: n, text: line}
		default:
			*b = append(*b, readmeCommand{line: n, text: line})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestReadmeShellBlocks runs every line of the README's ```sh blocks with
// bash against the whole program, started in-process on a free port, so a
// README command that stops working fails the tests. Lines that start a
// server or need a terminal are in readmeSkips, with the reason. A curl
// that gets an HTTP error fails, a variable that a line sets must not be
// empty, and a "# → …" comment's "key":"value" pairs must be in the answer
// above it.
func TestReadmeShellBlocks(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but curl is missing: apt-get install -y curl")
		}
		t.Skip("curl is not installed (apt-get install -y curl)")
	}
	base := startServer(t, nil)
	var script strings.Builder
	// No pipe into a reader that stops early (head): under pipefail the
	// writer's SIGPIPE (exit 141) would fail the script whenever an answer
	// outgrows the pipe, as a finished execution's event stream does.
	script.WriteString(`set -euo pipefail
curl() { command curl --fail-with-body --max-time 60 "$@"; }
__field() { local m; m=$(printf '%s' "$__out" | grep -o "\"$1\":\"[^\"]*\"") || return 0; m=${m%%$'\n'*}; printf '%s' "$m" | cut -d'"' -f4; }
__out=
`)
	skipped := make([]int, len(readmeSkips))
	ran := 0
	for _, block := range readmeShell(t) {
	commands:
		for _, c := range block {
			cmd := strings.TrimSpace(c.text)
			for i, s := range readmeSkips {
				if s.re.MatchString(cmd) {
					skipped[i]++
					t.Logf("README.md:%d skipped (%s): %s", c.line, s.why, cmd)
					continue commands
				}
			}
			for _, s := range readmeSubs {
				cmd = strings.ReplaceAll(cmd, s.old, s.new)
			}
			fmt.Fprintf(&script, "echo '== README.md:%d' >&2\n", c.line)
			if m := readmePlaceholder.FindStringSubmatch(cmd); m != nil {
				fmt.Fprintf(&script, "%s=$(__field %s)\n", m[1], m[2])
				cmd = m[1] + "=…"
			} else if m := regexp.MustCompile(`^(\w+)=`).FindStringSubmatch(cmd); m != nil {
				script.WriteString(cmd + "\n")
			} else {
				fmt.Fprintf(&script, "__out=$(\n%s\n)\nprintf '%%s\\n' \"${__out:0:600}\" >&2\n", cmd)
				for _, want := range c.expect {
					fmt.Fprintf(&script, "case \"$__out\" in *%s*) ;; *) echo 'README.md:%d: the answer lacks %s' >&2; exit 1;; esac\n",
						shQuote(want), c.line, strings.ReplaceAll(want, "'", ""))
				}
			}
			if m := regexp.MustCompile(`^(\w+)=`).FindStringSubmatch(cmd); m != nil {
				fmt.Fprintf(&script, "[ -n \"$%s\" ] || { echo 'README.md:%d: %s is empty' >&2; exit 1; }\n", m[1], c.line, m[1])
			}
			ran++
		}
	}
	for i, n := range skipped {
		if n == 0 {
			t.Errorf("no README line is skipped because it %s: drop the rule", readmeSkips[i].why)
		}
	}
	if ran < 10 {
		t.Fatalf("only %d README lines to run; is the parser broken?", ran)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	env := []string{"SB_BASE=" + base, "SB_TMP=" + t.TempDir(), "SWITCHBOARD_DEMO_DELAY=0"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		// The program's own settings would point the commands elsewhere.
		if !strings.HasPrefix(k, "SWITCHBOARD_") && !strings.HasPrefix(k, "OPENAI_") && !strings.HasPrefix(k, "REDIS_") && !strings.HasPrefix(k, "SB_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's commands failed (%v); the script:\n%s\nits output:\n%s", err, script.String(), out)
	}
	t.Logf("%d README lines ran", ran)
}

// shQuote quotes s for bash as one word.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
