package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Every test closes what it opens; a writer goroutine or a database/sql
	// opener left running is a bug.
	goleak.VerifyTestMain(m)
}

// testLogger sends the store's log lines to the test's output, shown with
// a failing test.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openAt opens the database at path and closes it when the test ends.
func openAt(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(t.Context(), path, testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func openTest(t testing.TB) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "data", "switchboard.db"))
}

// rawDB opens the file with no pragmas and no migrations, as another tool
// would, and closes it when the test ends.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", dsn(path, nil)) // a file: URI, as the path may hold '?'

	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func wantCode(t *testing.T, err error, code workflow.Code) {
	t.Helper()
	if got := workflow.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

func asJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%#v (json: %v)", v, err)
	}
	return string(b)
}

func TestMigrationsAppliedOnceAndRecorded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nested", "dir", "sb.db") // parent dirs are created
	migs, err := loadMigrations(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}

	versions := func(db *DB) ([]int, []int64) {
		rows, err := db.rdb.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var vs []int
		var ats []int64
		for rows.Next() {
			var v int
			var at int64
			if err := rows.Scan(&v, &at); err != nil {
				t.Fatal(err)
			}
			vs, ats = append(vs, v), append(ats, at)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return vs, ats
	}

	db, err := Open(ctx, path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	v1, at1 := versions(db)
	if len(v1) != len(migs) {
		t.Fatalf("recorded versions %v, want %d migrations", v1, len(migs))
	}
	for i, v := range v1 {
		if v != i+1 {
			t.Fatalf("recorded versions %v, want 1..%d", v1, len(migs))
		}
	}
	w := &workflow.Workflow{Name: "kept", Status: workflow.StatusDraft}
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: nothing is applied again and the data is still there.
	db = openAt(t, path)
	v2, at2 := versions(db)
	if fmt.Sprint(v1, at1) != fmt.Sprint(v2, at2) {
		t.Fatalf("after reopen schema_migrations = %v %v, want %v %v", v2, at2, v1, at1)
	}
	got, err := db.GetWorkflow(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "kept" {
		t.Fatalf("after reopen workflow name = %q", got.Name)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sb.db")
	db, err := Open(ctx, path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	migs, err := loadMigrations(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	newer := len(migs) + 41
	if _, err := rawDB(t, path).Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', 0)`, newer); err != nil {
		t.Fatal(err)
	}

	db, err = Open(ctx, path, testLogger(t))
	if err == nil {
		db.Close()
		t.Fatal("Open of a newer database succeeded")
	}
	want := fmt.Sprintf("database schema version %d is newer than this binary supports (%d); upgrade switchboard", newer, len(migs))
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("Open error = %q, want it to contain %q", err, want)
	}
}

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	t.Parallel()
	for name, files := range map[string][]string{
		"gap":       {"0001_a.sql", "0003_c.sql"},
		"repeat":    {"0001_a.sql", "0001_b.sql"},
		"bad name":  {"0001_a.sql", "2_b.sql"},
		"not first": {"0002_b.sql"},
		"none":      {},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{"m/notes": {Mode: fs.ModeDir}} // m exists even with no files
			for _, f := range files {
				fsys["m/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			if _, err := loadMigrations(fsys, "m"); err == nil {
				t.Fatalf("loadMigrations(%v) succeeded", files)
			}
		})
	}
	good := fstest.MapFS{"m/0002_b.sql": {Data: []byte("b")}, "m/0001_a.sql": {Data: []byte("a")}}
	migs, err := loadMigrations(good, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) != 2 || migs[0].name != "a" || migs[1].version != 2 || migs[1].sql != "b" {
		t.Fatalf("loadMigrations = %+v", migs)
	}
}

func TestFailedMigrationRollsBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sb.db")
	db, err := sql.Open("sqlite", writerDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	migs := []migration{
		{1, "ok", "CREATE TABLE a (x INTEGER);"},
		{2, "broken", "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);"},
	}
	err = migrate(ctx, conn, migs, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "0002_broken") {
		t.Fatalf("migrate error = %v, want one naming 0002_broken", err)
	}
	v, err := schemaVersion(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if v != 1 {
		t.Fatalf("schema version after failed migration = %d, want 1", v)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'b'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("table of the failed migration exists")
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t)
	var journal string
	var fk, sync, busy int
	err := db.exec(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRow(`PRAGMA journal_mode`).Scan(&journal); err != nil {
			return err
		}
		if err := tx.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
			return err
		}
		if err := tx.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
			return err
		}
		return tx.QueryRow(`PRAGMA busy_timeout`).Scan(&busy)
	})
	if err != nil {
		t.Fatal(err)
	}
	if journal != "wal" || fk != 1 || sync != 1 || busy != busyTimeoutMS {
		t.Fatalf("writer pragmas: journal_mode=%s foreign_keys=%d synchronous=%d busy_timeout=%d", journal, fk, sync, busy)
	}
	var queryOnly int
	if err := db.rdb.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&queryOnly); err != nil {
		t.Fatal(err)
	}
	if queryOnly != 1 {
		t.Fatalf("reader query_only = %d", queryOnly)
	}
	if _, err := db.rdb.ExecContext(ctx, `DELETE FROM workflows`); err == nil {
		t.Fatal("a write through the reader pool succeeded")
	}
}

