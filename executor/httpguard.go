package executor

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// guardedClient is the HTTP client of one request to host, for the
// http_request tool and the http node alike: no proxy (a proxy would dial
// in the caller's place, past the address check), every dial checked by
// checkedDialer (no loopback, link-local or private address unless the
// operator named the host in private), redirects followed on the same host
// only and at most maxRedirects times. done releases its connection.
func guardedClient(private []string, host string, timeout time.Duration) (client *http.Client, done func()) {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&checkedDialer{private: private}).DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    timeout,
		MaxResponseHeaderBytes: 64 << 10,
		DisableKeepAlives:      true, // one request per transport: nothing idles afterwards
	}
	client = &http.Client{Transport: tr, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if !strings.EqualFold(r.URL.Hostname(), host) {
			return &redirectRefused{from: host, to: r.URL.Hostname()}
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		return nil
	}}
	return client, tr.CloseIdleConnections
}

// httpAllowList is every host a workflow's requests may reach: its
// metadata.http_allow, the operator's --http-allow, and the hosts the
// operator allows although private (--http-allow-private).
func httpAllowList(wfAllow []string, cfg HTTPConfig) []string {
	return append(append(wfAllow, cfg.Allow...), cfg.AllowPrivate...)
}
