package executor_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/llm"
	"github.com/switchboard-dev/switchboard/workflow"
)

// received is one mail as the test SMTP server took it.
type received struct {
	from string
	rcpt []string
	data string
	tls  bool
	user string
}

// mailServer is a real SMTP server (emersion/go-smtp) on loopback that
// keeps what it receives. rejectRcpt, when set, answers the first RCPT of
// each listed count of sessions with that error.
type mailServer struct {
	addr string
	pool *x509.CertPool
	mu   sync.Mutex
	got  []received
	// failFirst makes the first n RCPT commands fail with failErr.
	failFirst int
	failErr   *smtp.SMTPError
}

func (m *mailServer) mails() []received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]received(nil), m.got...)
}

type mailSession struct {
	m   *mailServer
	c   *smtp.Conn
	cur received
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "mailer" || password != "pw-123456" {
			return errors.New("invalid credentials")
		}
		s.cur.user = username
		return nil
	}), nil
}
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.cur.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.failFirst > 0 {
		s.m.failFirst--
		return s.m.failErr
	}
	s.cur.rcpt = append(s.cur.rcpt, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	_, s.cur.tls = s.c.TLSConnectionState()
	s.m.mu.Lock()
	s.m.got = append(s.m.got, s.cur)
	s.m.mu.Unlock()
	return nil
}
func (s *mailSession) Reset()        { s.cur = received{user: s.cur.user} }
func (s *mailSession) Logout() error { return nil }

// startMailServer starts the server: "plain" (STARTTLS not offered),
// "starttls" (offered) or "implicit" (TLS from the first byte). It stops
// when the test ends.
func startMailServer(t *testing.T, mode string) *mailServer {
	t.Helper()
	cert, pool := testCert(t)
	m := &mailServer{pool: pool}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{m: m, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.AllowInsecureAuth = true
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "starttls":
		srv.TLSConfig = tlsCfg
	case "implicit":
		ln = tls.NewListener(ln, tlsCfg)
	}
	m.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return m
}

// testCert is a self-signed certificate for 127.0.0.1 and the pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func (m *mailServer) config(ssl, starttls bool) executor.SMTPConfig {
	host, port, _ := net.SplitHostPort(m.addr)
	p, _ := strconv.Atoi(port)
	return executor.SMTPConfig{Host: host, Port: p, Username: "mailer", Password: "pw-123456", From: "switchboard@example.org",
		UseSSL: ssl, UseTLS: starttls, TLSConfig: &tls.Config{RootCAs: m.pool}, Timeout: 20 * time.Second}
}

const emailDoc = `{"name":"mail","nodes":[{"id":"s","type":"start"},
	{"id":"send","type":"email","config":{"to":"ann@example.org, bob@example.org","cc":"carol@example.org","bcc":" audit@example.org ,",
		"subject":"Report on {{topic}}","body":"%s","format":"%s","retries":%d,"retry_delay":0}}],
	"edges":[{"from":"s","to":"send"}],"variables":[{"name":"topic","value":"tides"}]}`

func emailWorkflow(t *testing.T, body, format string, retries int) *workflow.Workflow {
	return parse(t, fmt.Sprintf(emailDoc, body, format, retries))
}

