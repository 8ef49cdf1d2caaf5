package bus_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the reader, handler,
// monitor and go-redis goroutines, and the test servers' waiters, must all be gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
