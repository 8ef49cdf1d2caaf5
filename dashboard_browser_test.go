package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm/llmtest"
)

// These tests drive the dashboard in Debian's Chromium against the whole
// program, started in-process by startServer. They never sleep: they wait
// for the page with chromedp's WaitVisible and Poll, each with a deadline.

const chromiumPath = "/usr/bin/chromium"

// browser is one headless Chromium with a fresh profile, and what the test
// watches in it: JavaScript dialogs and uncaught exceptions.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string

	loaded bool // a page was loaded: do waits for it to settle first

	mu         sync.Mutex
	dialogs    []string
	exceptions []string
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: %v", chromiumPath, err)
		}
		t.Skipf("skipping: %s not found; install it with: apt-get install -y chromium", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, shots: os.Getenv("SWITCHBOARD_SCREENSHOTS")}
	if b.shots == "" {
		b.shots = t.TempDir()
	} else if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.mu.Lock()
			b.dialogs = append(b.dialogs, e.Type.String()+": "+e.Message)
			b.mu.Unlock()
		case *cdplog.EventEntryAdded:
			// A Content-Security-Policy violation, or a static file that
			// failed to load, is a bug of the page. (Failed form posts
			// are logged too; they are expected in some tests.)
			en := e.Entry
			static := en.Source == cdplog.EntrySourceNetwork && (strings.Contains(en.URL, "/ui/static/") || strings.Contains(en.URL, "favicon"))
			if en.Level == cdplog.EntryLevelError && (en.Source == cdplog.EntrySourceSecurity || static) {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, fmt.Sprintf("%s: %s (%s)", en.Source, en.Text, en.URL))
				b.mu.Unlock()
			}
		case *runtime.EventExceptionThrown:
			b.mu.Lock()
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			b.exceptions = append(b.exceptions, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.exceptions {
			t.Errorf("page error: %s", e)
		}
	})
	return b
}

// settledJS is true once the page has loaded and htmx is done with every
// request and swap. htmx processes swapped-in content (its hx-post,
// hx-confirm, boosted links) only when the swap settles, 20 ms after it or
// later on a busy machine; until then the new content is visible but inert,
// and a click on one of its buttons submits the form without htmx (no
// confirmation, a page reload). Each stage has its documented class: the
// indicator's htmx-request while a request is in flight, htmx-swapping,
// htmx-settling on the target and htmx-added on new content until it is
// processed. A page is complete only after its deferred scripts ran and
// htmx processed it on DOMContentLoaded.
const settledJS = `document.readyState === 'complete' &&
	!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')`

// settled waits until the page is settled (settledJS).
func settled(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
	return chromedp.Poll[chromedp.Void](settledJS, chromedp.WithPollingTimeout(0), chromedp.WithPollingInterval(20*time.Millisecond))(ctx, t)
}

// do runs actions with a deadline, on a settled page: what the step before
// made appear is processed before these actions click it. (It does not
// wait for the page to settle after them: a live page may swap for as long
// as its run goes on, and the next step may want to watch it.)
func (b *browser) do(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if b.loaded { // the browser's first, blank target has no page to wait for
		actions = append([]chromedp.Action[chromedp.Void]{settled}, actions...)
	}
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + safeName(what))
		b.t.Fatalf("%s: %v (screenshot in %s)\n%s", what, err, b.shots, b.pageState())
	}
	b.loaded = true
}

