// Package tools reaches the tools agents call beyond their team: the tools
// of MCP servers, through the official Go SDK of the protocol.
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-dev/switchboard/workflow"
)

// DefaultCallTimeout bounds one start, listing or call of an MCP server
// when the operator sets no other.
const DefaultCallTimeout = 60 * time.Second

// DefaultIdleTimeout is how long a session goes unused before it is
// closed, when the operator sets no other: a stdio server is a process
// that holds memory, and one a workflow used once should not stay for the
// life of the server.
const DefaultIdleTimeout = 5 * time.Minute

// Tool is a tool an MCP server offers: its name on the server, what it
// says it does, and the JSON schema of its arguments.
type Tool struct {
	Name        string
	Description string
	Schema      json.RawMessage
}

// MCP holds the sessions of the MCP servers agents call: a server is
// started (or connected to) when a node first needs it, and its session is
// reused by every execution after, until it goes unused for the idle
// timeout (its process is stopped, and started again by the next use),
// the server goes away, or Close.
// A server that fails to start, crashes or does not answer within the call
// timeout is an error, never a hang. It is safe for concurrent use.
type MCP struct {
	timeout time.Duration
	idle    time.Duration
	logger  *slog.Logger
	client  *mcp.Client
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	mu       sync.Mutex
	sessions map[string]*session // by sessionKey
	closed   bool
}

// session is one server's connection; ready is closed once the connect
// attempt has ended, with sess or err set.
type session struct {
	ready chan struct{}
	sess  *mcp.ClientSession
	err   error

	// Guarded by MCP.mu: the listings and calls using the session now,
	// when the last one ended, and the timer that closes the session once
	// it has been unused for the idle timeout (nil until it is connected).
	busy int
	last time.Time
	reap *time.Timer
}

// MCPOptions configure an MCP. Zero fields take the defaults.
type MCPOptions struct {
	// CallTimeout bounds every start, listing and call;
	// DefaultCallTimeout when <= 0.
	CallTimeout time.Duration
	// IdleTimeout is how long a session may go without a listing or a
	// call before it is closed (a stdio server's process stopped);
	// DefaultIdleTimeout when <= 0.
	IdleTimeout time.Duration
	// WorkflowDial dials the URLs of the servers a workflow declares (not
	// the operator's): the executor's checked dialer, which refuses
	// private addresses the operator did not name, as http_request does.
	// Nil dials as net.Dialer does.
	WorkflowDial func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger       *slog.Logger
}

// NewMCP returns an MCP with no sessions yet.
func NewMCP(o MCPOptions) *MCP {
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &MCP{
		timeout:  o.CallTimeout,
		idle:     o.IdleTimeout,
		logger:   o.Logger,
		dial:     o.WorkflowDial,
		client:   mcp.NewClient(&mcp.Implementation{Name: "switchboard", Version: "1"}, nil),
		sessions: map[string]*session{},
	}
}

// CallTimeout is the bound of one call.
func (m *MCP) CallTimeout() time.Duration { return m.timeout }

// errClosed is the error of a server reached after Close.
var errClosed = errors.New("switchboard is shutting down: its MCP sessions are closed")

// sessionKey tells servers apart: two workflows may give one name to
// different servers, and a session is reused only for the same one.
func sessionKey(s workflow.MCPServer) string {
	data, _ := json.Marshal(s) // maps marshal in key order
	if s.Global {
		return "global:" + string(data)
	}
	return "workflow:" + string(data)
}

// connect returns the session of s, starting the server when there is
// none or the last one went away, and marks it in use until release is
// called: a session in use is not closed for being idle.
func (m *MCP) connect(ctx context.Context, s workflow.MCPServer) (sess *mcp.ClientSession, release func(), err error) {
	key := sessionKey(s)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, nil, errClosed
	}
	c, ok := m.sessions[key]
	if !ok {
		c = &session{ready: make(chan struct{})}
		m.sessions[key] = c
		go m.start(c, key, s)
	}
	c.busy++
	if c.reap != nil {
		c.reap.Stop()
	}
	m.mu.Unlock()
	release = func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		c.busy--
		c.last = time.Now()
		if c.busy == 0 && c.reap != nil && m.sessions[key] == c {
			c.reap.Reset(m.idle)
		}
	}
	select {
	case <-c.ready:
	case <-ctx.Done():
		release()
		return nil, nil, context.Cause(ctx)
	}
	if c.err != nil {
		release()
		return nil, nil, c.err
	}
	return c.sess, release, nil
}

