package bus

import "time"

// FastForward moves the embedded Redis's clock forward by d: keys whose TTL runs out in that
// time expire. miniredis never expires keys on its own, so tests of TTLs (worker registrations)
// use this instead of waiting. It does not change the stream clock, which follows real time.
// Safe for concurrent use.
func (e *Embedded) FastForward(d time.Duration) { e.m.FastForward(d) }