// pageState describes the page for a failure message: its address, the
// execution's status and the last lines of its log when it shows one. The
// screenshot is gone with the test's temporary directory, this stays in
// the output.
func (b *browser) pageState() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const text = sel => { const e = document.querySelector(sel); return e ? e.textContent.replace(/\s+/g, ' ').trim() : '(none)'; };
		const logs = [...document.querySelectorAll('#logs li')].slice(-15).map(li => li.textContent.replace(/\s+/g, ' ').trim());
		return 'page ' + location.pathname + '; status ' + text('#exec-status') +
			'; timeline rows [' + [...document.querySelectorAll('#timeline .tl-row')].map(e => e.getAttribute('class')).join(', ') + ']' +
			'; messages [' + [...document.querySelectorAll('#messages li')].map(e => e.id + ' ' + e.dataset.kind).join(', ') + ']' +
			'\nlast log lines:\n' + logs.join('\n');
	})()`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return state
}

// waitJS waits until the JavaScript expression is truthy.
func (b *browser) waitJS(what, expr string, timeout time.Duration) {
	b.t.Helper()
	b.do(what, timeout+5*time.Second, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))(ctx, t)
		return chromedp.Void{}, err
	})
}

func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// paste puts text into the focused field as a paste does: one insertion,
// with the input events a paste fires.
func paste(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// shot saves a screenshot of the whole page.
func (b *browser) shot(name string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

func (b *browser) dialogCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.dialogs)
}

func safeName(s string) string {
	return strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// back presses the browser's back button (the previous history entry, one
// that htmx pushed) and waits until htmx has restored that page. htmx keeps
// no history cache here (historyCacheSize 0), so it fetches the page; its
// request shows no indicator, and a second back while it is in flight would
// have the first page swapped in under the second one's address.
func (b *browser) back() {
	b.t.Helper()
	restored := evalJS[int](b, `(() => {
		if (!window.__restoreWatch) {
			window.__restoreWatch = true;
			window.__restores = 0;
			document.addEventListener('htmx:historyRestore', () => { window.__restores++; });
		}
		return window.__restores;
	})()`)
	b.do("go back", 10*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		h, err := chromedp.Call(ctx, page.GetNavigationHistory, cdp.Empty{})
		if err != nil {
			return err
		}
		if h.CurrentIndex < 1 {
			return fmt.Errorf("no history to go back to")
		}
		_, err = chromedp.Call(ctx, page.NavigateToHistoryEntry, page.NavigateToHistoryEntryParams{EntryID: h.Entries[h.CurrentIndex-1].ID})
		return err
	}))
	b.waitJS("htmx restored the page", fmt.Sprintf(`window.__restores > %d`, restored), 10*time.Second)
}

// watchStreams makes the page count, across htmx page swaps, the live
// streams that opened (window.__streamsOpened), the header swaps they made
// (window.__headerSwaps) and the streams that ended with the server's "end"
// event (window.__streamsEnded): after the last, nothing more is swapped
// into the page.
func (b *browser) watchStreams() {
	b.t.Helper()
	evalJS[bool](b, `(() => {
		const bump = k => { window[k] = (window[k] || 0) + 1; };
		document.addEventListener('htmx:sseOpen', () => bump('__streamsOpened'));
		document.addEventListener('htmx:sseMessage', e => { if (e.target && e.target.id === 'exec-header') bump('__headerSwaps'); });
		document.addEventListener('htmx:sseClose', e => { if (e.detail && e.detail.type === 'message') bump('__streamsEnded'); });
		return true;
	})()`)
}

// slowSettle makes htmx settle swaps 250 ms late (20 ms by default) until
// the next full page load, as a busy machine can: a step that does not wait
// for the settled page then fails every time instead of now and then.
func (b *browser) slowSettle() {
	b.t.Helper()
	evalJS[bool](b, `htmx.config.defaultSettleDelay = 250; true`)
}

// markPage sets a value on window; it survives anything but a reload.
func (b *browser) markPage() {
	b.t.Helper()
	evalJS[bool](b, `window.__switchboardNoReload = "still here"; true`)
}

func (b *browser) assertNotReloaded(when string) {
	b.t.Helper()
	if got := evalJS[string](b, `String(window.__switchboardNoReload)`); got != "still here" {
		b.t.Fatalf("%s: the page was reloaded (marker %q)", when, got)
	}
}

// slowModel answers like the demo model, through the OpenAI protocol with
// streamed replies, after a delay: long enough that a run is watched while
// it happens. A prompt's CALL statements are repeated (so they are carried
// out), a question is answered, and a follow-up turn gets the final answer.
func slowModel(delay time.Duration) llmtest.Handler {
	calls := regexp.MustCompile(`CALL: [a-z_]+\((?:'[^']*'|"[^"]*"|[^)'"])*\)`)
	return func(req openai.ChatCompletionRequest) llmtest.Reply {
		var system, last string
		followUp := false
		for _, m := range req.Messages {
			switch m.Role {
			case openai.ChatMessageRoleSystem:
				system += m.Content
			case openai.ChatMessageRoleUser:
				last = m.Content
			case openai.ChatMessageRoleAssistant:
				followUp = true
			}
		}
		content := ""
		switch {
		case followUp:
			content = "Final answer, using what my calls returned: " + strings.ReplaceAll(last, "CALL:", "call")
		case strings.Contains(system, "asks you the question"):
			content = "Entangled particles share one state: measure one and you know the other, however far apart they are."
		default:
			if found := calls.FindAllString(last, -1); len(found) > 0 {
				content = "I will ask.\n" + strings.Join(found, "\n")
			} else {
				content = "Noted. My part is done: " + last
			}
		}
		return llmtest.Reply{Content: content, Delay: delay}
	}
}

