package store

import (
	"context"
	"database/sql"
)

// Reads go through statements prepared once on the reader pool, by their
// SQL text, instead of being parsed and compiled by SQLite on every call:
// GetExecution runs six queries, and compiling them was a third of its
// cost. database/sql prepares a pool statement on each reader connection
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
	s, err := db.readStmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if tx != nil {
		s = tx.StmtContext(ctx, s)
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
	s, err := db.readStmt(ctx, q)
	if err != nil {
		return errScanner{err}
	}
	if tx != nil {
		s = tx.StmtContext(ctx, s)
	}
	return s.QueryRowContext(ctx, args...)
}

// closeReads closes the prepared statements, before the pool.
func (db *DB) closeReads() {
	db.reads.Range(func(q, s any) bool {
		s.(*sql.Stmt).Close()
		db.reads.Delete(q)
		return true
	})
}
