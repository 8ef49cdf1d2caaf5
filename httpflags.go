package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/workflow"
)

// addHTTPFlags adds the flags of the http_request tool's allow-lists to
// fs, each with its list from the environment, which a flag given
// replaces. The server and every worker need the same lists: a worker's
// agents use the worker's.
func addHTTPFlags(fs *flag.FlagSet, getenv func(string) string, hc *executor.HTTPConfig) error {
	for _, f := range []struct {
		name, env, usage string
		list             *[]string
	}{
		{"http-allow", "SWITCHBOARD_HTTP_ALLOW", "hosts every workflow's http_request may reach, comma-separated, e.g. api.example.com,*.example.org (env SWITCHBOARD_HTTP_ALLOW); give workers the same", &hc.Allow},
		{"http-allow-private", "SWITCHBOARD_HTTP_ALLOW_PRIVATE", "hosts http_request may reach although they resolve to a loopback, link-local or private address, comma-separated (env SWITCHBOARD_HTTP_ALLOW_PRIVATE); give workers the same", &hc.AllowPrivate},
	} {
		if v := getenv(f.env); v != "" {
			if err := parseHosts(v, f.list); err != nil {
				return fmt.Errorf("%s: %w", f.env, err)
			}
		}
		fs.Func(f.name, f.usage, func(v string) error { return parseHosts(v, f.list) })
	}
	return nil
}

// parseHosts reads a comma-separated list of hosts into list, replacing
// what it held.
func parseHosts(v string, list *[]string) error {
	*list = nil
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if err := workflow.CheckHostPattern(h); err != nil {
			return err
		}
		*list = append(*list, strings.ToLower(h))
	}
	return nil
}