func originalExample(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join("..", "shared", "compat", "original-examples", name)
	data, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: %v", path, err)
		}
		t.Skipf("skipping: %s not present (it exists on the team's machines and in CI)", path)
	}
	return string(data)
}

// TestDashboardPubSubLive imports an original example by pasting it, runs
// it in pubsub mode, and watches the run live: the output streams, the
// timeline fills with the ask and its answer, and the status reaches
// success, all without a page reload.
func TestDashboardPubSubLive(t *testing.T) {
	doc := originalExample(t, "04_pubsub_collaborative_qa.json")
	// The teacher answers only once the test has seen the student's reply
	// stream in, so the run cannot end before the test looks, however
	// slow the machine.
	// Likewise no model answers before the page's live stream is open:
	// text streamed before it connects is not replayed (the page shows
	// the stored output once the node ends).
	answer, watching := make(chan struct{}), make(chan struct{})
	var answerOnce, watchingOnce sync.Once
	letTeacherAnswer := func() { answerOnce.Do(func() { close(answer) }) }
	pageWatches := func() { watchingOnce.Do(func() { close(watching) }) }
	slow := slowModel(400 * time.Millisecond)
	model := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		<-watching
		for _, m := range req.Messages {
			if m.Role == openai.ChatMessageRoleSystem && strings.Contains(m.Content, "asks you the question") {
				<-answer
				break
			}
		}
		return slow(req)
	})
	t.Cleanup(func() { pageWatches(); letTeacherAnswer() }) // before the model server's Close
	base := startServer(t, map[string]string{"OPENAI_BASE_URL": model.URL()})
	b := newBrowser(t, 1440, 1000)

	b.do("open the dashboard", 20*time.Second,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("import-doc")),
	)
	if u := evalJS[string](b, `location.pathname`); u != "/ui/workflows" {
		t.Fatalf("/ led to %s, want /ui/workflows", u)
	}
	b.markPage()
	b.watchStreams()
	b.do("paste the example and import it", 20*time.Second,
		chromedp.Focus(chromedp.ID("import-doc")),
		paste(doc),
		chromedp.Click(chromedp.CSS(`#import-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("run-form")),
	)
	if h := evalJS[string](b, `document.querySelector('#wf-header h1').textContent`); h != "Redis Pub/Sub Q&A Demo" {
		t.Fatalf("workflow page heading %q", h)
	}
	if n := evalJS[int](b, `document.querySelectorAll('#wf-graph g.node').length`); n != 5 {
		t.Errorf("graph shows %d nodes, want 5", n)
	}
	if n := evalJS[int](b, `document.querySelectorAll('#wf-graph g.node.comm').length`); n != 3 {
		t.Errorf("graph marks %d communicating nodes, want 3", n)
	}
	b.shot("workflow-page")
	b.assertNotReloaded("after the import")

	b.do("run it in pubsub mode", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form input[value=pubsub]`)),
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("exec-status")),
	)
	if !strings.HasPrefix(evalJS[string](b, `location.pathname`), "/ui/executions/") {
		t.Fatalf("run did not lead to the execution page")
	}
	b.waitJS("the live stream is open", `window.__streamsOpened >= 1`, 20*time.Second)
	pageWatches()
	// While it runs: the student's own reply streams into its box (it asked
	// the teacher and waits), and the page is connected for live updates.
	b.waitJS("the student's reply streams in while the run goes on",
		`document.querySelector('#exec-status').textContent === 'running' &&
		 document.querySelector('#node-1 .output').textContent.includes("ask_node('teacher'")`, 20*time.Second)
	b.shot("execution-running")
	letTeacherAnswer()
	b.waitJS("the timeline shows the ask and the answer",
		`document.querySelectorAll('#timeline .tl-row.tl-ask').length >= 1 &&
		 document.querySelectorAll('#timeline .tl-row.tl-response').length >= 1 &&
		 document.querySelectorAll('#messages li[data-kind=ask]').length >= 1 &&
		 document.querySelectorAll('#messages li[data-kind=response]').length >= 1`, 30*time.Second)
	b.waitJS("the status reaches success", `document.querySelector('#exec-status').textContent === 'success'`, 30*time.Second)
	b.waitJS("the broadcast arrives", `document.querySelectorAll('#timeline .tl-row.tl-broadcast').length >= 1`, 10*time.Second)
	// The stream's last swaps (the stored record, then "end") may follow
	// the status; what is read and clicked below must not be replaced.
	b.waitJS("the live stream ends", `window.__streamsEnded >= 1`, 10*time.Second)
	b.assertNotReloaded("after the run")

	text := evalJS[string](b, `document.querySelector('#exec-header').textContent`)
	for _, want := range []string{"pubsub", "5 of 5", "Tokens"} {
		if !strings.Contains(text, want) {
			t.Errorf("header lacks %q:\n%s", want, text)
		}
	}
	if evalJS[bool](b, `!!document.querySelector('.banner-fallback')`) {
		t.Errorf("a fallback banner on a run that used pubsub")
	}
	// pubsub: the message ids are shown; a click on an arrow opens the text.
	if !strings.Contains(evalJS[string](b, `document.querySelector('#timeline').textContent`), "id …") {
		t.Errorf("the timeline does not show message ids")
	}
	b.do("open the ask from the timeline", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#timeline a.tl-ask`)),
		chromedp.WaitVisible(chromedp.CSS(`#messages li[data-kind=ask] details[open] .msg-content`)),
	)
	full := evalJS[string](b, `document.querySelector('#messages li[data-kind=ask] .msg-content').textContent`)
	if full != "Can you explain quantum entanglement in simple terms?" {
		t.Errorf("the ask's full text is %q", full)
	}
	if !strings.Contains(evalJS[string](b, `document.querySelector('#messages li[data-kind=ask] .msg-meta').textContent`), "query:") {
		t.Errorf("the ask's details lack its pubsub message id")
	}
	if out := evalJS[string](b, `document.querySelector('#node-1 .output').textContent`); !strings.Contains(out, "Entangled particles share one state") {
		t.Errorf("the student's output lacks the teacher's answer: %q", out)
	}
	b.shot("execution-pubsub")
	b.do("narrow viewport", 10*time.Second, chromedp.EmulateViewport(375, 800))
	if !evalJS[bool](b, `document.documentElement.scrollWidth <= window.innerWidth`) {
		t.Errorf("the execution page is wider than 375 px: %d", evalJS[int](b, `document.documentElement.scrollWidth`))
	}
	b.shot("execution-375")
	labelled(t, b)
	b.do("wide viewport", 10*time.Second, chromedp.EmulateViewport(1440, 1000))

	// The executions list has it, filtered by status without a reload.
	b.slowSettle()
	b.do("the executions page", 20*time.Second,
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/executions"]`)),
		chromedp.WaitVisible(chromedp.ID("f-status")),
	)
	// A step of its own, so that it waits for the page to settle: the
	// filter visible but not yet processed by htmx changes nothing.
	b.do("filter by status", 10*time.Second,
		// Typing on a focused select picks the option, as a person would.
		chromedp.Focus(chromedp.ID("f-status")),
		chromedp.SendKeys(chromedp.ID("f-status"), "success"),
	)
	b.waitJS("the filtered list", `location.search.includes('status=success') && document.querySelectorAll('#exec-list tbody tr').length === 1`, 10*time.Second)
	b.assertNotReloaded("after filtering")
	b.shot("executions")
	labelled(t, b)

	// Back goes to the unfiltered list, and on to the execution, through
	// htmx's history, still without a reload.
	b.back()
	b.waitJS("back to the unfiltered list", `location.pathname === '/ui/executions' && !location.search.includes('status=') && !!document.getElementById('exec-list')`, 10*time.Second)
	b.back()
	b.waitJS("back to the execution", `location.pathname.startsWith('/ui/executions/') && document.querySelector('#exec-status')?.textContent === 'success'`, 10*time.Second)
	b.assertNotReloaded("after going back")
}