func TestPathWithURICharacters(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag%20", "sb.db")
	db := openAt(t, path)
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	w := &workflow.Workflow{Name: "n", Status: workflow.StatusDraft}
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	// The file is where the caller said, not at a path cut at '?'.
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM workflows`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("workflows in %s = %d, want 1", path, n)
	}
}

func TestClosedDB(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "sb.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ev := workflow.Event{ExecutionID: "x", Kind: workflow.EventLog, Log: &workflow.LogEntry{Message: "m"}}
	wantCode(t, db.Record(ctx, ev), workflow.CodeUnavailable)
	db.Enqueue(ev) // dropped and logged, no panic
	wantCode(t, db.Flush(ctx), workflow.CodeUnavailable)
	wantCode(t, db.Ping(ctx), workflow.CodeUnavailable)
	wantCode(t, db.CreateWorkflow(ctx, &workflow.Workflow{Name: "n"}), workflow.CodeUnavailable)
	_, err = db.GetWorkflow(ctx, "x")
	wantCode(t, err, workflow.CodeUnavailable)
	_, err = db.GetExecution(ctx, "x")
	wantCode(t, err, workflow.CodeUnavailable)
	_, err = db.ListExecutions(ctx, ExecutionFilter{})
	wantCode(t, err, workflow.CodeUnavailable)
	_, err = db.MarkInterrupted(ctx, "r")
	wantCode(t, err, workflow.CodeUnavailable)
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ev := workflow.Event{ExecutionID: "x", Kind: workflow.EventLog, Log: &workflow.LogEntry{Message: "m"}}
	if err := db.Record(ctx, ev); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record with a cancelled ctx = %v", err)
	}
	if err := db.CreateWorkflow(ctx, &workflow.Workflow{Name: "n"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateWorkflow with a cancelled ctx = %v", err)
	}
	if _, err := db.GetWorkflow(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetWorkflow with a cancelled ctx = %v", err)
	}
	// A cancelled caller does not leave an error for the next Flush.
	if err := db.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if n, err := db.CountWorkflows(t.Context()); err != nil || n != 0 {
		t.Fatalf("CountWorkflows = %d, %v; want 0", n, err)
	}
}

// utc strips what the database does not keep (monotonic clock, zone), so
// a value read back compares equal with reflect.DeepEqual.
func utc(t time.Time) time.Time { return t.UTC().Round(0) }

func utcp(t time.Time) *time.Time { u := utc(t); return &u }

// TestRecordDuringClose: writers racing Close get nil or "unavailable",
// never a panic, and whatever they were told was stored is stored.
func TestRecordDuringClose(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sb.db")
	db, err := Open(ctx, path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &workflow.Execution{ID: "e", WorkflowID: "w", Status: workflow.ExecRunning, CreatedAt: utc(time.Now())}
	if err := db.Record(ctx, workflow.Event{ExecutionID: "e", Kind: workflow.EventExecution, Execution: h}); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	okCount := make(chan int, writers)
	started := make(chan struct{}, writers)
	for g := range writers {
		go func() {
			ok := 0
			for i := 0; ; i++ {
				err := db.Record(ctx, workflow.Event{ExecutionID: "e", Seq: int64(i), Kind: workflow.EventLog,
					Log: &workflow.LogEntry{Time: h.CreatedAt, Message: fmt.Sprint(g, " ", i)}})
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					if workflow.ErrorCode(err) != workflow.CodeUnavailable {
						t.Errorf("Record during Close: %v", err)
					}
					break
				}
				ok++
			}
			okCount <- ok
		}()
	}
	for range writers {
		<-started
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	stored := 0
	for range writers {
		stored += <-okCount
	}
	db = openAt(t, path)
	e, err := db.GetExecution(ctx, "e")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Logs) != stored {
		t.Fatalf("%d logs stored, %d Records succeeded", len(e.Logs), stored)
	}
}

func TestOpenRefusesNonDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), path, testLogger(t))
	if err == nil {
		db.Close()
		t.Fatal("Open of a text file succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("Open error %q does not name the file", err)
	}
}

// oldDB makes a database at path with only the first version migrations
// applied, and returns a connection to it, for tests of later migrations
// on existing rows. Close the connection (and its pool) before Open.
func oldDB(t *testing.T, path string, version int) (*sql.DB, *sql.Conn) {
	t.Helper()
	ctx := t.Context()
	migs, err := loadMigrations(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, conn, migs[:version], testLogger(t)); err != nil {
		t.Fatal(err)
	}
	return raw, conn
}
