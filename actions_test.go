package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/switchboard-dev/switchboard/workflow"
)

// relay is a real SMTP server (emersion/go-smtp) on loopback, without TLS
// or accounts, that keeps the mails it receives.
type relay struct {
	mu    sync.Mutex
	mails []string
	rcpts [][]string
}

type relaySession struct {
	r    *relay
	rcpt []string
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpt = append(s.rcpt, to)
	return nil
}
func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	s.r.mu.Lock()
	s.r.mails = append(s.r.mails, string(b))
	s.r.rcpts = append(s.r.rcpts, s.rcpt)
	s.r.mu.Unlock()
	return err
}
func (s *relaySession) Reset()        { s.rcpt = nil }
func (s *relaySession) Logout() error { return nil }

func startRelay(t *testing.T) (*relay, string) {
	r := &relay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r, ln.Addr().String()
}

// TestEndToEndOriginalEmailAndWebhook imports, through the API, a workflow
// shaped like the original service's email and webhook example (its node
// types and config keys), and runs it against a real SMTP server and an
// HTTP server, with the SMTP settings and the private-address leave given
// as the operator gives them (environment and flags).
func TestEndToEndOriginalEmailAndWebhook(t *testing.T) {
	t.Parallel()
	mails, smtpAddr := startRelay(t)
	host, port, _ := net.SplitHostPort(smtpAddr)
	var (
		hookMu   sync.Mutex
		hookAuth string
		hookBody map[string]any
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		defer hookMu.Unlock()
		hookAuth = r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&hookBody)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"success": true, "id": 7}`)
	}))
	t.Cleanup(hook.Close)

	base := startServer(t, map[string]string{
		"SWITCHBOARD_SMTP_HOST": host, "SWITCHBOARD_SMTP_PORT": port, "SWITCHBOARD_SMTP_USE_TLS": "false",
		"SWITCHBOARD_SMTP_FROM": "workflows@example.org",
	}, "--http-allow-private", "127.0.0.1")
	doc := `{
  "name": "User Notification Workflow",
  "nodes": [
    {"id": "start", "type": "start", "config": {}},
    {"id": "ai_processor", "type": "ai-processor", "config": {"prompt": "Generate a personalized message for {{user_name}}"}},
    {"id": "send_email", "type": "email", "config": {
      "to": "{{user_email}}", "cc": "manager@example.org,team@example.org", "bcc": "audit@example.org",
      "subject": "Your Personalized Message", "body": "{{outputs.ai_processor}}", "format": "text", "retries": 3, "retry_delay": 2}},
    {"id": "webhook_notification", "type": "webhook", "config": {
      "url": "` + hook.URL + `/events", "method": "POST",
      "headers": {"Content-Type": "application/json", "X-Workflow-ID": "{{workflow_id}}"},
      "body": {"event": "email_sent", "user": "{{user_name}}", "execution_id": "{{execution_id}}", "timestamp": "{{timestamp}}"},
      "params": {"source": "workflow", "version": "v1"},
      "auth": {"type": "bearer", "token": "{{analytics_api_token}}"},
      "timeout": 30, "retries": 3, "retry_delay": 2, "expected_status": [200, 201, 202]}}
  ],
  "edges": [
    {"from": "start", "to": "ai_processor"},
    {"from": "ai_processor", "to": "send_email"},
    {"from": "send_email", "to": "webhook_notification"}
  ],
  "variables": [
    {"name": "user_name", "value": "Ada", "type": "string"},
    {"name": "user_email", "value": "ada@example.org", "type": "string"},
    {"name": "analytics_api_token", "value": "an-analytics-token", "type": "string", "secret": true}
  ]
}`
	var created map[string]any
	if code := postJSON(t, base+"/workflows/", doc, &created); code != 201 {
		t.Fatalf("import: %d %v", code, created)
	}
	var x workflow.Execution
	if code := postJSON(t, base+"/workflows/"+created["_id"].(string)+"/execute", `{"async_execution":false}`, &x); code != 200 {
		t.Fatalf("execute: %d", code)
	}
	if x.Status != workflow.ExecSuccess {
		t.Fatalf("status %s: %s", x.Status, x.Error)
	}
	aiOut, _ := x.NodeStates["ai_processor"].Output.(string)
	mails.mu.Lock()
	if len(mails.mails) != 1 || !strings.Contains(mails.mails[0], "Subject: Your Personalized Message") ||
		!strings.Contains(strings.ReplaceAll(mails.mails[0], "=\r\n", ""), firstWords(aiOut)) ||
		len(mails.rcpts[0]) != 4 || strings.Contains(mails.mails[0], "audit@") {
		t.Errorf("mails %q to %v; want one holding the model's reply %q", mails.mails, mails.rcpts, aiOut)
	}
	mails.mu.Unlock()
	hookMu.Lock()
	if ts, _ := hookBody["timestamp"].(string); hookAuth != "Bearer an-analytics-token" || hookBody["user"] != "Ada" || hookBody["execution_id"] != x.ID || !strings.HasSuffix(ts, "Z") {
		t.Errorf("webhook got auth %q body %v", hookAuth, hookBody)
	}
	hookMu.Unlock()
	out := x.NodeStates["webhook_notification"].Output.(map[string]any)
	if out["status"] != float64(201) || out["body"].(map[string]any)["success"] != true {
		t.Errorf("webhook output %v", out)
	}
}

// firstWords is the start of a model reply, which a mail body may wrap.
func firstWords(s string) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(3, len(f))], " ")
}

// TestSMTPFlags: the SMTP settings come from the environment, a flag
// replaces its variable, and a value that does not parse names the
// variable or flag.
func TestSMTPFlags(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseServeFlags([]string{"--smtp-port", "2525"}, env(map[string]string{
		"SWITCHBOARD_SMTP_HOST": "mail.example.org", "SWITCHBOARD_SMTP_PORT": "465", "SWITCHBOARD_SMTP_USE_SSL": "true",
		"SWITCHBOARD_SMTP_USERNAME": "u", "SWITCHBOARD_SMTP_PASSWORD": "p", "SWITCHBOARD_SMTP_FROM": "f@example.org",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.smtp; s.Host != "mail.example.org" || s.Port != 2525 || !s.UseSSL || s.UseTLS || s.Username != "u" || s.Password != "p" || s.From != "f@example.org" {
		t.Errorf("smtp config %+v (implicit TLS replaces STARTTLS)", s)
	}
	if cfg, _ := parseServeFlags(nil, env(nil), io.Discard); !cfg.smtp.UseTLS || cfg.smtp.UseSSL || cfg.smtp.Host != "" {
		t.Errorf("defaults %+v: want STARTTLS required and no host", cfg.smtp)
	}
	for _, bad := range []map[string]string{{"SWITCHBOARD_SMTP_PORT": "smtp"}, {"SWITCHBOARD_SMTP_USE_TLS": "maybe"}} {
		if _, err := parseServeFlags(nil, env(bad), io.Discard); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_SMTP_") {
			t.Errorf("%v: err %v", bad, err)
		}
	}
	if _, err := parseServeFlags([]string{"--smtp-port", "70000"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "--smtp-port") {
		t.Errorf("port 70000: err %v", err)
	}
}

// TestRunCommandWithActionNodes: switchboard run takes the --smtp-* flags
// and prints a skipped branch with its reason.
func TestRunCommandWithActionNodes(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run(t.Context(), []string{"run", "examples/05_branching.json", "--input", "audience=physicist"}, testEnv, &out, t.Output()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if want := `↷ kid skipped: condition "route" took branch "expert", not "child"`; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	mails, addr := startRelay(t)
	host, port, _ := net.SplitHostPort(addr)
	f := filepath.Join(t.TempDir(), "mail.json")
	doc := `{"name":"m","nodes":[{"id":"s","type":"start"},{"id":"mail","type":"email","config":{"to":"a@example.org","subject":"hi","body":"from run"}}],"edges":[{"from":"s","to":"mail"}]}`
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := run(t.Context(), []string{"run", f, "--smtp-host", host, "--smtp-port", port, "--smtp-use-tls=false", "--smtp-from", "run@example.org"}, testEnv, &out, t.Output())
	mails.mu.Lock()
	defer mails.mu.Unlock()
	if err != nil || len(mails.mails) != 1 || !strings.Contains(mails.mails[0], "from run") {
		t.Errorf("run: %v, mails %q\n%s", err, mails.mails, out.String())
	}
}
