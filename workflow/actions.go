package workflow

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"time"
)

// nodeTypeList names the node types in messages.
const nodeTypeList = "start, end, ai-processor, human, http (or webhook), condition, filter, transformer, delay or email"

// IsAction reports whether typ is an action node type: one that does its
// work in the server process (a request, a mail, a wait, an expression)
// and is never placed on a worker.
func IsAction(typ string) bool {
	switch typ {
	case NodeHTTP, NodeWebhook, NodeCondition, NodeFilter, NodeTransformer, NodeDelay, NodeEmail:
		return true
	}
	return false
}

// Limits of action nodes: generous for real use, small enough that a
// typing error cannot hold a run (or a mail server) for ever.
const (
	MaxActionTimeout     = 300          // seconds: one HTTP request
	DefaultActionTimeout = 30           // seconds: one HTTP request when config.timeout is unset
	MaxActionRetries     = 10           // retries of one HTTP request or mail
	MaxRetryDelay        = 300          // seconds between two attempts
	MaxDelaySeconds      = 24 * 60 * 60 // one delay node: a day
)

// HTTPAuth is the auth object of an http node: type "basic" (Username,
// Password), "bearer" (Token) or "api_key" (Key, sent in Header, X-API-Key
// by default). Its strings are templates, so they can name secret
// variables.
type HTTPAuth struct {
	Type, Username, Password, Token, Key, Header string
}

// HTTPNodeConfig is the typed configuration of an http (webhook) node. The
// strings (URL, header and param values, the strings inside Body, the auth
// fields) are templates rendered when the node runs.
type HTTPNodeConfig struct {
	URL     string
	Method  string // upper case; POST when a body is given, else GET, when unset
	Headers map[string]string
	Params  map[string]string
	Body    any // the JSON value of config.body; nil: none
	Auth    HTTPAuth
	Timeout time.Duration
	Retries int
	// RetryDelay is the wait between attempts (1 s when unset).
	RetryDelay time.Duration
	// ExpectedStatus lists the statuses that count as success; empty: any 2xx.
	ExpectedStatus []int
}

// EmailNodeConfig is the typed configuration of an email node. To, Cc and
// Bcc are comma-separated lists; every string is a template.
type EmailNodeConfig struct {
	To, Cc, Bcc, From, Subject, Body string
	Format                           string // "text" or "html"
	Retries                          int
	RetryDelay                       time.Duration
}

var httpMethods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "HEAD": true}

type reader struct {
	path string
	c    map[string]any
	add  func(string, string, ...any)
}

func (r reader) str(key string, required bool) string {
	v, ok := r.c[key]
	if !ok || v == nil {
		if required {
			r.add(r.path+"."+key, "is required")
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.add(r.path+"."+key, "must be a string, not %s", describe(v))
	} else if required && strings.TrimSpace(s) == "" {
		r.add(r.path+"."+key, "must not be empty")
	}
	return s
}

// addresses reads recipients: one string, split on commas when the mail
// is sent, or a list of strings, which it joins with commas.
func (r reader) addresses(key string, required bool) string {
	list, ok := r.c[key].([]any)
	if !ok {
		return r.str(key, required)
	}
	parts := make([]string, 0, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			r.add(fmt.Sprintf("%s.%s[%d]", r.path, key, i), "must be a string, not %s", describe(v))
			continue
		}
		parts = append(parts, s)
	}
	joined := strings.Join(parts, ", ")
	if required && strings.TrimSpace(joined) == "" {
		r.add(r.path+"."+key, "must not be empty")
	}
	return joined
}

// seconds reads a number of seconds in (0, max] (0 allowed when zeroOK),
// def when absent.
func (r reader) seconds(key string, def, max float64, zeroOK bool) time.Duration {
	v, ok := r.c[key]
	if !ok || v == nil {
		return time.Duration(def * float64(time.Second))
	}
	f, ok := number(v)
	switch {
	case !ok || f < 0 || (f == 0 && !zeroOK):
		r.add(r.path+"."+key, "must be a positive number of seconds, not %s", describe(v))
		return time.Duration(def * float64(time.Second))
	case f > max:
		r.add(r.path+"."+key, "must be at most %d seconds, not %s", int64(max), describe(v))
		f = max
	}
	return time.Duration(f * float64(time.Second))
}

