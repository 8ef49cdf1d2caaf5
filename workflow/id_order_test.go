package workflow

import (
	"regexp"
	"testing"
)

// Ids keep the ObjectId shape, are unique, and the ids of one process
// increase (so that rows keyed by them are appended to indexes).
func TestNewIDShapeAndOrder(t *testing.T) {
	shape := regexp.MustCompile(`^[0-9a-f]{24}$`)
	seen := map[string]bool{}
	prev := ""
	wrapped := 0
	for range 10000 {
		id := NewID()
		if !shape.MatchString(id) {
			t.Fatalf("id %q is not 24 lowercase hex characters", id)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
		if id <= prev {
			wrapped++ // the 3-byte counter may wrap once
		}
		prev = id
	}
	if wrapped > 1 {
		t.Fatalf("ids went down %d times in 10,000; they should increase", wrapped)
	}
}
