package executor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/switchboard-dev/switchboard/workflow"
)

// SMTPConfig is the mail server email nodes send through. Only the
// operator sets it (flags and environment): a workflow imported from
// someone else must not choose the server, its account or its password.
type SMTPConfig struct {
	Host     string // empty: email nodes fail, saying which flag to set
	Port     int    // 0: 465 with UseSSL, 587 with UseTLS, 25 otherwise
	Username string // empty: no authentication
	Password string
	From     string // the sender when a node's config.from is empty
	// UseSSL is implicit TLS: the connection is TLS from its first byte
	// (port 465).
	UseSSL bool
	// UseTLS is STARTTLS, required: a server that does not offer it is an
	// error, never a fallback to plain text.
	UseTLS bool
	// TLSConfig, when set, is used for both (its ServerName is set to Host
	// when empty); nil verifies the server against the system's roots.
	TLSConfig *tls.Config
	Timeout   time.Duration // one attempt; 30 s when <= 0
}

// port is the port to dial.
func (c SMTPConfig) port() int {
	switch {
	case c.Port > 0:
		return c.Port
	case c.UseSSL:
		return 465
	case c.UseTLS:
		return 587
	}
	return 25
}

// splitAddrs splits a comma-separated list of addresses, dropping empty
// entries.
func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// runEmail sends an email node's mail through the operator's SMTP server,
// with the node's retries. Bcc recipients get the mail but appear in no
// header.
func (x *execution) runEmail(ctx context.Context, node *workflow.Node) (any, error) {
	smtp := x.e.cfg.SMTP
	if smtp.Host == "" {
		return nil, workflow.Errorf(workflow.CodeInvalid, "email node %q: no mail server is set: start Switchboard with --smtp-host (SWITCHBOARD_SMTP_HOST) and, if it needs them, --smtp-username and --smtp-password", node.ID)
	}
	c := node.ReadEmail()
	fields := map[string]*string{"to": &c.To, "cc": &c.Cc, "bcc": &c.Bcc, "from": &c.From, "subject": &c.Subject, "body": &c.Body}
	for _, k := range []string{"to", "cc", "bcc", "from", "subject", "body"} {
		s, err := x.render(node, k, *fields[k])
		if err != nil {
			return nil, err
		}
		*fields[k] = s
	}
	if c.From == "" {
		c.From = smtp.From
	}
	if c.From == "" {
		return nil, workflow.Errorf(workflow.CodeInvalid, "email node %q: no sender: set config.from, or --smtp-from (SWITCHBOARD_SMTP_FROM)", node.ID)
	}
	to, cc, bcc := splitAddrs(c.To), splitAddrs(c.Cc), splitAddrs(c.Bcc)
	if len(to) == 0 {
		return nil, workflow.Errorf(workflow.CodeInvalid, "email node %q: config.to names no recipient once rendered", node.ID)
	}
	msg := mail.NewMsg()
	for _, f := range []struct {
		name string
		set  func(...string) error
		list []string
	}{{"from", func(a ...string) error { return msg.From(a[0]) }, []string{c.From}}, {"to", msg.To, to}, {"cc", msg.Cc, cc}, {"bcc", msg.Bcc, bcc}} {
		if len(f.list) == 0 {
			continue
		}
		if err := f.set(f.list...); err != nil {
			return nil, workflow.Errorf(workflow.CodeInvalid, "email node %q: config.%s: %v", node.ID, f.name, err)
		}
	}
	msg.Subject(c.Subject)
	kind := mail.TypeTextPlain
	if c.Format == "html" {
		kind = mail.TypeTextHTML
	}
	msg.SetBodyString(kind, c.Body)
	client, err := newMailClient(smtp)
	if err != nil {
		return nil, fmt.Errorf("email node %q: %w", node.ID, err)
	}
	for attempt := 1; ; attempt++ {
		err := client.DialAndSendWithContext(ctx, msg)
		if err == nil {
			x.log(slog.LevelInfo, node.ID, "Email %s sent to %d recipient(s)", node.ID, len(to)+len(cc)+len(bcc))
			return map[string]any{"to": to, "cc": cc, "bcc": bcc, "subject": c.Subject, "format": c.Format,
				"message_id": msg.GetMessageID(), "attempts": attempt}, nil
		}
		var se *mail.SendError
		permanent := errors.As(err, &se) && !se.IsTemp()
		if permanent || attempt > c.Retries || ctx.Err() != nil {
			return nil, fmt.Errorf("email node %q: sending through %s:%d failed after %d attempt(s): %w", node.ID, smtp.Host, smtp.port(), attempt, err)
		}
		x.log(slog.LevelWarn, node.ID, "Email %s: attempt %d of %d failed: %v; trying again in %s", node.ID, attempt, c.Retries+1, err, c.RetryDelay)
		if c.RetryDelay > 0 {
			if err := sleepCtx(ctx, c.RetryDelay); err != nil {
				return nil, err
			}
		}
	}
}

// newMailClient is a go-mail client for the operator's server.
func newMailClient(c SMTPConfig) (*mail.Client, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tc := &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = c.Host
		}
	}
	opts := []mail.Option{mail.WithPort(c.port()), mail.WithTimeout(timeout), mail.WithTLSConfig(tc)}
	switch {
	case c.UseSSL:
		opts = append(opts, mail.WithSSL())
	case c.UseTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if c.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(c.Username), mail.WithPassword(c.Password))
	}
	client, err := mail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("set up the SMTP client for %s: %w", c.Host, err)
	}
	return client, nil
}
