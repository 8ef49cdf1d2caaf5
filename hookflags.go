package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	// Time zone names of metadata.schedule resolve on hosts without a
	// zoneinfo database too (about 450 kB).
	_ "time/tzdata"

	"github.com/switchboard-dev/switchboard/web"
)

// hookConfig is how webhooks are limited.
type hookConfig struct {
	rate  float64       // runs a minute per workflow
	burst int           // runs at once per workflow
	wait  time.Duration // how long ?wait=true waits
}

func addHookFlags(fs *flag.FlagSet, getenv func(string) string, cfg *hookConfig) error {
	cfg.rate, cfg.burst, cfg.wait = web.DefaultHookRate, web.DefaultHookBurst, web.DefaultHookWait
	if v := getenv("SWITCHBOARD_HOOK_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("SWITCHBOARD_HOOK_RATE=%q: want a positive number of runs a minute, like 60 or 0.5", v)
		}
		cfg.rate = f
	}
	fs.Func("hook-rate", fmt.Sprintf("webhook runs a minute per workflow, on average (env SWITCHBOARD_HOOK_RATE; default %g)", web.DefaultHookRate), func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("want a positive number of runs a minute, like 60 or 0.5")
		}
		cfg.rate = f
		return nil
	})
	fs.Func("hook-burst", fmt.Sprintf("webhook runs per workflow let through at once before --hook-rate applies (default %d)", web.DefaultHookBurst), func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a whole number, 1 or more")
		}
		cfg.burst = n
		return nil
	})
	fs.Func("hook-wait", fmt.Sprintf("how long a webhook call with ?wait=true waits for the run to end before it answers 202 (default %s)", web.DefaultHookWait), func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a duration like 30s or 2m")
		}
		cfg.wait = d
		return nil
	})
	return nil
}
