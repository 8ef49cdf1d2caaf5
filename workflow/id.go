package workflow

import (
	"crypto/rand"
	"encoding/hex"
)

// NewID returns a random 24-character hex id, the shape of the original
// service's MongoDB ObjectIds, so clients that check id shapes keep working.
// It is safe for concurrent use.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error since Go 1.24
	return hex.EncodeToString(b[:])
}
