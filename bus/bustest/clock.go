package bustest

import "time"

// FastForward moves the clock of a miniredis backend forward by d, so keys whose TTL runs out
// in that time expire, and reports true. miniredis never expires keys by itself. For a
// redis-server backend, whose keys expire in real time, it does nothing and reports false: the
// test then waits for the state instead. It must not be called while the server is killed.
func FastForward(ctl Controller, d time.Duration) bool {
	m, ok := ctl.(*mini)
	if !ok {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e == nil {
		m.tb.Fatalf("bustest: FastForward on a killed miniredis")
	}
	m.e.FastForward(d)
	return true
}
