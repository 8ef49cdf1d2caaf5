package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestHookFlags(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseServeFlags([]string{"--hook-burst", "3", "--hook-wait", "2m"}, env(map[string]string{"SWITCHBOARD_HOOK_RATE": "0.5"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.hooks.rate != 0.5 || cfg.hooks.burst != 3 || cfg.hooks.wait != 2*time.Minute {
		t.Errorf("hooks = %+v", cfg.hooks)
	}
	if cfg, err = parseServeFlags(nil, env(nil), io.Discard); err != nil || cfg.hooks.rate != 60 || cfg.hooks.burst != 10 || cfg.hooks.wait != 30*time.Second {
		t.Errorf("defaults = %+v, %v", cfg.hooks, err)
	}
	for _, bad := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--hook-rate", "0"}, nil, "hook-rate"},
		{[]string{"--hook-burst", "-1"}, nil, "hook-burst"},
		{[]string{"--hook-wait", "soon"}, nil, "hook-wait"},
		{nil, map[string]string{"SWITCHBOARD_HOOK_RATE": "fast"}, "SWITCHBOARD_HOOK_RATE"},
	} {
		if _, err := parseServeFlags(bad.args, env(bad.env), io.Discard); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %v: err = %v, want one naming %s", bad.args, bad.env, err, bad.want)
		}
	}
}
