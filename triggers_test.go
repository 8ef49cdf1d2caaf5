package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// serveData runs the program on data until stop is called, and returns its
// base URL and stop, which waits for it to end.
func serveData(t *testing.T, data string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--embedded-redis-addr", "127.0.0.1:0", "--data", data, "--log-level", "warn"},
			testEnv, pw, pw)
		pw.Close()
	}()
	urls := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		var out strings.Builder
		sent := false
		for {
			n, err := pr.Read(buf)
			out.Write(buf[:n])
			if i := strings.Index(out.String(), "running at "); i >= 0 && !sent {
				if rest := out.String()[i+len("running at "):]; strings.Contains(rest, "/ ") {
					urls <- strings.TrimSuffix(rest[:strings.Index(rest, "/ ")], "/")
					sent = true
				}
			}
			if err != nil {
				return
			}
		}
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	select {
	case u := <-urls:
		return u, stop
	case err := <-done:
		t.Fatalf("run ended before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return "", stop
}

// TestMissedTickAcrossRestart stops the server, lets two daily ticks pass
// while it is down (by moving its recorded last tick two days back in the
// SQLite file), and starts it again: one catch-up run, before it serves.
func TestMissedTickAcrossRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	base, stop := serveData(t, data)
	id := importAPI(t, base, `{"name":"nightly","metadata":{"schedule":{"cron":"0 3 * * *","timezone":"Europe/Paris"}},
		"nodes":[{"id":"start","type":"start"},{"id":"a","type":"ai-processor","config":{"prompt":"report for {{trigger.scheduled_at}}"}}],
		"edges":[{"from":"start","to":"a"}]}`)
	var hook map[string]any
	if code := getJSON(t, base+"/workflows/"+id+"/webhook", &hook); code != 200 || hook["next_scheduled_run"] == nil {
		t.Fatalf("webhook info: %d %v", code, hook)
	}
	stop()

	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(data, "switchboard.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := db.LastTick(ctx, id); err != nil || !ok {
		t.Fatalf("no tick recorded when the workflow was created: %v", err)
	}
	if err := db.SetLastTick(ctx, id, time.Now().Add(-50*time.Hour)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	base, _ = serveData(t, data)
	var list []workflow.Execution
	if code := getJSON(t, base+"/workflows/"+id+"/executions", &list); code != 200 || len(list) != 1 {
		t.Fatalf("executions after the restart: %d, %d runs, want 1", code, len(list))
	}
	if tr := list[0].Trigger; tr == nil || tr.Kind != workflow.TriggerSchedule || !tr.CatchUp || tr.ScheduledAt == nil {
		t.Fatalf("trigger = %+v", tr)
	}
}

// TestRunCommandRecordsCLI: switchboard run records its run as started
// by the cli.
func TestRunCommandRecordsCLI(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	if err := run(t.Context(), []string{"run", "examples/01_qa.json", "--data", data}, testEnv, io.Discard, t.Output()); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.Context(), filepath.Join(data, "switchboard.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	list, err := db.ListExecutions(t.Context(), store.ExecutionFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("%d executions, %v", len(list), err)
	}
	if tr := list[0].Trigger; tr == nil || tr.Kind != workflow.TriggerCLI {
		t.Fatalf("trigger = %+v, want cli", tr)
	}
}

func paris(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestDashboardWebhookAndSchedule: the workflow page shows the hook URL
// and the next scheduled run, and a schedule saved in the editor at once;
// rotating the token there makes the old URL
// answer 404 and the new one start runs; a run from the run form says it
// came from the dashboard.
func TestDashboardWebhookAndSchedule(t *testing.T) {
	base := startServer(t, nil)
	id := importAPI(t, base, `{"name":"hooked","metadata":{"schedule":{"cron":"0 9 * * *","timezone":"Europe/Paris"}},
		"nodes":[{"id":"start","type":"start"},{"id":"a","type":"ai-processor","config":{"prompt":"hello"}}],
		"edges":[{"from":"start","to":"a"}]}`)
	b := newBrowser(t, 1280, 900)
	b.do("open the workflow", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows/"+id),
		chromedp.WaitVisible(chromedp.ID("hook-url")),
	)
	oldURL := evalJS[string](b, `document.querySelector('#hook-url').value`)
	if !strings.HasPrefix(oldURL, base+"/hooks/"+id+"/") {
		t.Fatalf("hook URL %q", oldURL)
	}
	if curl := evalJS[string](b, `document.querySelector('#hook-curl').textContent`); !strings.Contains(curl, oldURL) {
		t.Errorf("curl example lacks the URL: %s", curl)
	}
	if next := evalJS[string](b, `document.querySelector('#next-run time').getAttribute('datetime')`); next == "" {
		t.Error("no next run shown")
	}
	if code := postJSON(t, oldURL, `{}`, nil); code != http.StatusAccepted {
		t.Fatalf("old hook before rotation: %d", code)
	}

	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	b.markPage()
	b.do("rotate the token", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#hook-rotate button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#hook-box .ok`)),
	)
	b.assertNotReloaded("after rotating")
	b.shot("workflow-triggers")
	newURL := evalJS[string](b, `document.querySelector('#hook-url').value`)
	if newURL == oldURL || !strings.HasPrefix(newURL, base+"/hooks/"+id+"/") {
		t.Fatalf("hook URL after rotation %q (was %q)", newURL, oldURL)
	}
	if code := postJSON(t, oldURL, `{}`, nil); code != http.StatusNotFound {
		t.Errorf("old hook after rotation: %d, want 404", code)
	}
	var x workflow.Execution
	if code := postJSON(t, newURL+"?wait=true", `{"n":1}`, &x); code != http.StatusOK || x.Trigger == nil || x.Trigger.Kind != "webhook" {
		t.Errorf("new hook after rotation: %d %+v", code, x.Trigger)
	}

	// A new schedule saved in the editor shows at once, with its next run.
	edited := strings.Replace(evalJS[string](b, `document.querySelector('#editor').value`), `"0 9 * * *"`, `"30 6 * * 1"`, 1)
	b.do("save a new schedule", 20*time.Second,
		chromedp.SetValue(chromedp.ID("editor"), edited),
		chromedp.Click(chromedp.CSS(`#editor-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#editor-form .form-status .ok`)),
	)
	if cron := evalJS[string](b, `document.querySelector('#schedule-box code').textContent`); cron != "30 6 * * 1" {
		t.Errorf("schedule shown after the save: %q", cron)
	}
	next := evalJS[string](b, `document.querySelector('#next-run time').getAttribute('datetime')`)
	if at, err := time.Parse(time.RFC3339, next); err != nil || at.In(paris(t)).Weekday() != time.Monday || at.In(paris(t)).Hour() != 6 {
		t.Errorf("next run after the save: %q (%v)", next, err)
	}

	b.do("run it from the form", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`dd.trigger`)),
	)
	if by := evalJS[string](b, `document.querySelector('dd.trigger').textContent`); by != "dashboard" {
		t.Errorf("started by %q, want dashboard", by)
	}
	b.shot("execution-started-by")
	b.do("the list", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows"),
		chromedp.WaitVisible(chromedp.CSS(`#wf-`+id+` .next-run time`)),
	)
}
