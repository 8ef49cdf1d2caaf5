package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/workflow"
)

// maxHTTPNodeBody bounds the response body an http node reads: its output
// is stored in the record and shown in the dashboard.
const maxHTTPNodeBody = 1 << 20

// runAction runs an action node (workflow.IsAction) in this process. Action
// nodes are never placed on a worker: they need no model, and what they
// reach (hosts, the mail server) is the server operator's to allow.
func (x *execution) runAction(ctx context.Context, node *workflow.Node) (any, error) {
	switch node.Type {
	case workflow.NodeHTTP, workflow.NodeWebhook:
		return x.runHTTP(ctx, node)
	case workflow.NodeCondition:
		return x.runCondition(node)
	case workflow.NodeFilter:
		return x.runFilter(node)
	case workflow.NodeTransformer:
		return x.runTransformer(node)
	case workflow.NodeDelay:
		return x.runDelay(ctx, node)
	case workflow.NodeEmail:
		return x.runEmail(ctx, node)
	}
	return nil, workflow.Errorf(workflow.CodeInvalid, "node type %q cannot run", node.Type)
}

// render renders one template of a node's config, naming the field in the
// error.
func (x *execution) render(node *workflow.Node, field, text string) (string, error) {
	out, err := workflow.Render(text, x.scope(text))
	if err != nil {
		return "", fmt.Errorf("render config.%s of node %q: %w", field, node.ID, err)
	}
	return out, nil
}

