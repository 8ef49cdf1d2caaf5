package executor_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// execution, agent subscription and handler must end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
