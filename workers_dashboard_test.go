package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/bus/bustest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// registerWorker puts a worker in the registry of the Redis at url as a
// worker process does (bus.Register), with a heartbeat long enough that
// its key outlives the test without renewals.
func registerWorker(t *testing.T, url string, w bus.Worker) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	if _, err := bus.Register(t.Context(), rdb, w, bus.HeartbeatOptions{Interval: time.Minute}); err != nil {
		t.Fatalf("register worker %s: %v", w.Name, err)
	}
	return rdb
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data)
}

// TestBusWorkersRegistry registers two workers with bus.Register on a real
// Redis (miniredis and redis-server) and reads them back through GET
// /workers and the Bus page of the whole program.
func TestBusWorkersRegistry(t *testing.T) {
	t.Parallel()
	bustest.ForEach(t, func(t *testing.T, url string, ctl bustest.Controller) {
		base := startServer(t, map[string]string{"REDIS_URL": url})
		xid := workflow.NewID()
		started := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		registerWorker(t, url, bus.Worker{Name: "w1", Host: "gpu-1", PID: 4242, Capacity: 8, InUse: 3, StartedAt: started,
			Agents: []string{bus.AgentID(xid, "teacher"), bus.AgentID(xid, "fact-checker")}})
		registerWorker(t, url, bus.Worker{Name: "w2", Host: "gpu-2", PID: 77, Capacity: 4})

		var got struct {
			Workers []map[string]any `json:"workers"`
		}
		if code := getJSON(t, base+"/workers", &got); code != 200 {
			t.Fatalf("GET /workers: %d %v", code, got)
		}
		if len(got.Workers) != 2 {
			t.Fatalf("GET /workers: %d workers, want 2: %s", len(got.Workers), mustJSON(got))
		}
		w1, w2 := got.Workers[0], got.Workers[1]
		if w1["name"] != "w1" || w1["host"] != "gpu-1" || w1["pid"] != 4242.0 || w1["capacity"] != 8.0 || w1["in_use"] != 3.0 ||
			w1["started_at"] != started.Format(time.RFC3339) || w1["instance"] == "" ||
			fmt.Sprint(w1["agents"]) != fmt.Sprint([]any{bus.AgentID(xid, "teacher"), bus.AgentID(xid, "fact-checker")}) {
			t.Errorf("GET /workers: w1 is %s", mustJSON(w1))
		}
		if hb, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(w1["last_heartbeat"])); time.Since(hb) > time.Minute {
			t.Errorf("GET /workers: w1's last_heartbeat %v", w1["last_heartbeat"])
		}
		if w2["name"] != "w2" || w2["in_use"] != 0.0 || fmt.Sprint(w2["agents"]) != "[]" {
			t.Errorf("GET /workers: w2 is %s", mustJSON(w2))
		}

		code, page := getText(t, base+"/ui/bus")
		if code != 200 {
			t.Fatalf("GET /ui/bus: %d", code)
		}
		for _, want := range []string{`data-worker="w1"`, `data-worker="w2"`, "<code>gpu-1</code>", "3 / 8", "0 / 4", "pid 4242",
			`href="/ui/executions/` + xid + `"`, `node fact-checker of execution ` + xid, `data-format="relative"`} {
			if !strings.Contains(page, want) {
				t.Errorf("bus page lacks %q", want)
			}
		}
		if strings.Contains(page, "No worker is registered") {
			t.Errorf("bus page says no worker is registered")
		}
	})
}

