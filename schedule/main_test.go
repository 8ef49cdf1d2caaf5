package schedule_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// cron clock, its jobs and the runs they start must end with Stop and the
// executor's shutdown.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