// runDelay waits config.seconds, or until the execution is cancelled or
// the server shuts down, whichever comes first. Its output is its input.
func (x *execution) runDelay(ctx context.Context, node *workflow.Node) (any, error) {
	d := node.DelaySeconds()
	x.log(slog.LevelInfo, node.ID, "Delay %s: waiting %s", node.ID, d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return x.endOutput(node.ID), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// runTransformer builds its output from config.template (a JSON value
// whose strings are rendered) or config.expression.
func (x *execution) runTransformer(node *workflow.Node) (any, error) {
	if tpl, ok := node.Config["template"]; ok {
		out, err := workflow.RenderJSON(tpl, x.scope)
		if err != nil {
			return nil, fmt.Errorf("render config.template of node %q: %w", node.ID, err)
		}
		return out, nil
	}
	return x.evaluate(node, false)
}

// httpFailure is a failed attempt of an http node; retry says whether
// another attempt may succeed (a transport error, a timeout, a 5xx or a
// 429), as a status the server chose on purpose (a 404) will not change.
type httpFailure struct {
	err   error
	retry bool
}

// runHTTP makes the request of an http (webhook) node, with its retries,
// and returns the response: status, headers and body, a JSON body parsed.
func (x *execution) runHTTP(ctx context.Context, node *workflow.Node) (any, error) {
	c := node.ReadHTTP()
	cfg := x.e.cfg.HTTP.withDefaults()
	rawURL, err := x.render(node, "url", c.URL)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	switch {
	case err != nil:
		return nil, workflow.Errorf(workflow.CodeInvalid, "node %q: the url %q cannot be read: %v", node.ID, rawURL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, workflow.Errorf(workflow.CodeInvalid, "node %q: the url %q is not an http:// or https:// URL", node.ID, rawURL)
	case u.Hostname() == "":
		return nil, workflow.Errorf(workflow.CodeInvalid, "node %q: the url %q has no host", node.ID, rawURL)
	}
	host := u.Hostname()
	if !workflow.HostAllowed(httpAllowList(x.wf.HTTPAllow(), cfg), host) {
		return nil, workflow.Errorf(workflow.CodeInvalid, "node %q: host %q is not allowed: %s", node.ID, host, httpAllowHint)
	}
	if len(c.Params) > 0 {
		q := u.Query()
		for _, k := range sortedKeys(c.Params) {
			v, err := x.render(node, "params."+k, c.Params[k])
			if err != nil {
				return nil, err
			}
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	header := http.Header{}
	for _, k := range sortedKeys(c.Headers) {
		v, err := x.render(node, "headers."+k, c.Headers[k])
		if err != nil {
			return nil, err
		}
		header.Set(k, v)
	}
	if err := x.setAuth(node, c.Auth, header); err != nil {
		return nil, err
	}
	var body []byte
	if c.Body != nil {
		v, err := workflow.RenderJSON(c.Body, x.scope)
		if err != nil {
			return nil, fmt.Errorf("render config.body of node %q: %w", node.ID, err)
		}
		if s, ok := v.(string); ok {
			body = []byte(s)
			if header.Get("Content-Type") == "" && !json.Valid(body) {
				header.Set("Content-Type", "text/plain; charset=utf-8")
			}
		} else if body, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("encode config.body of node %q: %w", node.ID, err)
		}
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", "application/json")
		}
	}
	if header.Get("User-Agent") == "" {
		header.Set("User-Agent", "switchboard-http-node")
	}
	for k, vs := range header {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				// The request could never be sent: no attempt would change that.
				return nil, workflow.Errorf(workflow.CodeInvalid, "node %q: header %s holds a line break or NUL once rendered", node.ID, k)
			}
		}
	}
	for attempt := 1; ; attempt++ {
		out, fail := x.httpAttempt(ctx, cfg, c, host, u, header, body)
		if fail == nil {
			out["attempts"] = attempt
			return out, nil
		}
		if !fail.retry || attempt > c.Retries || ctx.Err() != nil {
			if attempt > 1 {
				return nil, fmt.Errorf("node %q: %w (after %d attempts)", node.ID, fail.err, attempt)
			}
			return nil, fmt.Errorf("node %q: %w", node.ID, fail.err)
		}
		x.log(slog.LevelWarn, node.ID, "Node %s: attempt %d of %d failed: %v; trying again in %s", node.ID, attempt, c.Retries+1, fail.err, c.RetryDelay)
		if err := sleepCtx(ctx, c.RetryDelay); err != nil {
			return nil, err
		}
	}
}

// setAuth adds the node's auth to header, its fields rendered (they may
// name secret variables, which the record masks wherever they appear).
func (x *execution) setAuth(node *workflow.Node, a workflow.HTTPAuth, header http.Header) error {
	field := func(name, text string) (string, error) { return x.render(node, "auth."+name, text) }
	switch a.Type {
	case "basic":
		user, err := field("username", a.Username)
		if err != nil {
			return err
		}
		pass, err := field("password", a.Password)
		if err != nil {
			return err
		}
		r := http.Request{Header: header}
		r.SetBasicAuth(user, pass)
	case "bearer":
		tok, err := field("token", a.Token)
		if err != nil {
			return err
		}
		header.Set("Authorization", "Bearer "+tok)
	case "api_key":
		key, err := field("key", a.Key)
		if err != nil {
			return err
		}
		header.Set(a.Header, key)
	}
	return nil
}

// httpAttempt makes one request and reads its response.
func (x *execution) httpAttempt(ctx context.Context, cfg HTTPConfig, c workflow.HTTPNodeConfig, host string, u *url.URL, header http.Header, body []byte) (map[string]any, *httpFailure) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.Timeout, errHTTPTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, u.String(), rd)
	if err != nil {
		return nil, &httpFailure{err: fmt.Errorf("url %q: %v", u.Redacted(), err)}
	}
	req.Header = header.Clone()
	client, done := guardedClient(cfg.AllowPrivate, host, c.Timeout)
	defer done()
	resp, err := client.Do(req)
	if err != nil {
		err = requestError(ctx, err, c.Method, u, c.Timeout)
		var rr *redirectRefused
		var ar *addressRefused
		refused := errors.As(err, &rr) || errors.As(err, &ar)
		return nil, &httpFailure{err: err, retry: !refused}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPNodeBody+1))
	if err != nil {
		return nil, &httpFailure{err: requestError(ctx, err, c.Method, u, c.Timeout), retry: true}
	}
	if len(data) > maxHTTPNodeBody {
		return nil, &httpFailure{err: fmt.Errorf("%s %s: the response body is over %d bytes, the most an http node reads", c.Method, u.Redacted(), maxHTTPNodeBody)}
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if len(c.ExpectedStatus) > 0 {
		ok = slices.Contains(c.ExpectedStatus, resp.StatusCode)
	}
	if !ok {
		want := "a 2xx status"
		if len(c.ExpectedStatus) > 0 {
			want = fmt.Sprint("one of ", c.ExpectedStatus)
		}
		return nil, &httpFailure{
			err:   fmt.Errorf("%s %s answered %s, not %s: %s", c.Method, u.Redacted(), resp.Status, want, snippet(data)),
			retry: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
		}
	}
	headers := make(map[string]any, len(resp.Header))
	for k, v := range resp.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	final := u
	if resp.Request != nil {
		final = resp.Request.URL
	}
	return map[string]any{"status": resp.StatusCode, "headers": headers, "body": responseValue(resp, data), "url": final.Redacted()}, nil
}

// responseValue is a response body as an output: parsed when it is JSON
// (by its content type, or by its look when the server names none), text
// otherwise, and a note when it is not text at all.
func responseValue(resp *http.Response, data []byte) any {
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	trimmed := bytes.TrimSpace(data)
	if strings.Contains(ct, "json") || (ct == "" && len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')) {
		var v any
		if json.Unmarshal(trimmed, &v) == nil {
			return v
		}
	}
	if !utf8.Valid(data) {
		return fmt.Sprintf("[a body of %d bytes that is not text]", len(data))
	}
	return string(data)
}

// snippet is the start of a response body, for an error message.
func snippet(data []byte) string {
	const max = 200
	if !utf8.Valid(data) {
		return fmt.Sprintf("[%d bytes that are not text]", len(data))
	}
	s := strings.TrimSpace(string(data))
	if len(s) > max {
		n := max
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	if s == "" {
		return "(no body)"
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
