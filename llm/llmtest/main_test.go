package llmtest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the tests if a delayed handler or connection outlives Server.Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