// TestDashboardCancel cancels a run from its page while the model is
// still thinking.
func TestDashboardCancel(t *testing.T) {
	model := llmtest.NewServer(t, func(openai.ChatCompletionRequest) llmtest.Reply {
		return llmtest.Reply{Content: "too late", Delay: time.Minute}
	})
	base := startServer(t, map[string]string{"OPENAI_BASE_URL": model.URL()})
	id := importAPI(t, base, exampleFile(t, "examples/01_qa.json"))
	b := newBrowser(t, 1280, 900)
	b.do("open the workflow", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows/"+id),
		chromedp.WaitVisible(chromedp.ID("run-form")),
	)
	b.slowSettle()
	b.watchStreams()
	b.do("run it", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.cancel-form button`)),
	)
	// The live stream swaps the header in when it connects, and again
	// with each state; the last comes with the student's start, and the
	// model then holds the run for a minute, so nothing replaces the
	// button after it.
	b.waitJS("the run is running", `window.__headerSwaps >= 1 && document.querySelector('#exec-status').textContent === 'running' &&
		!!document.querySelector('#node-1 .pill-running')`, 10*time.Second)
	b.markPage()
	b.do("cancel it", 10*time.Second, chromedp.Click(chromedp.CSS(`.cancel-form button`)))
	b.waitJS("the run is cancelled", `document.querySelector('#exec-status').textContent === 'cancelled' && !document.querySelector('.cancel-form')`, 20*time.Second)
	if txt := evalJS[string](b, `document.querySelector('#exec-header').textContent`); !strings.Contains(txt, "cancelled by request") {
		t.Errorf("header does not say why:\n%s", txt)
	}
	b.assertNotReloaded("after cancelling")
	b.shot("execution-cancelled")
}

// TestDashboardFallbackBanner runs a pubsub workflow against a Redis that
// cannot be reached: the run falls back to simple mode and says so.
func TestDashboardFallbackBanner(t *testing.T) {
	base := startServer(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:1"})
	id := importAPI(t, base, exampleFile(t, "examples/04_pubsub_qa.json"))
	b := newBrowser(t, 1280, 900)
	b.do("open the workflow", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows/"+id),
		chromedp.WaitVisible(chromedp.ID("run-form")),
	)
	b.markPage()
	b.do("run in pubsub mode", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form input[value=pubsub]`)),
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("exec-status")),
	)
	b.waitJS("the fallback banner and success", `!!document.querySelector('.banner-fallback') && document.querySelector('#exec-status').textContent === 'success'`, 30*time.Second)
	banner := evalJS[string](b, `document.querySelector('.banner-fallback').innerText`)
	if !strings.Contains(banner, "fell back to simple mode") || !strings.Contains(banner, "Reason:") {
		t.Errorf("banner says %q", banner)
	}
	if h := evalJS[string](b, `document.querySelector('#exec-header dl').innerText`); !strings.Contains(h, "asked for pubsub, used simple") {
		t.Errorf("header does not show the modes requested and used:\n%s", h)
	}
	b.assertNotReloaded("after the run")
	b.shot("execution-fallback")

	// The bus page says Redis is not reachable, without the password.
	b.do("bus page", 20*time.Second,
		chromedp.Navigate(base+"/ui/bus"),
		chromedp.WaitVisible(chromedp.ID("bus-info")),
	)
	if txt := evalJS[string](b, `document.querySelector('#bus-info').innerText`); !strings.Contains(txt, "not connected") || !strings.Contains(txt, "external") {
		t.Errorf("bus info:\n%s", txt)
	}
	b.waitJS("the monitor says why it cannot watch", `document.querySelector('[sse-swap=bus-status]').textContent.includes('Cannot watch the bus')`, 20*time.Second)
}

