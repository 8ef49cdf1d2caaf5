package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is an in-process Redis (miniredis) that the binary runs when no REDIS_URL is given,
// so that pubsub mode works with no setup. It supports what the bus needs: PUBLISH, SUBSCRIBE,
// PSUBSCRIBE, PING in subscribed mode and PUBSUB CHANNELS. Its methods are safe for concurrent
// use.
type Embedded struct {
	m *miniredis.Miniredis
}

// StartEmbedded starts an in-process Redis listening on addr ("127.0.0.1:0" when empty). When
// addr is taken (EADDRINUSE) it falls back to a free loopback port and logs a warning; the
// address actually used is [Embedded.Addr]. It fails when addr is invalid or cannot be bound
// for another reason, or when the fallback fails too. Close it with [Embedded.Close].
func StartEmbedded(addr string, logger *slog.Logger) (*Embedded, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	m := miniredis.NewMiniRedis()
	err := m.StartAddr(addr)
	if err != nil {
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("start embedded redis on %s: %w", addr, err)
		}
		m = miniredis.NewMiniRedis()
		if err2 := m.StartAddr("127.0.0.1:0"); err2 != nil {
			return nil, fmt.Errorf("start embedded redis: %s is taken (%w) and no free loopback port: %w", addr, err, err2)
		}
		logger.Warn("embedded redis: address in use, listening on a free port instead",
			"wanted", addr, "addr", m.Addr(), "err", err)
	}
	logger.Info("embedded redis started", "addr", m.Addr())
	return &Embedded{m: m}, nil
}

// Addr returns the host:port the embedded Redis listens on.
func (e *Embedded) Addr() string { return e.m.Addr() }

// URL returns "redis://" + Addr(), ready for [Connect].
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() }

// Close stops the embedded Redis and drops every client connection (clients see their
// connections break). It waits for the server's goroutines to end. Calling it again does
// nothing.
func (e *Embedded) Close() { e.m.Close() }
