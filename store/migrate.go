package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema change, read from NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads dir of fsys. Versions must run 1, 2, 3… without gaps
// or repeats, so a mistake in a file name fails every test instead of
// silently skipping a migration in production.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migs []migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name is not NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1]) // four digits, cannot fail
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		migs = append(migs, migration{version: v, name: m[2], sql: string(body)})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	for i, m := range migs {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: expected version %d (versions must run 1, 2, 3… without gaps or repeats)", m.version, m.name, i+1)
		}
	}
	if len(migs) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	return migs, nil
}

// migrate applies the migrations conn's database lacks, each in its own
// transaction together with its schema_migrations row, so a failure leaves
// the database at the last good version. Migrations are forward-only; a
// database at a higher version than the newest known one is refused.
//
// The version is read again inside each transaction (BEGIN IMMEDIATE holds
// the write lock), so two processes opening the same new file at once do
// not both apply a migration.
func migrate(ctx context.Context, conn *sql.Conn, migs []migration, logger *slog.Logger) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	latest := migs[len(migs)-1].version
	current, err := schemaVersion(ctx, conn)
	if err != nil {
		return err
	}
	if current > latest {
		return fmt.Errorf("database schema version %d is newer than this binary supports (%d); upgrade switchboard", current, latest)
	}
	for _, m := range migs {
		if m.version <= current {
			continue
		}
		applied, err := applyMigration(ctx, conn, m)
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		if applied {
			logger.Info("store: applied migration", "version", m.version, "name", m.name)
		}
	}
	return nil
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, m migration) (applied bool, err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil || !applied {
			_ = tx.Rollback()
		}
	}()
	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	if v >= m.version { // another process got there first
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UnixNano()); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	return true, nil
}