// TestBusWorkersRedisDown: the registry cannot be read, and both the API
// and the page say why.
func TestBusWorkersRedisDown(t *testing.T) {
	t.Parallel()
	base := startServer(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:1"})
	code, body := getText(t, base+"/workers")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"detail":"cannot list the workers: Redis at 127.0.0.1:1 cannot be reached"`) ||
		!strings.Contains(body, `"code":"unavailable"`) {
		t.Errorf("GET /workers with Redis down: %d %s", code, body)
	}
	if _, page := getText(t, base+"/ui/bus"); !strings.Contains(page, "Cannot list the workers:") {
		t.Errorf("bus page with Redis down does not say the workers cannot be listed")
	}
}

// TestBusWorkersEmbedded: with the embedded Redis, the empty Bus page gives
// the command that joins it, and a worker that registers at that address
// is listed.
func TestBusWorkersEmbedded(t *testing.T) {
	t.Parallel()
	base := startServer(t, nil)
	_, frag := getText(t, base+"/ui/bus/workers")
	m := regexp.MustCompile(`switchboard worker --redis-url (redis://127\.0\.0\.1:\d+)`).FindStringSubmatch(frag)
	if m == nil || !strings.Contains(frag, "No worker is registered") {
		t.Fatalf("empty workers card lacks the command for the embedded Redis:\n%s", frag)
	}
	registerWorker(t, m[1], bus.Worker{Name: "joined", Host: "laptop", Capacity: 2})
	var got struct {
		Workers []struct{ Name string } `json:"workers"`
	}
	if code := getJSON(t, base+"/workers", &got); code != 200 || len(got.Workers) != 1 || got.Workers[0].Name != "joined" {
		t.Errorf("GET /workers after joining the embedded Redis: %d %+v", code, got)
	}
}

// TestDashboardWorkers: the Bus page's worker list refreshes by itself when
// a worker registers, and the run form's placement choice appears for
// pubsub only and is posted with the run.
func TestDashboardWorkers(t *testing.T) {
	ctl := bustest.Start(t, bustest.Miniredis)
	base := startServer(t, map[string]string{"REDIS_URL": ctl.URL()})
	b := newBrowser(t, 1280, 900)
	b.do("open the bus page", 20*time.Second,
		chromedp.Navigate(base+"/ui/bus"),
		chromedp.WaitVisible(chromedp.CSS(`#bus-workers .workers-empty`)),
	)
	if txt := evalJS[string](b, `document.querySelector('#bus-workers').innerText`); !strings.Contains(txt, "switchboard worker --redis-url "+ctl.URL()) {
		t.Errorf("the empty worker list does not give the command for this bus:\n%s", txt)
	}
	b.shot("bus-workers-empty")
	b.markPage()

	xid := workflow.NewID()
	rdb := registerWorker(t, ctl.URL(), bus.Worker{Name: "gpu-box-1", Host: "gpu-1", Capacity: 8, InUse: 2,
		Agents: []string{bus.AgentID(xid, "teacher")}})
	b.waitJS("the new worker appears without a reload", `!!document.querySelector('#bus-workers tr[data-worker="gpu-box-1"]')`, 20*time.Second)
	b.assertNotReloaded("after the worker list refreshed")
	row := evalJS[string](b, `document.querySelector('#bus-workers tr[data-worker="gpu-box-1"]').innerText`)
	for _, want := range []string{"gpu-box-1", "gpu-1", "2 / 8"} {
		if !strings.Contains(row, want) {
			t.Errorf("worker row lacks %q: %s", want, row)
		}
	}
	hb := evalJS[[]string](b, `(() => { const t = document.querySelector('#bus-workers time.heartbeat'); return [t.textContent, t.title]; })()`)
	if !regexp.MustCompile(`^(just now|\d+ s ago)$`).MatchString(hb[0]) || hb[1] == "" {
		t.Errorf("last heartbeat reads %q with title %q; want a relative time and the exact one", hb[0], hb[1])
	}
	if href := evalJS[string](b, `document.querySelector('#bus-workers .worker-agents a').getAttribute('href')`); href != "/ui/executions/"+xid {
		t.Errorf("the agent links to %q", href)
	}
	b.shot("bus-workers")
	labelled(t, b)
	b.do("narrow viewport", 10*time.Second, chromedp.EmulateViewport(375, 800))
	if !evalJS[bool](b, `document.documentElement.scrollWidth <= window.innerWidth`) {
		t.Errorf("the bus page with a worker is wider than 375 px: %d", evalJS[int](b, `document.documentElement.scrollWidth`))
	}
	b.shot("bus-workers-375")
	b.do("wide viewport", 10*time.Second, chromedp.EmulateViewport(1280, 900))
	// The worker is not real: it must not be offered the run below.
	if err := rdb.Del(t.Context(), bus.WorkerKey("gpu-box-1")).Err(); err != nil {
		t.Fatal(err)
	}

	id := importAPI(t, base, exampleFile(t, "examples/01_qa.json"))
	b.do("open the workflow", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows/"+id),
		chromedp.WaitVisible(chromedp.ID("run-form")),
	)
	if evalJS[bool](b, `document.querySelector('#run-placement').checkVisibility()`) {
		t.Errorf("the placement choice shows for a simple run")
	}
	evalJS[bool](b, `document.addEventListener('htmx:configRequest', e => { if (e.detail.verb === 'post') window.__posted = e.detail.formData.get('placement'); }); true`)
	b.do("choose pubsub and this server", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form input[value=pubsub]`)),
		chromedp.WaitVisible(chromedp.ID("run-placement")),
		chromedp.Focus(chromedp.ID("run-placement")),
		chromedp.SendKeys(chromedp.ID("run-placement"), "this"),
	)
	b.shot("run-form-placement")
	if v := evalJS[string](b, `document.querySelector('#run-placement').value`); v != "local" {
		t.Fatalf("placement select holds %q", v)
	}
	b.do("run it", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("exec-status")),
	)
	if p := evalJS[string](b, `String(window.__posted)`); p != "local" {
		t.Errorf("the run form posted placement %q, want local", p)
	}
	b.waitJS("the run succeeds", `document.querySelector('#exec-status').textContent === 'success'`, 30*time.Second)
	xid = strings.TrimPrefix(evalJS[string](b, `location.pathname`), "/ui/executions/")
	var rec map[string]any
	if code := getJSON(t, base+"/workflows/executions/"+xid, &rec); code != 200 || rec["communication_mode"] != workflow.ModePubSub {
		t.Fatalf("execution record: %d mode %v", code, rec["communication_mode"])
	}
	// A worker is registered, so only the form's choice keeps the agents in
	// the server.
	if p := rec["placement"]; p != workflow.PlacementLocal || rec["placement_fallback_reason"] != nil {
		t.Errorf("the record's placement is %v (%v) after a run asked for local", p, rec["placement_fallback_reason"])
	}
	if strings.Contains(evalJS[string](b, `document.querySelector('#exec-header').innerText`), "on workers") {
		t.Errorf("the header says the agents ran on workers after a run asked for this server")
	}
}
