package store

import (
	"context"
	"database/sql"
	"time"
)

// Reads go through statements prepared once on the reader pool, by their
// SQL text, instead of being parsed and compiled by SQLite on every call:
// compiling a statement is a large share of the cost of the small indexed
// reads of this package. database/sql prepares a pool statement on each reader connection
// the first time it runs there, and reuses it inside transactions
// (Tx.StmtContext). The statements are closed with the pool.

// readStmt returns the reader pool's prepared statement for q.
func (db *DB) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := db.reads.Load(q); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.rdb.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.reads.LoadOrStore(q, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// query runs q on the reader pool, or inside tx when tx is not nil.
func (db *DB) query(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if tx != nil {
		if s, ok := db.reads.Load(q); ok {
			return tx.StmtContext(ctx, s.(*sql.Stmt)).QueryContext(ctx, args...)
		}
		// Never prepare on the pool while holding a transaction: with every
		// reader connection held by a transaction waiting to prepare, no
		// connection would ever come free (seen under 64 concurrent reads).
		db.warm(q)
		return tx.QueryContext(ctx, q, args...)
	}
	s, err := db.readStmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(...any) error }

// errScanner reports err from Scan, for a row whose query could not run.
type errScanner struct{ err error }

func (e errScanner) Scan(...any) error { return e.err }

// queryRow runs q (on the reader pool, or inside tx when tx is not nil) for
// one row; like *sql.Row, the result's Scan reports sql.ErrNoRows when
// there is none.
func (db *DB) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) scanner {
	if tx != nil {
		if s, ok := db.reads.Load(q); ok {
			return tx.StmtContext(ctx, s.(*sql.Stmt)).QueryRowContext(ctx, args...)
		}
		db.warm(q) // see query
		return tx.QueryRowContext(ctx, q, args...)
	}
	s, err := db.readStmt(ctx, q)
	if err != nil {
		return errScanner{err}
	}
	return s.QueryRowContext(ctx, args...)
}

// warm prepares q on the reader pool in the background, once, so later
// transactions find it cached; the caller holds a transaction and must not
// wait for a pool connection itself.
func (db *DB) warm(q string) {
	if _, loaded := db.warming.LoadOrStore(q, true); loaded {
		return
	}
	db.bg.Add(1)
	go func() {
		defer db.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.readStmt(ctx, q); err != nil {
			db.warming.Delete(q) // try again another time
		}
	}()
}

// closeReads closes the prepared statements, before the pool.
func (db *DB) closeReads() {
	db.bg.Wait()
	db.reads.Range(func(q, s any) bool {
		s.(*sql.Stmt).Close()
		db.reads.Delete(q)
		return true
	})
}
