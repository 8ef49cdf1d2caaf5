package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// HTTPConfig is how the built-in http_request tool and http nodes reach
// the web. A worker reads its own (flags and environment), so the operator
// gives every worker the same lists as the server; the workflow's
// metadata.http_allow travels with the workflow. Timeout and MaxBytes are
// the tool's; an http node has its own config.timeout and reads up to
// 1 MiB.
type HTTPConfig struct {
	// Allow lists the hosts every workflow's nodes may request, besides
	// those of its metadata.http_allow (workflow.CheckHostPattern entries).
	Allow []string
	// AllowPrivate lists the hosts that may be requested although they
	// resolve to a loopback, link-local, private, unspecified or multicast
	// address; they are allowed as if in Allow. Only the operator sets it:
	// a workflow imported from someone else must not reach the host's own
	// services or a cloud metadata endpoint.
	AllowPrivate []string
	Timeout      time.Duration // one request, its body read included; 15 s when <= 0
	MaxBytes     int           // the most of a response body the model reads; 64 KiB when <= 0
}

func (c HTTPConfig) withDefaults() HTTPConfig {
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 10
	}
	return c
}

// errHTTPTimeout is the cause of a request's own timeout.
var errHTTPTimeout = errors.New("http_request timed out")

// maxRedirects bounds the redirects one request follows.
const maxRedirects = 5

// httpAllowHint says how to allow a host, in the errors the model reads.
const httpAllowHint = "add it to the workflow's metadata.http_allow, or to --http-allow (SWITCHBOARD_HTTP_ALLOW) of the server and of every worker"

var httpRequestSchema = schema(map[string]any{
	"method":  map[string]any{"type": "string", "enum": []string{"GET", "POST"}},
	"url":     map[string]any{"type": "string", "description": "an http or https URL on an allowed host"},
	"headers": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": "optional request headers"},
	"body":    map[string]any{"type": "object", "description": "optional: the JSON body of a POST, sent as application/json"},
}, "method", "url")

// ownTools are the tools besides the communication functions that the
// node's config.tools allows it: http_request and MCP servers' tools.
func (a *agent) ownTools(ctx context.Context) []tool {
	var tools []tool
	if workflow.AllowsTool(a.cfg.Tools, workflow.ToolHTTPRequest) {
		tools = append(tools, a.httpRequestTool())
	}
	return append(tools, a.mcpTools(ctx)...)
}

// httpRequestTool is http_request for the agent: GET or POST to the hosts
// its workflow and the operator allow, never to a private address unless
// the operator names the host (see dialChecked).
func (a *agent) httpRequestTool() tool {
	cfg := a.http.withDefaults()
	allow := httpAllowList(a.wf.HTTPAllow(), cfg)
	desc := "Make an HTTP GET or POST request and read the response: status, content type and body (the first " +
		fmt.Sprint(cfg.MaxBytes) + " bytes). Only allowed hosts can be reached"
	if len(allow) > 0 {
		desc += ": " + strings.Join(allow, ", ")
	} else {
		desc += "; none is allowed yet"
	}
	return tool{
		def:   llm.Tool{Name: workflow.ToolHTTPRequest, Description: desc + ".", Parameters: httpRequestSchema},
		limit: cfg.MaxBytes + 1024, // the status, headers and notes around the body
		call: func(ctx context.Context, raw json.RawMessage) (string, error) {
			return httpRequest(ctx, cfg, allow, raw)
		},
	}
}

// httpRequest makes the request a call of http_request asks for and
// returns the response as the model reads it. Whatever goes wrong, a
// refused host as much as a timeout, is an error for the model to read.
func httpRequest(ctx context.Context, cfg HTTPConfig, allow []string, raw json.RawMessage) (string, error) {
	var args struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return "", err
	}
	method := strings.ToUpper(strings.TrimSpace(args.Method))
	if method == "" {
		method = http.MethodGet
	}
	if method != http.MethodGet && method != http.MethodPost {
		return "", fmt.Errorf("method %q: http_request makes GET and POST requests only", args.Method)
	}
	u, err := url.Parse(strings.TrimSpace(args.URL))
	switch {
	case err != nil:
		return "", fmt.Errorf("url %q cannot be read: %v", args.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("url %q: give an http:// or https:// URL", args.URL)
	case u.Hostname() == "":
		return "", fmt.Errorf("url %q has no host", args.URL)
	}
	host := u.Hostname()
	if !workflow.HostAllowed(allow, host) {
		return "", fmt.Errorf("host %q is not allowed: %s", host, httpAllowHint)
	}
	var body io.Reader
	body, err = requestBody(method, args.Body)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout, errHTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return "", fmt.Errorf("url %q: %v", args.URL, err)
	}
	for k, v := range args.Headers {
		req.Header.Set(k, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "switchboard-http-request")
	}
	client, done := guardedClient(cfg.AllowPrivate, host, cfg.Timeout)
	defer done()
	resp, err := client.Do(req)
	if err != nil {
		return "", requestError(ctx, err, method, u, cfg.Timeout)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(cfg.MaxBytes)+1))
	if err != nil {
		return "", requestError(ctx, err, method, u, cfg.Timeout)
	}
	return responseText(resp, u, data, cfg.MaxBytes), nil
}

