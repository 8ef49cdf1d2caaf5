package main

import (
	"testing"

	"github.com/switchboard-dev/switchboard/store"
)

// TestRetentionAgeNeverWraps: a number of days whose duration would pass
// the largest time.Duration is refused, not wrapped to a negative age.
func TestRetentionAgeNeverWraps(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"200000d", "9223372036854775807d"} {
		var r store.Retention
		if err := parseRetention(v, &r); err == nil {
			t.Errorf("%s: accepted as %s", v, r.MaxAge)
		}
	}
	var r store.Retention
	if err := parseRetention("36500d", &r); err != nil || r.MaxAge <= 0 {
		t.Errorf("36500d: %v %s", err, r.MaxAge)
	}
}