// TestDashboardEscapesUserText: a workflow named <script>alert(1)</script>
// with an <img onerror> prompt shows as text, and no dialog opens.
func TestDashboardEscapesUserText(t *testing.T) {
	base := startServer(t, nil)
	b := newBrowser(t, 1280, 900)
	doc := `{"name": "<script>alert(1)</script>",
	  "metadata": {"description": "<img src=x onerror=alert(2)>"},
	  "nodes": [{"id": "start", "type": "start"},
	    {"id": "x", "type": "ai-processor", "config": {"name": "<b onmouseover=alert(3)>bold</b>", "prompt": "<img src=x onerror=alert(4)> {{input}}"}}],
	  "edges": [{"from": "start", "to": "x"}],
	  "variables": [{"name": "input", "value": "<script>alert(5)</script>"}]}`
	b.do("import it by pasting", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows"),
		chromedp.WaitVisible(chromedp.ID("import-doc")),
		chromedp.Focus(chromedp.ID("import-doc")),
		paste(doc),
		chromedp.Click(chromedp.CSS(`#import-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("run-form")),
	)
	if h := evalJS[string](b, `document.querySelector('#wf-header h1').textContent`); h != "<script>alert(1)</script>" {
		t.Errorf("heading %q, want the name as text", h)
	}
	b.do("run it", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("exec-status")),
	)
	b.waitJS("the run ends", `document.querySelector('#exec-status').textContent === 'success'`, 30*time.Second)
	if out := evalJS[string](b, `document.querySelector('#node-1 .output').textContent`); !strings.Contains(out, "<img src=x onerror=alert(4)>") {
		t.Errorf("the output does not show the prompt as text: %q", out)
	}
	b.do("the list", 20*time.Second,
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/workflows"]`)),
		chromedp.WaitVisible(chromedp.ID("workflow-table")),
	)
	if !strings.Contains(evalJS[string](b, `document.querySelector('#workflow-table').textContent`), "<script>alert(1)</script>") {
		t.Errorf("the list does not show the name as text")
	}
	// Nothing the user typed became markup, and nothing ran.
	if n := evalJS[int](b, `document.querySelectorAll('script:not([src]), img, b[onmouseover], [onerror]').length`); n != 0 {
		t.Errorf("%d elements were made from user text", n)
	}
	if n := b.dialogCount(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened: %v", n, b.dialogs)
	}
	b.shot("xss-list")
}

