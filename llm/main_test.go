package llm_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a retry timer, a stream
// reader or a hung request left behind would leak once per node call in production.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