// reapIdle closes the session c of key if it has gone unused for the idle
// timeout; a use that began or ended meanwhile keeps it (the timer may
// fire just as a use begins).
func (m *MCP) reapIdle(key string, c *session, name string) {
	m.mu.Lock()
	if m.sessions[key] != c || c.busy > 0 {
		m.mu.Unlock()
		return
	}
	if left := m.idle - time.Since(c.last); left > 0 {
		c.reap.Reset(left)
		m.mu.Unlock()
		return
	}
	delete(m.sessions, key)
	m.mu.Unlock()
	m.logger.Info("MCP server stopped: unused for the idle timeout; the next use starts it again", "mcp_server", name, "idle", m.idle)
	_ = c.sess.Close()
}

// start connects to s, within the call timeout, and watches the session:
// when it ends (the process exited, the connection broke), it is
// forgotten, so that the next call starts the server again.
func (m *MCP) start(c *session, key string, s workflow.MCPServer) {
	// The session outlives the node that first needed it: its own
	// context, bounded by the timeout while it starts.
	ctx, cancel := context.WithTimeoutCause(context.Background(), m.timeout,
		fmt.Errorf("MCP server %q did not start within %s", s.Name, m.timeout))
	defer cancel()
	var t mcp.Transport
	var stderr *stderrLog
	if len(s.Command) > 0 {
		cmd := exec.Command(s.Command[0], s.Command[1:]...)
		cmd.Env = os.Environ()
		for k, v := range s.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		stderr = &stderrLog{logger: m.logger, server: s.Name, redact: workflow.NewRedactor(s.Secrets)}
		cmd.Stderr = stderr
		t = &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}
	} else {
		var base http.RoundTripper = http.DefaultTransport
		if !s.Global && m.dial != nil {
			// No proxy: it would dial in the workflow's place, past the check.
			base = &http.Transport{Proxy: nil, DialContext: m.dial, ForceAttemptHTTP2: true, TLSHandshakeTimeout: m.timeout, IdleConnTimeout: 90 * time.Second}
		}
		client := &http.Client{Transport: headerTransport{headers: s.Headers, base: base}}
		t = &mcp.StreamableClientTransport{Endpoint: s.URL, HTTPClient: client, MaxRetries: 1}
	}
	sess, err := m.client.Connect(ctx, t, nil)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		c.err = fmt.Errorf("MCP server %q could not be started: %w", s.Name, err)
		if tail := stderr.lastLines(); tail != "" {
			// Why a program quit (a missing file, a bad argument) is
			// in what it wrote, which the log shows only at debug level.
			c.err = fmt.Errorf("%w; its stderr ended with: %s", c.err, tail)
		}
		m.forget(key, c)
		close(c.ready)
		return
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		c.sess = sess
		c.last = time.Now()
		c.reap = time.AfterFunc(m.idle, func() { m.reapIdle(key, c, s.Name) })
		if c.busy > 0 {
			// The callers waiting for the start release it when done.
			c.reap.Stop()
		}
	}
	m.mu.Unlock()
	if closed {
		_ = sess.Close()
		c.err = errClosed
		close(c.ready)
		return
	}
	m.logger.Info("MCP server started", "mcp_server", s.Name)
	close(c.ready)
	go func() {
		err := sess.Wait()
		m.forget(key, c)
		m.logger.Info("MCP session ended", "mcp_server", s.Name, "err", err)
	}()
}

// forget drops c, if it is still the session of key.
func (m *MCP) forget(key string, c *session) {
	m.mu.Lock()
	if m.sessions[key] == c {
		delete(m.sessions, key)
	}
	m.mu.Unlock()
}

// List returns the tools of server s, starting it if need be.
func (m *MCP) List(ctx context.Context, s workflow.MCPServer) ([]Tool, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout,
		fmt.Errorf("MCP server %q did not list its tools within %s", s.Name, m.timeout))
	defer cancel()
	tools, err := m.list(ctx, s)
	if err != nil && ctx.Err() == nil {
		// A session that broke a moment ago (its server crashed) may not
		// be forgotten yet: listing is safe to repeat, once, on a new one.
		m.drop(s)
		tools, err = m.list(ctx, s)
	}
	return tools, err
}

// drop forgets the session of s, whatever state it is in; the next use
// starts the server again.
func (m *MCP) drop(s workflow.MCPServer) {
	key := sessionKey(s)
	m.mu.Lock()
	c := m.sessions[key]
	delete(m.sessions, key)
	m.mu.Unlock()
	if c != nil {
		go func() {
			<-c.ready
			if c.sess != nil {
				_ = c.sess.Close()
			}
		}()
	}
}

