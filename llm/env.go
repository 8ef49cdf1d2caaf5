package llm

import (
	"log/slog"
	"strings"
	"time"
)

// Environment variables read by FromEnv.
const (
	EnvAPIKey  = "OPENAI_API_KEY"
	EnvBaseURL = "OPENAI_BASE_URL"
	EnvModel   = "SWITCHBOARD_MODEL"
	EnvTimeout = "SWITCHBOARD_LLM_TIMEOUT"
	// EnvDemoDelay paces the demo model: a Go duration waited before each
	// reply, a twentieth of it between streamed words; "0" answers at once.
	EnvDemoDelay = "SWITCHBOARD_DEMO_DELAY"
)

// DefaultDemoDelay paces the demo model so that a person can watch a run.
const DefaultDemoDelay = 300 * time.Millisecond

// FromEnv chooses the chat client from the environment, read through getenv (nil reads as an
// empty environment, which keeps tests away from the process environment):
//
//   - OPENAI_API_KEY and/or OPENAI_BASE_URL set: an OpenAI client, with the model from
//     SWITCHBOARD_MODEL (default DefaultModel) and the per-attempt timeout from
//     SWITCHBOARD_LLM_TIMEOUT as a Go duration such as "90s" (default DefaultTimeout). A base
//     URL without a key suits Ollama and LM Studio: a placeholder key is sent.
//   - neither set: the offline Demo model.
//
// It never fails: an unparsable or non-positive SWITCHBOARD_LLM_TIMEOUT is logged as a warning
// and the default used. It logs one info line naming the provider, never the key. A nil logger
// discards logs. Safe for concurrent use.
func FromEnv(getenv func(string) string, logger *slog.Logger) (Client, Info) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	get := func(k string) string {
		if getenv == nil {
			return ""
		}
		return strings.TrimSpace(getenv(k))
	}
	key, base := get(EnvAPIKey), get(EnvBaseURL)
	if key == "" && base == "" {
		d := NewDemo()
		d.Latency = DefaultDemoDelay
		if s := get(EnvDemoDelay); s != "" {
			if v, err := time.ParseDuration(s); err == nil && v >= 0 {
				d.Latency = v
			} else {
				logger.Warn("ignoring invalid "+EnvDemoDelay, "value", s, "default", DefaultDemoDelay)
			}
		}
		d.WordDelay = d.Latency / 20
		info := d.Info()
		logger.Info("llm provider", "provider", info.Provider, "model", info.Model,
			"hint", "set "+EnvAPIKey+" or "+EnvBaseURL+" to use a real model")
		return d, info
	}
	cfg := Config{APIKey: key, BaseURL: base, Model: get(EnvModel)}
	if s := get(EnvTimeout); s != "" {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			logger.Warn("ignoring invalid "+EnvTimeout, "value", s, "err", err, "default", DefaultTimeout)
		case d <= 0:
			logger.Warn("ignoring non-positive "+EnvTimeout, "value", s, "default", DefaultTimeout)
		default:
			cfg.Timeout = d
		}
	}
	c := NewOpenAI(cfg, logger)
	info := c.Info()
	logger.Info("llm provider", "provider", info.Provider, "base_url", info.BaseURL,
		"model", info.Model, "api_key_set", key != "", "timeout", c.timeout)
	return c, info
}
