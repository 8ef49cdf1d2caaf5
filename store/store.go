// Package store keeps Switchboard's workflows and execution records in one
// SQLite file (modernc.org/sqlite, no cgo).
//
// Writes go through one writer goroutine that owns the only writer
// connection: execution events are group-committed, many to a transaction,
// and the few other writes (workflow documents, MarkInterrupted) are queued
// behind them, so writes are applied in the order they were submitted and
// never fight over the SQLite write lock. Reads use a separate pool of
// read-only connections that run beside the writer thanks to WAL.
//
// The schema is created by numbered migrations embedded from migrations/,
// each applied in its own transaction and recorded in schema_migrations. A
// database written by a newer binary is refused rather than misread.
//
// Every SQL statement of Switchboard lives in this package.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

const (
	// queueSize bounds the events waiting for the writer; Enqueue blocks
	// when it is full, which slows a runaway producer instead of growing
	// memory without limit.
	queueSize = 4096
	// maxBatch bounds one transaction, so a waiter's latency stays short
	// even under a flood of events.
	maxBatch = 512
	// linger is how long events nobody waits for may wait for company
	// before the writer commits them (see writer.run).
	linger = 2 * time.Millisecond
	// readerConns is the size of the read pool. SQLite readers in WAL mode
	// do not block each other or the writer.
	readerConns = 4
	// busyTimeoutMS is how long a connection waits for a lock held by
	// another process (a second switchboard on the same file, a backup)
	// before failing with SQLITE_BUSY.
	busyTimeoutMS = 10000
)

// DB is Switchboard's SQLite database. Open it with Open and close it with
// Close. All methods are safe for concurrent use by multiple goroutines.
type DB struct {
	path   string
	logger *slog.Logger

	wdb *sql.DB // writer pool: exactly one connection, used only by the writer goroutine once Open returns
	rdb *sql.DB // reader pool, query_only
	cdb *sql.DB // the checkpointer's connection (checkpoint.go)

	workflows *wfCache // parsed workflows by id (wfcache.go)

	reads   sync.Map       // SQL text → *sql.Stmt prepared on rdb (see reads.go)
	warming sync.Map       // SQL text being prepared in the background (see warm)
	bg      sync.WaitGroup // background prepares, waited for before the pool closes

	// mu guards closed and every send on queue, so Close can close the
	// channel without a concurrent send panicking.
	mu     sync.RWMutex
	closed bool
	queue  chan *job

	writerDone chan struct{} // closed when the writer goroutine returns
	closeOnce  sync.Once
	closeErr   error
	leftover   error // first write error no Flush reported; set by the writer before writerDone closes

	// observeWrite is called with each write batch's duration (observe.go).
	observeWrite atomic.Pointer[func(time.Duration)]
}

// Open opens the database at path, creating it and its directory if needed
// (both private to this user: see private), applies the migrations it
// lacks and starts the writer goroutine. A nil logger discards log output.
//
// Open fails when the directory cannot be created, the file is not a SQLite
// database, a migration fails (the failed migration is rolled back; earlier
// ones stay applied), or the database's schema version is newer than this
// binary knows ("database schema version N is newer than this binary
// supports (M); upgrade switchboard"). ctx bounds opening and migrating
// only, not the life of the DB.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, workflow.Errorf(workflow.CodeInvalid, "database path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := private(abs, logger); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	migs, err := loadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	db := &DB{path: path, logger: logger, queue: make(chan *job, queueSize), writerDone: make(chan struct{}), workflows: newWFCache()}
	ok := false
	defer func() {
		if !ok {
			db.closePools()
		}
	}()

	db.wdb, err = sql.Open("sqlite", writerDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One writer connection: SQLite allows one writer at a time anyway, and
	// a second one in this process would only wait on busy_timeout.
	db.wdb.SetMaxOpenConns(1)
	db.wdb.SetMaxIdleConns(1)
	db.wdb.SetConnMaxLifetime(0)
	db.wdb.SetConnMaxIdleTime(0)
	conn, err := db.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = migrate(ctx, conn, migs, logger)
	conn.Close() // back to the pool, for the writer goroutine
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	// The readers are opened after migrating so they never see a half-made
	// schema and never race the writer to switch the file to WAL.
	db.rdb, err = sql.Open("sqlite", readerDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.rdb.SetMaxOpenConns(readerConns)
	db.rdb.SetMaxIdleConns(readerConns)
	if err := db.rdb.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: reader: %w", path, err)
	}

	// Statements are prepared on the pool, not on a *sql.Conn: database/sql
	// reuses a pool statement inside each transaction (Tx.StmtContext) but
	// re-prepares a Conn's statement every time.
	stmts, err := prepareStatements(ctx, db.wdb)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.cdb, err = sql.Open("sqlite", checkpointDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.cdb.SetMaxOpenConns(1)
	ok = true
	want := make(chan struct{}, 1)
	checkpointed := make(chan struct{})
	go func() {
		defer close(checkpointed)
		checkpointer(db.cdb, want, logger)
	}()
	w := &writer{db: db.wdb, stmts: stmts, logger: logger, checkpoint: want, observe: &db.observeWrite}
	go func() {
		defer close(db.writerDone)
		db.leftover = w.run(db.queue)
		close(want) // the writer is the only sender
		<-checkpointed
	}()
	return db, nil
}

// private makes the directory of the database at abs (0700) if it is
// missing, and its file (0600) with it, so the secret values in stored
// workflow documents are readable by this user only: SQLite gives the -wal
// and -shm files it creates the mode of the database file. Files of an
// older version with wider modes are narrowed. An existing directory open
// to others is left as it is, with a warning: it may be one the operator
// chose for more than Switchboard (--data .), and changing its mode could
// break what else lives there, while the files in it are closed anyway.
func private(abs string, logger *slog.Logger) error {
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 && runtime.GOOS != "windows" {
		logger.Warn("the data directory is open to other users; the database holds secret values, so make it private",
			"dir", dir, "mode", fmt.Sprintf("%#o", st.Mode().Perm()), "fix", "chmod 700 "+dir)
	}
	f, err := os.OpenFile(abs, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	for _, name := range []string{abs, abs + "-wal", abs + "-shm"} {
		st, err := os.Stat(name)
		if err != nil || st.Mode().Perm()&0o077 == 0 {
			continue // absent, or private already
		}
		if err := os.Chmod(name, 0o600); err != nil {
			logger.Warn("cannot make a database file private", "file", name, "err", err)
		}
	}
	return nil
}

// dsn builds a file: URI so a path holding '?', '#' or '%' is not cut at
// the first '?' (the driver's parameter separator) or misread.
func dsn(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	// url.Values.Encode sorts keys; the driver applies _pragma values with
	// busy_timeout first whatever their order, and the rest after it.
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// writerDSN: busy_timeout comes first so that the pragmas after it (the
// switch to WAL needs a lock) wait for another process instead of failing
// with SQLITE_BUSY. WAL lets readers run beside the writer. With WAL,
// synchronous=NORMAL is durable against a crash of the process: a commit is
// in the WAL file (in the OS page cache) before COMMIT returns, which is
// what "a crash loses nothing already recorded" needs; only an OS crash or
// power loss can lose the last few commits, never corrupt the file. FULL
// would fsync on every commit for little gain here. BEGIN IMMEDIATE takes
// the write lock at the start of a transaction, so a busy database makes
// it wait on busy_timeout rather than fail half-way at the first write.
func writerDSN(abs string) string {
	return dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
			"journal_mode(WAL)",
			"foreign_keys(1)",
			"synchronous(NORMAL)",
			fmt.Sprintf("wal_autocheckpoint(%d)", writerCheckpointFrames), // see checkpoint.go
			fmt.Sprintf("journal_size_limit(%d)", walSizeLimit),
		},
		"_txlock": {"immediate"},
	})
}

