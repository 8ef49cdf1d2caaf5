package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// answerer is what the console desk needs of the executor.
type answerer interface {
	Answer(id, nodeID, answer string) error
	Approve(id string, extraTokens int, extraUSD float64) error
	Stop(id string) error
}

// consoleDesk answers, for `switchboard run`, what an execution waits for:
// it prints a human node's question or a budget stop and reads the answer
// from the input, a line at a time. With no input (or at its end) nobody
// can answer: a question with a default answer waits for it, anything
// else stops the execution rather than leave it waiting with no one to see
// it.
type consoleDesk struct {
	ex    answerer
	id    string
	out   io.Writer
	lines chan string // the input's lines; closed at its end
	wake  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	queue []workflow.Wait
	asked map[string]bool
}

func newConsoleDesk(ex answerer, id string, in io.Reader, out io.Writer) *consoleDesk {
	d := &consoleDesk{ex: ex, id: id, out: out, lines: make(chan string), wake: make(chan struct{}, 1),
		done: make(chan struct{}), asked: map[string]bool{}}
	go d.read(in)
	go d.serve()
	return d
}

// read hands the input's lines to serve; it may stay blocked on a
// terminal after the run ends, which the process's exit ends.
func (d *consoleDesk) read(in io.Reader) {
	defer close(d.lines)
	if in == nil {
		return
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		select {
		case d.lines <- strings.TrimSpace(sc.Text()):
		case <-d.done:
			return
		}
	}
}

// waiting takes the execution's open waits as its header lists them, every
// time it changes; each wait is asked once, in order. It never blocks the
// caller, which prints the execution's events.
func (d *consoleDesk) waiting(ws []workflow.Wait) {
	d.mu.Lock()
	for _, w := range ws {
		key := w.NodeID
		if w.Reason == workflow.WaitBudget {
			key = workflow.WaitBudget + "@" + w.Since.String()
		}
		if !d.asked[key] {
			d.asked[key] = true
			d.queue = append(d.queue, w)
		}
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *consoleDesk) close() { close(d.done) }

func (d *consoleDesk) serve() {
	for {
		select {
		case <-d.done:
			return
		case <-d.wake:
		}
		for {
			d.mu.Lock()
			if len(d.queue) == 0 {
				d.mu.Unlock()
				break
			}
			w := d.queue[0]
			d.queue = d.queue[1:]
			d.mu.Unlock()
			d.ask(w)
		}
	}
}

// ask asks the person for one wait until an answer is taken or the input
// ends.
func (d *consoleDesk) ask(w workflow.Wait) {
	for {
		if w.Reason == workflow.WaitBudget {
			fmt.Fprintf(d.out, "? The execution is over its budget (%s). More tokens, or $ and more US dollars (empty: stop): ", budgetText(w))
		} else {
			fmt.Fprintf(d.out, "? %s asks: %s", cmp.Or(w.AskedBy, w.NodeID), w.Question)
			if w.Input == workflow.HumanChoice {
				fmt.Fprintf(d.out, " [%s]", strings.Join(w.Choices, " / "))
			}
			fmt.Fprint(d.out, "\n> ")
		}
		var line string
		var ok bool
		select {
		case line, ok = <-d.lines:
		case <-d.done:
			return
		}
		if !ok && w.Reason == workflow.WaitHuman && w.Deadline != nil && w.Default != nil {
			fmt.Fprintf(d.out, "\n  nobody can answer here (no more input): the answer is %q at %s\n", *w.Default, w.Deadline.Local().Format(time.TimeOnly))
			return
		}
		if !ok {
			fmt.Fprintln(d.out, "\n  nobody can answer here (no more input): stopping the execution")
			if err := d.ex.Stop(d.id); err != nil {
				fmt.Fprintf(d.out, "  ! %v\n", err)
			}
			return
		}
		err := d.answer(w, line)
		if err == nil {
			return
		}
		fmt.Fprintf(d.out, "  ! %s\n", problemText(err))
	}
}

func (d *consoleDesk) answer(w workflow.Wait, line string) error {
	if w.Reason != workflow.WaitBudget {
		return d.ex.Answer(d.id, w.NodeID, line)
	}
	if line == "" {
		return d.ex.Stop(d.id)
	}
	if usd, ok := strings.CutPrefix(line, "$"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(usd), 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("%q is not an amount of US dollars", usd)
		}
		return d.ex.Approve(d.id, 0, f)
	}
	n, err := strconv.Atoi(line)
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a number of tokens (write $0.50 for dollars)", line)
	}
	return d.ex.Approve(d.id, n, 0)
}

func budgetText(w workflow.Wait) string {
	var parts []string
	if w.TokenBudget > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens used of %d", w.TokensUsed, w.TokenBudget))
	}
	if w.BudgetUSD > 0 {
		parts = append(parts, fmt.Sprintf("%s spent of %s", workflow.FormatUSD(w.SpentUSD), workflow.FormatUSD(w.BudgetUSD)))
	}
	return strings.Join(parts, ", ")
}

// problemText is an error as a person at the console reads it: the
// message, and each problem with its path.
func problemText(err error) string {
	var we *workflow.Error
	if !errors.As(err, &we) || len(we.Problems) == 0 {
		return err.Error()
	}
	parts := []string{we.Message}
	for _, p := range we.Problems {
		parts = append(parts, p.Path+": "+p.Message)
	}
	return strings.Join(parts, "; ")
}
