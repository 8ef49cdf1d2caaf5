package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/switchboard-dev/switchboard/executor"
)

// addSMTPFlags adds the flags of the mail server email nodes send through
// to fs, each defaulting to its SWITCHBOARD_SMTP_* variable. checkSMTP
// checks them once fs is parsed.
func addSMTPFlags(fs *flag.FlagSet, getenv func(string) string, sc *executor.SMTPConfig) error {
	fs.StringVar(&sc.Host, "smtp-host", getenv("SWITCHBOARD_SMTP_HOST"), "mail server of email nodes (env SWITCHBOARD_SMTP_HOST); empty: email nodes fail")
	port := 0
	if v := getenv("SWITCHBOARD_SMTP_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_SMTP_PORT=%q: want a port number", v)
		}
		port = p
	}
	fs.IntVar(&sc.Port, "smtp-port", port, "its port (env SWITCHBOARD_SMTP_PORT); 0: 465 with --smtp-use-ssl, 587 with --smtp-use-tls, else 25")
	fs.StringVar(&sc.Username, "smtp-username", getenv("SWITCHBOARD_SMTP_USERNAME"), "its account (env SWITCHBOARD_SMTP_USERNAME); empty: no authentication")
	fs.StringVar(&sc.Password, "smtp-password", getenv("SWITCHBOARD_SMTP_PASSWORD"), "its password (env SWITCHBOARD_SMTP_PASSWORD, better than the flag, which other users can see)")
	fs.StringVar(&sc.From, "smtp-from", getenv("SWITCHBOARD_SMTP_FROM"), "sender of email nodes that set no config.from (env SWITCHBOARD_SMTP_FROM)")
	for _, f := range []struct {
		name, env, usage string
		def              bool
		v                *bool
	}{
		{"smtp-use-ssl", "SWITCHBOARD_SMTP_USE_SSL", "implicit TLS from the first byte, as on port 465 (env SWITCHBOARD_SMTP_USE_SSL)", false, &sc.UseSSL},
		{"smtp-use-tls", "SWITCHBOARD_SMTP_USE_TLS", "STARTTLS, required: a server without it is an error (env SWITCHBOARD_SMTP_USE_TLS); false with --smtp-use-ssl false sends in plain text", true, &sc.UseTLS},
	} {
		def := f.def
		if v := getenv(f.env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want true or false", f.env, v)
			}
			def = b
		}
		fs.BoolVar(f.v, f.name, def, f.usage)
	}
	return nil
}

// checkSMTP checks the parsed SMTP settings: implicit TLS already
// encrypts, so it replaces STARTTLS.
func checkSMTP(sc *executor.SMTPConfig) error {
	if sc.Port < 0 || sc.Port > 65535 {
		return fmt.Errorf("--smtp-port %d: want a port from 1 to 65535", sc.Port)
	}
	if sc.UseSSL {
		sc.UseTLS = false
	}
	return nil
}