// readerDSN: query_only makes an accidental write through the read pool an
// error instead of a second writer fighting for the lock.
func readerDSN(abs string) string {
	return dsn(abs, url.Values{
		"_pragma":     {fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS), "foreign_keys(1)"},
		"_query_only": {"1"},
	})
}

// checkpointDSN is for the checkpointer's connection, which writes nothing
// but the database file's pages from the WAL.
func checkpointDSN(abs string) string {
	return dsn(abs, url.Values{"_pragma": {fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS)}})
}

// Path returns the path the database was opened with. It is safe for
// concurrent use.
func (db *DB) Path() string { return db.path }

// Ping checks that the database can still be read and written: it pings the
// reader pool and sends an empty transaction through the writer. It fails
// when the DB is closed, ctx ends first, or SQLite reports an error (for
// example the file was deleted or the disk is full). It is safe for
// concurrent use.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.rdb.PingContext(ctx); err != nil {
		if db.isClosed() {
			return errClosed()
		}
		return fmt.Errorf("ping store %s: %w", db.path, err)
	}
	if err := db.exec(ctx, func(tx *sql.Tx) error {
		var one int
		return tx.QueryRow("SELECT 1").Scan(&one)
	}); err != nil {
		return fmt.Errorf("ping store %s: %w", db.path, err)
	}
	return nil
}

// Close writes every event submitted before it, stops the writer and closes
// both connection pools. It returns the first write error that no Flush has
// reported yet, joined with any error closing the pools. Calls after the
// first return nil and do nothing. Methods called during or after Close fail
// with an "unavailable" workflow.Error (Enqueue drops its event and logs
// it). It is safe for concurrent use.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		db.closed = true
		close(db.queue) // the writer drains what is queued, then returns
		db.mu.Unlock()
		<-db.writerDone
		db.closeErr = errors.Join(db.leftover, db.closePools())
	})
	return db.closeErr
}

// closePools closes both pools; the writer goroutine has stopped by then.
func (db *DB) closePools() error {
	var errs []error
	if db.wdb != nil {
		if err := db.wdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store %s: writer: %w", db.path, err))
		}
	}
	if db.cdb != nil {
		if err := db.cdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store %s: checkpointer: %w", db.path, err))
		}
	}
	if db.rdb != nil {
		db.closeReads()
		if err := db.rdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store %s: readers: %w", db.path, err))
		}
	}
	return errors.Join(errs...)
}

func (db *DB) isClosed() bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.closed
}

func errClosed() error {
	return workflow.Errorf(workflow.CodeUnavailable, "the database is closed")
}

// notFound is the one way this package reports a missing row: never nil, nil.
func notFound(what, id string, err error) error {
	return &workflow.Error{Code: workflow.CodeNotFound, Message: fmt.Sprintf("%s %s not found", what, id), Err: err}
}