func (m *MCP) list(ctx context.Context, s workflow.MCPServer) ([]Tool, error) {
	sess, release, err := m.connect(ctx, s)
	if err != nil {
		return nil, err
	}
	defer release()
	var out []Tool
	for t, err := range sess.Tools(ctx, nil) {
		if err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			return nil, fmt.Errorf("list the tools of MCP server %q: %w", s.Name, err)
		}
		schema, err := json.Marshal(t.InputSchema)
		if err != nil || t.InputSchema == nil {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		out = append(out, Tool{Name: t.Name, Description: t.Description, Schema: schema})
	}
	return out, nil
}

// Call calls tool of server s with args (a JSON object) and returns its
// result as the model reads it: its text, other content described. A
// result the server marks as an error, a server that is gone, and a call
// without an answer within the timeout are errors.
func (m *MCP) Call(ctx context.Context, s workflow.MCPServer, tool string, args json.RawMessage) (string, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout,
		fmt.Errorf("MCP server %q did not answer %s within %s", s.Name, tool, m.timeout))
	defer cancel()
	sess, release, err := m.connect(ctx, s)
	if err != nil {
		return "", err
	}
	defer release()
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return "", fmt.Errorf("MCP server %q, tool %s: %w", s.Name, tool, err)
	}
	text := resultText(res)
	if res.IsError {
		if strings.TrimSpace(text) == "" {
			text = "the tool reported an error without a message"
		}
		return "", fmt.Errorf("MCP server %q, tool %s: %s", s.Name, tool, text)
	}
	return text, nil
}

// resultText is a tool's result as text: its text content; other content
// named with its type and size; the structured content as JSON when there
// is nothing else.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			parts = append(parts, c.Text)
		case *mcp.ImageContent:
			parts = append(parts, fmt.Sprintf("[an image, %s, %d bytes, not shown]", c.MIMEType, len(c.Data)))
		case *mcp.AudioContent:
			parts = append(parts, fmt.Sprintf("[audio, %s, %d bytes, not shown]", c.MIMEType, len(c.Data)))
		case *mcp.ResourceLink:
			parts = append(parts, fmt.Sprintf("[resource %s: %s]", c.Name, c.URI))
		case *mcp.EmbeddedResource:
			if c.Resource != nil && c.Resource.Text != "" {
				parts = append(parts, c.Resource.Text)
			} else if c.Resource != nil {
				parts = append(parts, fmt.Sprintf("[resource %s, not text, not shown]", c.Resource.URI))
			}
		default:
			data, _ := json.Marshal(c)
			parts = append(parts, string(data))
		}
	}
	if len(parts) == 0 && res.StructuredContent != nil {
		data, _ := json.Marshal(res.StructuredContent)
		parts = append(parts, string(data))
	}
	return strings.Join(parts, "\n")
}

// Close ends every session and stops the servers it started; a server
// reached after it is an error. It waits for no call in flight: those end
// with their broken session.
func (m *MCP) Close() error {
	m.mu.Lock()
	m.closed = true
	sessions := m.sessions
	m.sessions = map[string]*session{}
	m.mu.Unlock()
	var errs []error
	for _, c := range sessions {
		<-c.ready // bounded by the call timeout
		m.mu.Lock()
		if c.reap != nil {
			c.reap.Stop()
		}
		m.mu.Unlock()
		if c.sess != nil {
			if err := c.sess.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// headerTransport sends a server's headers with every request.
type headerTransport struct {
	headers map[string]string
	base    http.RoundTripper
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(t.headers) > 0 {
		r = r.Clone(r.Context())
		for k, v := range t.headers {
			r.Header.Set(k, v)
		}
	}
	return t.base.RoundTrip(r)
}

// stderrLog logs what a server's process writes to its stderr, line by
// line at debug level: it is the server's own log, which may show the
// secrets its env was given; those are masked.
type stderrLog struct {
	logger *slog.Logger
	server string
	redact *workflow.Redactor

	mu   sync.Mutex
	last []string // the last stderrTail lines, masked
}

// stderrTail is how many of the last lines of a server's stderr an error
// of its start quotes.
const stderrTail = 5

func (w *stderrLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		line = w.redact.String(line)
		w.logger.Debug("MCP server stderr", "mcp_server", w.server, "line", line)
		if strings.TrimSpace(line) == "" {
			continue
		}
		w.mu.Lock()
		if w.last = append(w.last, line); len(w.last) > stderrTail {
			w.last = w.last[1:]
		}
		w.mu.Unlock()
	}
	return len(p), nil
}

// lastLines are the last lines the process wrote to its stderr, joined;
// "" for none, or for no process (w nil).
func (w *stderrLog) lastLines() string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.last, " | ")
}
