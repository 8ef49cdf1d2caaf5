package store

import "time"

// ObserveWrites makes the writer call fn with the time each batch of
// writes took, from its first deferred statement to its commit (the store
// write latency of the metrics). fn runs on the writer goroutine, after
// every batch that wrote, so it must be cheap; nil stops the calls. Safe
// for concurrent use.
func (db *DB) ObserveWrites(fn func(d time.Duration)) {
	if fn == nil {
		db.observeWrite.Store(nil)
		return
	}
	db.observeWrite.Store(&fn)
}