// TestEmailNodeOverSMTP sends through a real SMTP server in each of its
// security modes and checks what arrives: the headers, every recipient in
// RCPT with the Bcc one in no header, the body, html as text/html, and
// that the connection was encrypted when it had to be.
func TestEmailNodeOverSMTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, mode, format string
		ssl, starttls      bool
	}{
		{"STARTTLS", "starttls", "text", false, true},
		{"implicit TLS", "implicit", "html", true, false},
		{"plain text on loopback", "plain", "text", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := startMailServer(t, tc.mode)
			cfg := m.config(tc.ssl, tc.starttls)
			wantUser := "mailer"
			if tc.mode == "plain" {
				cfg.Username, wantUser = "", "" // a relay on loopback, without an account
			}
			e := newEnv(t, llm.NewDemo(), nil, executor.Config{SMTP: cfg})
			body := "Hello about {{topic}}."
			if tc.format == "html" {
				body = "<p>Hello about <b>{{topic}}</b></p>"
			}
			x := e.run(t, emailWorkflow(t, body, tc.format, 0), executor.Options{})
			if x.Status != workflow.ExecSuccess {
				t.Fatalf("status %s: %s", x.Status, x.Error)
			}
			got := m.mails()
			if len(got) != 1 {
				t.Fatalf("%d mails arrived, want 1", len(got))
			}
			r := got[0]
			if r.from != "switchboard@example.org" || strings.Join(r.rcpt, ",") != "ann@example.org,bob@example.org,carol@example.org,audit@example.org" {
				t.Errorf("envelope from %q rcpt %v", r.from, r.rcpt)
			}
			if r.tls != (tc.ssl || tc.starttls) || r.user != wantUser {
				t.Errorf("tls %v user %q", r.tls, r.user)
			}
			msg, err := mail.ReadMessage(strings.NewReader(r.data))
			if err != nil {
				t.Fatal(err)
			}
			h := msg.Header
			if h.Get("Subject") != "Report on tides" || h.Get("Cc") != "<carol@example.org>" ||
				!strings.Contains(h.Get("To"), "<ann@example.org>") || !strings.Contains(h.Get("To"), "<bob@example.org>") {
				t.Errorf("headers %v", h)
			}
			if strings.Contains(strings.ToLower(r.data), "bcc") || strings.Contains(r.data, "audit@") {
				t.Errorf("the bcc recipient shows in the mail:\n%s", r.data)
			}
			text, _ := io.ReadAll(msg.Body)
			wantType, wantBody := "text/plain", "Hello about tides."
			if tc.format == "html" {
				wantType, wantBody = "text/html", "<p>Hello about <b>tides</b></p>"
			}
			if !strings.HasPrefix(h.Get("Content-Type"), wantType) || !strings.Contains(string(text), wantBody) {
				t.Errorf("content type %q body %q", h.Get("Content-Type"), text)
			}
			out := x.NodeStates["send"].Output.(map[string]any)
			if out["attempts"] != float64(1) || out["message_id"] == "" {
				t.Errorf("output %v", out)
			}
		})
	}
}

// TestEmailNodeFailures: STARTTLS required but not offered is an error,
// not a plain-text fallback; a temporary refusal is tried again; a
// permanent one is not; no mail server set names the flag.
func TestEmailNodeFailures(t *testing.T) {
	t.Parallel()
	t.Run("STARTTLS not offered", func(t *testing.T) {
		t.Parallel()
		m := startMailServer(t, "plain")
		e := newEnv(t, llm.NewDemo(), nil, executor.Config{SMTP: m.config(false, true)})
		x := e.run(t, emailWorkflow(t, "hi", "text", 0), executor.Options{})
		if x.Status != workflow.ExecError || len(m.mails()) != 0 || !strings.Contains(x.NodeStates["send"].Error, "STARTTLS") {
			t.Errorf("status %s, %d mails, error %q", x.Status, len(m.mails()), x.NodeStates["send"].Error)
		}
	})
	t.Run("temporary refusal is retried", func(t *testing.T) {
		t.Parallel()
		m := startMailServer(t, "starttls")
		m.failFirst, m.failErr = 1, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		e := newEnv(t, llm.NewDemo(), nil, executor.Config{SMTP: m.config(false, true)})
		x := e.run(t, emailWorkflow(t, "hi", "text", 2), executor.Options{})
		if x.Status != workflow.ExecSuccess || len(m.mails()) != 1 || x.NodeStates["send"].Output.(map[string]any)["attempts"] != float64(2) {
			t.Errorf("status %s (%s), %d mails", x.Status, x.Error, len(m.mails()))
		}
	})
	t.Run("permanent refusal is not retried", func(t *testing.T) {
		t.Parallel()
		m := startMailServer(t, "starttls")
		m.failFirst, m.failErr = 5, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		e := newEnv(t, llm.NewDemo(), nil, executor.Config{SMTP: m.config(false, true)})
		x := e.run(t, emailWorkflow(t, "hi", "text", 3), executor.Options{})
		if st := x.NodeStates["send"]; x.Status != workflow.ExecError || !strings.Contains(st.Error, "after 1 attempt") || !strings.Contains(st.Error, "no such user") {
			t.Errorf("status %s, error %q", x.Status, st.Error)
		}
	})
	t.Run("no mail server", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, llm.NewDemo(), nil, executor.Config{})
		x := e.run(t, emailWorkflow(t, "hi", "text", 0), executor.Options{})
		if st := x.NodeStates["send"]; !strings.Contains(st.Error, "--smtp-host") {
			t.Errorf("error %q", st.Error)
		}
	})
}
