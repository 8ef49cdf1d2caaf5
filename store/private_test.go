//go:build unix

package store

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// The database holds secret values in plain text, so a new data directory
// is 0700 and the database files 0600 whatever the umask lets through;
// files left wider by an older version are narrowed.
func TestDataIsPrivate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "new", "data")
	path := filepath.Join(dir, "switchboard.db")
	db, err := Open(ctx, path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// A write, so the -wal and -shm files exist.
	now := time.Now()
	if err := db.Record(ctx, workflow.Event{ExecutionID: "x", Kind: workflow.EventExecution, Time: now,
		Execution: &workflow.Execution{ID: "x", WorkflowID: "w", Status: workflow.ExecRunning, CreatedAt: now}}); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o700)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(t, f, 0o600)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// An older version's files, readable by everyone, are narrowed.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	db = openAt(t, path)
	wantMode(t, path, 0o600)
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path + "-wal", path + "-shm"} {
		wantMode(t, f, 0o600)
	}
}

// An existing directory open to others is left as it is (the operator
// may have chosen it for more than Switchboard), with a warning that says
// how to close it.
func TestDataDirOpenToOthersIsWarnedAbout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	db, err := Open(t.Context(), filepath.Join(dir, "switchboard.db"), slog.New(slog.NewTextHandler(io.MultiWriter(&log, t.Output()), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o755)
	wantMode(t, filepath.Join(dir, "switchboard.db"), 0o600)
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "chmod 700 "+dir) {
		t.Fatalf("no warning about the open directory in the log:\n%s", log.String())
	}
}

func wantMode(t *testing.T, name string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %#o, want %#o", name, got, want)
	}
}