// requestBody is the body of a request: none for a GET, the JSON of the
// call's body for a POST. A body given as a string that holds JSON (a
// model's way of writing an object now and then) is sent as that JSON.
func requestBody(method string, raw json.RawMessage) (io.Reader, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if method == http.MethodGet {
		return nil, errors.New("a GET request has no body: use POST to send one")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && json.Valid([]byte(s)) {
		raw = json.RawMessage(s)
	}
	return bytes.NewReader(raw), nil
}

// responseText is a response as the model reads it: the status, the
// content type, where a redirect led, and the body, cut at max bytes.
func responseText(resp *http.Response, asked *url.URL, data []byte, max int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %s\n", resp.Status)
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		fmt.Fprintf(&b, "Content-Type: %s\n", ct)
	}
	if resp.Request != nil && resp.Request.URL.String() != asked.String() {
		fmt.Fprintf(&b, "(redirected to %s)\n", resp.Request.URL)
	}
	b.WriteString("\n")
	cut := len(data) > max
	if cut {
		n := max
		for n > 0 && !utf8.RuneStart(data[n]) {
			n--
		}
		data = data[:n]
	}
	switch {
	case !utf8.Valid(data):
		fmt.Fprintf(&b, "[a body of %d bytes that is not text; it is not shown]", len(data))
		return b.String()
	default:
		b.Write(data)
	}
	if cut {
		fmt.Fprintf(&b, "\n[cut: the body is longer than %d bytes; only the first %d are shown]", max, len(data))
	}
	return b.String()
}

// requestError is what the model reads of a failed request: the refusal
// itself, a timeout named as one, or the transport's error.
func requestError(ctx context.Context, err error, method string, u *url.URL, timeout time.Duration) error {
	var rr *redirectRefused
	var ar *addressRefused
	switch {
	case errors.As(err, &rr):
		return rr
	case errors.As(err, &ar):
		return ar
	case context.Cause(ctx) == errHTTPTimeout: // not the node's own deadline
		return fmt.Errorf("%s %s: no complete response within %s", method, u.Redacted(), timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s %s: %v", method, u.Redacted(), err)
}

// redirectRefused is a redirect to another host, which http_request does
// not follow: the allow-list names hosts, and a redirect must not lead
// around it.
type redirectRefused struct{ from, to string }

func (e *redirectRefused) Error() string {
	return fmt.Sprintf("%s redirected to another host, %q; http_request follows redirects on the same host only: request %q directly if it is allowed", e.from, e.to, e.to)
}

// addressRefused is a dial to an address http_request must not reach.
type addressRefused struct {
	host string
	addr netip.Addr
	kind string
}

func (e *addressRefused) Error() string {
	return fmt.Sprintf("host %q resolves to %s, a %s address: http_request and http nodes refuse loopback, link-local, private, unspecified and multicast addresses "+
		"unless the operator names the host in --http-allow-private (SWITCHBOARD_HTTP_ALLOW_PRIVATE)", e.host, e.addr, e.kind)
}

// checkedDialer dials as net.Dialer does, and refuses an address that is
// not public unless its host is in private. The check is on the address
// being dialled, after resolution: a host name that resolved to a public
// address when it was checked and to a private one when dialled (DNS
// rebinding) is caught here, and so is every redirect's dial.
type checkedDialer struct {
	private []string
}

// DialContext dials addr ("host:port") on network, checking every address
// the host resolves to before it is connected to.
func (d *checkedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	privateOK := workflow.HostAllowed(d.private, host)
	if ip, err := netip.ParseAddr(host); err == nil && !privateOK {
		// An address given as such is refused before any socket is made
		// (Control checks it again, as it checks every resolved one).
		if kind := nonPublic(ip); kind != "" {
			return nil, &addressRefused{host: host, addr: ip.Unmap(), kind: kind}
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ipText, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(ipText)
		if err != nil {
			return fmt.Errorf("dial %s: %w", address, err)
		}
		if kind := nonPublic(ip); kind != "" && !privateOK {
			return &addressRefused{host: host, addr: ip.Unmap(), kind: kind}
		}
		return nil
	}}
	return dialer.DialContext(ctx, network, addr)
}

// sharedSpace (RFC 6598, carrier-grade NAT) and thisNetwork (0.0.0.0/8)
// are not public either, though netip has no predicate for them.
var (
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
)

// nonPublic names the kind of address ip is when http_request must not
// reach it without the operator's leave, or returns "". An IPv4 address
// written as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address.
func nonPublic(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsPrivate(), sharedSpace.Contains(ip):
		return "private"
	case ip.IsUnspecified(), thisNetwork.Contains(ip):
		return "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	}
	return ""
}