func (r reader) count(key string, max int) int {
	v, ok := r.c[key]
	if !ok || v == nil {
		return 0
	}
	f, ok := number(v)
	switch {
	case !ok || f != math.Trunc(f) || f < 0:
		r.add(r.path+"."+key, "must be a whole number from 0 to %d, not %s", max, describe(v))
		return 0
	case f > float64(max):
		r.add(r.path+"."+key, "must be at most %d, not %s", max, describe(v))
		return max
	}
	return int(f)
}

// textMap reads an object whose values are strings (or, when scalars,
// numbers and booleans, written as text).
func (r reader) textMap(key string, scalars bool) map[string]string {
	v, ok := r.c[key]
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.add(r.path+"."+key, "must be an object of names to strings, not %s", describe(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		switch x := m[k].(type) {
		case string:
			out[k] = x
		default:
			if scalars && x != nil && kind(x) != "an object" && kind(x) != "an array" {
				out[k] = toText(x)
				continue
			}
			r.add(r.path+"."+key+"."+k, "must be a string, not %s", describe(x))
		}
	}
	return out
}

// ReadHTTP reads an http (or webhook) node's config. Values of the wrong
// type are left at their defaults; Validate reports them.
func (n *Node) ReadHTTP() HTTPNodeConfig {
	return readHTTP(reader{path: "config", c: n.Config, add: func(string, string, ...any) {}})
}

func readHTTP(r reader) HTTPNodeConfig {
	c := HTTPNodeConfig{URL: r.str("url", true)}
	if c.URL != "" && !strings.Contains(c.URL, "{{") {
		u, err := url.Parse(strings.TrimSpace(c.URL))
		switch {
		case err != nil:
			r.add(r.path+".url", "cannot be read as a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			r.add(r.path+".url", "must be an http:// or https:// URL, not %q", c.URL)
		case u.Hostname() == "":
			r.add(r.path+".url", "has no host: %q", c.URL)
		}
	}
	c.Method = strings.ToUpper(strings.TrimSpace(r.str("method", false)))
	if c.Method != "" && !httpMethods[c.Method] {
		r.add(r.path+".method", "must be GET, POST, PUT, PATCH, DELETE or HEAD, not %q", c.Method)
		c.Method = ""
	}
	c.Headers = r.textMap("headers", false)
	for _, k := range sortedTextKeys(c.Headers) {
		if !validHeaderName(k) {
			r.add(r.path+".headers", "%q is not a header name", k)
		}
	}
	c.Params = r.textMap("params", true)
	c.Body = r.c["body"]
	if c.Method == "" {
		c.Method = "GET"
		if c.Body != nil {
			c.Method = "POST"
		}
	} else if c.Body != nil && (c.Method == "GET" || c.Method == "HEAD") {
		r.add(r.path+".body", "a %s request has no body: use POST, PUT or PATCH to send one", c.Method)
	}
	if v, ok := r.c["auth"]; ok && v != nil {
		c.Auth = readAuth(reader{path: r.path + ".auth", add: r.add}, v)
	}
	c.Timeout = r.seconds("timeout", DefaultActionTimeout, MaxActionTimeout, false)
	c.Retries = r.count("retries", MaxActionRetries)
	c.RetryDelay = r.seconds("retry_delay", 1, MaxRetryDelay, true)
	if v, ok := r.c["expected_status"]; ok && v != nil {
		list, isList := v.([]any)
		if !isList {
			list = []any{v}
		}
		for j, s := range list {
			f, ok := number(s)
			if !ok || f != math.Trunc(f) || f < 100 || f > 599 {
				p := r.path + ".expected_status"
				if isList {
					p = fmt.Sprintf("%s[%d]", p, j)
				}
				r.add(p, "must be an HTTP status from 100 to 599, not %s", describe(s))
				continue
			}
			c.ExpectedStatus = append(c.ExpectedStatus, int(f))
		}
	}
	return c
}

func readAuth(r reader, v any) HTTPAuth {
	m, ok := v.(map[string]any)
	if !ok {
		r.add(r.path, "must be an object with a type (basic, bearer or api_key), not %s", describe(v))
		return HTTPAuth{}
	}
	r.c = m
	a := HTTPAuth{Type: r.str("type", true)}
	switch a.Type {
	case "basic":
		a.Username, a.Password = r.str("username", true), r.str("password", false)
	case "bearer":
		a.Token = r.str("token", true)
	case "api_key":
		a.Key, a.Header = r.str("key", true), r.str("header", false)
		if a.Header == "" {
			a.Header = "X-API-Key"
		} else if !validHeaderName(a.Header) {
			r.add(r.path+".header", "%q is not a header name", a.Header)
		}
	case "":
	default:
		r.add(r.path+".type", "must be basic, bearer or api_key, not %q", a.Type)
	}
	return a
}

func sortedTextKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// ReadEmail reads an email node's config. Values of the wrong type are
// left at their defaults; Validate reports them.
func (n *Node) ReadEmail() EmailNodeConfig {
	return readEmail(reader{path: "config", c: n.Config, add: func(string, string, ...any) {}})
}

func readEmail(r reader) EmailNodeConfig {
	c := EmailNodeConfig{
		To: r.addresses("to", true), Cc: r.addresses("cc", false), Bcc: r.addresses("bcc", false), From: r.str("from", false),
		Subject: r.str("subject", true), Body: r.str("body", false), Format: r.str("format", false),
	}
	switch c.Format {
	case "":
		c.Format = "text"
	case "text", "html":
	default:
		r.add(r.path+".format", "must be \"text\" or \"html\", not %q", c.Format)
		c.Format = "text"
	}
	c.Retries = r.count("retries", MaxActionRetries)
	c.RetryDelay = r.seconds("retry_delay", 1, MaxRetryDelay, true)
	if _, ok := r.c["smtp"]; ok {
		// The mail server, its account and password are the operator's to
		// choose: a workflow imported from someone else must not pick them.
		r.add(r.path+".smtp", "the mail server is set by the operator (--smtp-host, --smtp-port, --smtp-username, --smtp-password or SWITCHBOARD_SMTP_*), not by the workflow: remove this key")
	}
	return c
}

// Expression returns the expression of a condition, filter or transformer
// node: config.condition, or config.expression.
func (n *Node) Expression() string {
	for _, k := range []string{"condition", "expression"} {
		if s, ok := n.Config[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// DelaySeconds returns a delay node's wait, capped at MaxDelaySeconds.
func (n *Node) DelaySeconds() time.Duration {
	return reader{path: "config", c: n.Config, add: func(string, string, ...any) {}}.seconds("seconds", 0, MaxDelaySeconds, true)
}

// validateAction checks the config of an action node, each problem at its
// JSON path under path (nodes[i].config).
func validateAction(path string, n *Node, add func(string, string, ...any)) {
	r := reader{path: path, c: n.Config, add: add}
	switch n.Type {
	case NodeHTTP, NodeWebhook:
		readHTTP(r)
	case NodeEmail:
		readEmail(r)
	case NodeDelay:
		if v, ok := n.Config["seconds"]; !ok || v == nil {
			add(path+".seconds", "is required: how long to wait, in seconds (at most %d)", MaxDelaySeconds)
		} else {
			r.seconds("seconds", 0, MaxDelaySeconds, true)
		}
	case NodeCondition, NodeFilter:
		validateExpression(r, n.Type == NodeFilter)
	case NodeTransformer:
		_, hasTemplate := n.Config["template"]
		_, hasExpr := n.Config["expression"]
		switch {
		case hasTemplate && hasExpr:
			add(path, "give template or expression, not both")
		case hasExpr:
			validateExpression(r, false)
		case hasTemplate:
			if n.Config["template"] == nil {
				add(path+".template", "must not be null: give the JSON value to build, its strings holding {{placeholders}}")
			}
		default:
			add(path+".template", "is required: the JSON value to build, its strings holding {{placeholders}} (or give an expression)")
		}
	}
	validateTemplateRefs(path, n, add)
}

// validateExpression checks config.condition (or config.expression) and
// compiles it, so that a syntax error is found at import.
func validateExpression(r reader, asBool bool) {
	key := "condition"
	if _, ok := r.c["condition"]; !ok {
		if _, ok := r.c["expression"]; ok {
			key = "expression"
		}
	}
	src := r.str(key, true)
	if strings.TrimSpace(src) == "" {
		return
	}
	if _, err := CompileExpression(src, asBool); err != nil {
		r.add(r.path+"."+key, "%s", err.Error())
	}
}

// validateTemplateRefs checks the placeholders of an action node's
// strings, however deep in its config: {{outputs.NODE}} must name a node
// that runs before it, as in prompts.
func validateTemplateRefs(path string, n *Node, add func(string, string, ...any)) {
	walkStrings(path, n.Config, func(p, text string) {
		for _, ph := range Placeholders(text) {
			if ph == "outputs" || ph == "shared" {
				add(p, "{{%s}} needs a name after it, like {{%s.NAME}}", ph, ph)
			}
		}
	})
}

// walkStrings calls f with every string in v and its JSON path.
func walkStrings(path string, v any, f func(path, text string)) {
	switch x := v.(type) {
	case string:
		f(path, x)
	case map[string]any:
		for _, k := range sortedKeys(x) {
			walkStrings(path+"."+k, x[k], f)
		}
	case []any:
		for i, e := range x {
			walkStrings(fmt.Sprintf("%s[%d]", path, i), e, f)
		}
	}
}

// validateActionRefs checks the {{outputs.NODE}} placeholders of action
// nodes' configs: the node must exist and run before (a path of edges
// from it), or the placeholder could never render.
func validateActionRefs(w *Workflow, g *Graph, index map[string]int) []Problem {
	var ps []Problem
	var ancestors []map[int]bool
	for i := range w.Nodes {
		n := &w.Nodes[i]
		if !IsAction(n.Type) {
			continue
		}
		walkStrings(fmt.Sprintf("nodes[%d].config", i), n.Config, func(p, text string) {
			for _, ph := range Placeholders(text) {
				rest, ok := strings.CutPrefix(ph, "outputs.")
				if !ok {
					continue
				}
				ref, _, _ := strings.Cut(rest, ".")
				j, exists := index[ref]
				if !exists {
					ps = append(ps, Problem{p, fmt.Sprintf("{{%s}} refers to node %q, which is not in this workflow", ph, ref)})
					continue
				}
				if ancestors == nil {
					ancestors = g.Ancestors()
				}
				if k, ok := g.Index[n.ID]; ok && !ancestors[k][j] {
					ps = append(ps, Problem{p, fmt.Sprintf("{{%s}} needs node %q to run before %q: add a path of edges from it", ph, ref, n.ID)})
				}
			}
		})
	}
	return ps
}

// RenderJSON renders a JSON value whose strings are templates: every
// string of v, however deep, is rendered with the scope scope(text) gives.
// A string that is one placeholder and nothing else becomes the value it
// names, not its text, so "{{outputs.score}}" keeps a number a number. v
// is not changed.
func RenderJSON(v any, scope func(text string) Scope) (any, error) {
	switch x := v.(type) {
	case string:
		sc := scope(x)
		if start, end, name := nextPlaceholder(x, 0); start >= 0 && strings.TrimSpace(x[:start]) == "" && strings.TrimSpace(x[end:]) == "" {
			if val, ok := lookup(name, sc); ok {
				return val, nil
			}
		}
		return Render(x, sc)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := RenderJSON(e, scope)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := RenderJSON(e, scope)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
