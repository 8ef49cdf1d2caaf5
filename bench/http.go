package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/web"
	"github.com/switchboard-dev/switchboard/workflow"
)

// apiServer is the JSON API of the binary (web.New on a store and an
// executor) served in-process on a free loopback port.
type apiServer struct {
	base string
	srv  *http.Server
	done chan error
}

func (b *bencher) startAPI(eng *engine, ex *executor.Executor) (*apiServer, error) {
	h, err := web.New(web.Config{Version: "bench"}, eng.db, ex, b.logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &apiServer{base: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *apiServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// newClient is an HTTP client keeping a connection per concurrent caller.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
	}
}

// call sends one request and reads the whole answer; it fails unless the
// status is want.
func call(ctx context.Context, c *http.Client, method, url, body string, want int) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != want {
		return resp, data, fmt.Errorf("%s %s: status %d, want %d: %.300s", method, url, resp.StatusCode, want, data)
	}
	return resp, data, nil
}

// httpExecs measures Q&A executions per second through POST
// /workflows/{id}/execute (sync) with 64 concurrent clients.
func (b *bencher) httpExecs(ctx context.Context) error {
	eng, err := b.openEngine(ctx, "http")
	if err != nil {
		return err
	}
	defer eng.close()
	doc, err := qaDoc()
	if err != nil {
		return err
	}
	w, err := eng.store(ctx, doc)
	if err != nil {
		return err
	}
	ex := eng.executor(b, &benchModel{}, nil)
	api, err := b.startAPI(eng, ex)
	if err != nil {
		return err
	}
	defer api.close()
	const clients = 64
	c := newClient(clients)
	defer c.CloseIdleConnections()
	url := api.base + "/workflows/" + w.ID + "/execute"
	body := `{"inputs": {"question_topic": "tides"}, "async_execution": false}`
	once := func(ctx context.Context) error {
		_, data, err := call(ctx, c, http.MethodPost, url, body, http.StatusOK)
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), `"status":"success"`) {
			return fmt.Errorf("execution did not succeed: %.300s", data)
		}
		return nil
	}
	if _, _, err := throughput(ctx, clients, b.sc.execDuration/10, once); err != nil { // warm up, open the connections
		return err
	}
	perS, cores, err := throughput(ctx, clients, b.sc.execDuration, once)
	if err != nil {
		return err
	}
	b.res.set("http_exec_per_s_conc64", perS)
	b.res.set("http_exec_conc64_cpu_cores", cores)
	return nil
}

// list measures GET /workflows/{id}/executions (the first page) with listN
// executions of that workflow stored.
func (b *bencher) list(ctx context.Context) error {
	eng, err := b.openEngine(ctx, "list")
	if err != nil {
		return err
	}
	defer eng.close()
	doc, err := qaDoc()
	if err != nil {
		return err
	}
	w, err := eng.store(ctx, doc)
	if err != nil {
		return err
	}
	seedStart := time.Now()
	t0 := time.Now().Add(-time.Duration(b.sc.listN) * time.Second).UTC()
	for i := range b.sc.listN {
		created := t0.Add(time.Duration(i) * time.Second)
		end := created.Add(800 * time.Millisecond)
		eng.db.Enqueue(workflow.Event{ExecutionID: workflow.NewID(), Seq: 1, Time: created, Kind: workflow.EventExecution, Execution: &workflow.Execution{
			WorkflowID: w.ID, WorkflowName: w.Name, Status: workflow.ExecSuccess,
			CreatedAt: created, StartTime: &created, EndTime: &end,
			RequestedMode: workflow.ModeSimple, Mode: workflow.ModeSimple,
			Inputs: map[string]any{"question_topic": "tides"}, Usage: workflow.Usage{PromptTokens: 40, CompletionTokens: 60, TotalTokens: 100},
		}})
	}
	if err := eng.db.Flush(ctx); err != nil {
		return err
	}
	b.progress("list: seeded %d executions in %s", b.sc.listN, time.Since(seedStart).Round(time.Millisecond))

	ex := eng.executor(b, &benchModel{}, nil)
	api, err := b.startAPI(eng, ex)
	if err != nil {
		return err
	}
	defer api.close()
	c := newClient(1)
	defer c.CloseIdleConnections()
	url := api.base + "/workflows/" + w.ID + "/executions"
	var ds []time.Duration
	for i := range b.sc.listSamples + 5 {
		t := time.Now()
		resp, data, err := call(ctx, c, http.MethodGet, url, "", http.StatusOK)
		if err != nil {
			return err
		}
		d := time.Since(t)
		if i == 0 {
			if got := resp.Header.Get("X-Total-Count"); got != fmt.Sprint(b.sc.listN) {
				return fmt.Errorf("X-Total-Count %q, want %d", got, b.sc.listN)
			}
			if strings.Count(string(data), `"execution_id"`) != min(50, b.sc.listN) {
				return errors.New("the first page does not hold 50 executions")
			}
		}
		if i >= 5 { // the first requests warm the page cache and the connection
			ds = append(ds, d)
		}
	}
	b.res.set("list_p50_ms_100k", ms(percentile(ds, 50)))
	b.res.set("list_p99_ms_100k", ms(percentile(ds, 99)))
	return nil
}