// TestDashboardPagesAndLayout covers the remaining pages and actions in the
// browser (invalid import shown in place, delete with confirmation, JSON
// editor, bus traffic, settings) and the layout at 375 px and 1600 px.
func TestDashboardPagesAndLayout(t *testing.T) {
	base := startServer(t, nil)
	b := newBrowser(t, 375, 800)
	b.do("workflows at 375 px", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows"),
		chromedp.WaitVisible(chromedp.ID("workflow-table")),
	)
	b.markPage()
	b.slowSettle()
	noOverflow := `document.documentElement.scrollWidth <= window.innerWidth`
	if !evalJS[bool](b, noOverflow) {
		t.Errorf("the workflows page is wider than 375 px: %d", evalJS[int](b, `document.documentElement.scrollWidth`))
	}
	b.shot("workflows-375")
	labelled(t, b)

	// An invalid import: the problems appear next to their JSON paths, in
	// place, and the pasted text stays.
	bad := `{"name": "broken", "nodes": [{"id": "a", "type": "ai-processor", "config": {"temperature": "hot"}}], "edges": [{"from": "a", "to": "ghost"}]}`
	b.do("an invalid import", 20*time.Second,
		chromedp.Focus(chromedp.ID("import-doc")),
		paste(bad),
		chromedp.Click(chromedp.CSS(`#import-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#import-form [data-error-area] .problems`)),
	)
	problems := evalJS[string](b, `document.querySelector('#import-form [data-error-area]').innerText`)
	for _, want := range []string{"nodes[0].config.temperature", `must be a number, not "hot"`, "edges[0].to"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	if v := evalJS[string](b, `document.getElementById('import-doc').value`); v != bad {
		t.Errorf("the pasted text was not kept: %q", v)
	}
	b.shot("import-error-375")
	b.assertNotReloaded("after a failed import")

	// Run from the list: the execution's page follows.
	b.do("run from the list", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#workflow-table tbody tr:first-child td.actions button.btn-primary`)),
		chromedp.WaitVisible(chromedp.ID("exec-status")),
	)
	b.waitJS("the run from the list succeeds", `document.querySelector('#exec-status').textContent === 'success'`, 30*time.Second)
	if !evalJS[bool](b, noOverflow) {
		t.Errorf("the execution page is wider than 375 px: %d", evalJS[int](b, `document.documentElement.scrollWidth`))
	}
	b.assertNotReloaded("after a run from the list")
	b.do("back to the list", 20*time.Second,
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/workflows"]`)),
		chromedp.WaitVisible(chromedp.ID("workflow-table")),
	)
	if n := evalJS[int](b, `document.querySelectorAll('#workflow-table .pill-success').length`); n != 1 {
		t.Errorf("the list shows %d successful last runs, want 1", n)
	}

	// The JSON editor: an invalid save is refused in place, a valid one
	// redraws the graph.
	b.do("open a workflow", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#workflow-table a.strong`)),
		chromedp.WaitVisible(chromedp.ID("editor")),
	)
	if !evalJS[bool](b, noOverflow) {
		t.Errorf("the workflow page is wider than 375 px: %d", evalJS[int](b, `document.documentElement.scrollWidth`))
	}
	b.shot("workflow-375")
	labelled(t, b)
	b.do("save an invalid document", 20*time.Second,
		chromedp.SetValue(chromedp.ID("editor"), `{"name": "x", "nodes": []}`),
		chromedp.Click(chromedp.CSS(`#editor-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#editor-form [data-error-area] .alert`)),
	)
	if v := evalJS[string](b, `document.getElementById('editor').value`); v != `{"name": "x", "nodes": []}` {
		t.Errorf("the editor text was not kept: %q", v)
	}
	edited := evalJS[string](b, `(() => { const d = JSON.parse(document.getElementById('editor').defaultValue); d.name = 'Renamed in the editor'; d.nodes.push({id: 'extra', type: 'end'}); d.edges.push({from: d.nodes[0].id, to: 'extra'}); return JSON.stringify(d, null, 2); })()`)
	before := evalJS[int](b, `document.querySelectorAll('#wf-graph g.node').length`)
	b.do("save a valid document", 20*time.Second,
		chromedp.SetValue(chromedp.ID("editor"), edited),
		chromedp.Click(chromedp.CSS(`#editor-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#editor-form .form-status .ok`)),
	)
	if after := evalJS[int](b, `document.querySelectorAll('#wf-graph g.node').length`); after != before+1 {
		t.Errorf("graph has %d nodes after the save, want %d", after, before+1)
	}
	if h := evalJS[string](b, `document.querySelector('#wf-header h1').textContent`); h != "Renamed in the editor" {
		t.Errorf("heading after the save: %q", h)
	}
	b.assertNotReloaded("after saving")

	// Delete it, confirming the dialog.
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	b.do("delete it", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#wf-header form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("workflow-table")),
	)
	if strings.Contains(evalJS[string](b, `document.querySelector('#workflow-table').textContent`), "Renamed in the editor") {
		t.Errorf("the deleted workflow is still listed")
	}
	if n := b.dialogCount(); n != 1 {
		t.Errorf("%d confirmation dialogs, want 1", n)
	}
	b.assertNotReloaded("after deleting")

	// The bus page at 1600 px: live traffic of a pubsub run appears.
	b.do("wide viewport", 10*time.Second, chromedp.EmulateViewport(1600, 1000))
	b.do("bus page", 20*time.Second,
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/bus"]`)),
		chromedp.WaitVisible(chromedp.ID("traffic")),
	)
	b.waitJS("the monitor is watching", `document.querySelector('[sse-swap=bus-status]').textContent.includes('Watching')`, 20*time.Second)
	if txt := evalJS[string](b, `document.querySelector('#bus-info').innerText`); !strings.Contains(txt, "embedded") || !strings.Contains(txt, "connected") {
		t.Errorf("bus info:\n%s", txt)
	}
	id := importAPI(t, base, exampleFile(t, "examples/04_pubsub_qa.json"))
	if code := postJSON(t, base+"/workflows/"+id+"/execute", `{"async_execution": true, "communication_mode": "pubsub"}`, nil); code != http.StatusAccepted {
		t.Fatalf("execute: %d", code)
	}
	b.waitJS("pubsub traffic appears", `[...document.querySelectorAll('#traffic tr')].some(r => r.textContent.includes('query')) &&
		[...document.querySelectorAll('#traffic tr')].some(r => r.textContent.includes('response'))`, 30*time.Second)
	if !evalJS[bool](b, noOverflow) {
		t.Errorf("the bus page is wider than 1600 px")
	}
	b.shot("bus-1600")

	b.do("settings page", 20*time.Second,
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/settings"]`)),
		chromedp.WaitVisible(chromedp.ID("llm-provider")),
	)
	if p := evalJS[string](b, `document.getElementById('llm-provider').textContent`); !strings.Contains(p, "demo") {
		t.Errorf("provider: %q", p)
	}
	b.assertNotReloaded("after visiting every page")
	b.shot("settings-1600")

	// Every control on the settings page has a label (the other pages are
	// checked as they are visited above: see labelled).
	labelled(t, b)
}

// labelled fails the test for any visible form control without a <label>.
func labelled(t *testing.T, b *browser) {
	t.Helper()
	missing := evalJS[[]string](b, `[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
		.filter(el => !el.labels || el.labels.length === 0).map(el => el.name || el.id)`)
	if len(missing) > 0 {
		t.Errorf("%s: controls without a label: %v", evalJS[string](b, `location.pathname`), missing)
	}
}

func exampleFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func importAPI(t *testing.T, base, doc string) string {
	t.Helper()
	var created map[string]any
	if code := postJSON(t, base+"/workflows/", doc, &created); code != http.StatusCreated {
		t.Fatalf("import: %d %v", code, created)
	}
	id, _ := created["id"].(string)
	if id == "" {
		t.Fatalf("import answered no id: %s", mustJSON(created))
	}
	return id
}

func mustJSON(v any) string {
	data, _ := json.Marshal(v)
	return fmt.Sprint(string(data))
}
