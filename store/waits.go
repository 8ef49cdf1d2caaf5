package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/switchboard-dev/switchboard/workflow"
)

// SaveWait records what execution id waits for (its key is w.Key()),
// replacing an earlier wait with the same key, after every event submitted
// before the call, and waits for the commit. It fails when the DB is
// closed, SQLite fails, or ctx ends first (the wait may still be saved).
// It is safe for concurrent use.
func (db *DB) SaveWait(ctx context.Context, id string, w workflow.Wait) error {
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode wait %s of execution %s: %w", w.Key(), id, err)
	}
	err = db.exec(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO execution_waits (execution_id, key, wait) VALUES (?, ?, ?)
			ON CONFLICT (execution_id, key) DO UPDATE SET wait = excluded.wait`, id, w.Key(), string(data))
		return err
	})
	if err != nil {
		return fmt.Errorf("save wait %s of execution %s: %w", w.Key(), id, err)
	}
	return nil
}

// DeleteWait removes the wait with key from execution id, once it is
// answered or approved; a missing one is no error. It fails as SaveWait
// does, and is safe for concurrent use.
func (db *DB) DeleteWait(ctx context.Context, id, key string) error {
	err := db.exec(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM execution_waits WHERE execution_id = ? AND key = ?`, id, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete wait %s of execution %s: %w", key, id, err)
	}
	return nil
}

// AddBudget adds an approval to what was approved for execution id over
// its budget, so that a restart keeps the raised budget. It fails as
// SaveWait does, and is safe for concurrent use.
func (db *DB) AddBudget(ctx context.Context, id string, extraTokens int, extraUSD float64) error {
	err := db.exec(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO execution_budget (execution_id, extra_tokens, extra_usd) VALUES (?, ?, ?)
			ON CONFLICT (execution_id) DO UPDATE SET extra_tokens = extra_tokens + excluded.extra_tokens,
				extra_usd = extra_usd + excluded.extra_usd`, id, extraTokens, extraUSD)
		return err
	})
	if err != nil {
		return fmt.Errorf("add budget of execution %s: %w", id, err)
	}
	return nil
}

// waitsOf reads the waits of execution id, in key order.
func (db *DB) waitsOf(ctx context.Context, id string) ([]workflow.Wait, error) {
	rows, err := db.query(ctx, nil, `SELECT key, wait FROM execution_waits WHERE execution_id = ? ORDER BY key`, id)
	if err != nil {
		return nil, fmt.Errorf("read waits of execution %s: %w", id, err)
	}
	defer rows.Close()
	var out []workflow.Wait
	for rows.Next() {
		var key, data string
		if err := rows.Scan(&key, &data); err != nil {
			return nil, fmt.Errorf("read waits of execution %s: %w", id, err)
		}
		var w workflow.Wait
		if err := json.Unmarshal([]byte(data), &w); err != nil {
			return nil, fmt.Errorf("decode wait %s of execution %s: %w", key, id, err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read waits of execution %s: %w", id, err)
	}
	return out, nil
}

// withWaits sets the waits of e when it is waiting.
func (db *DB) withWaits(ctx context.Context, e *workflow.Execution) error {
	if e.Status != workflow.ExecWaiting {
		return nil
	}
	w, err := db.waitsOf(ctx, e.ID)
	if err != nil {
		return err
	}
	e.Waiting = w
	return nil
}

// Waiting is an execution that waits for a person, as a restart continues
// it: its record with its waits, the highest seq of its events (its next
// events follow them) and the budget approved for it so far.
type Waiting struct {
	Execution   *workflow.Execution
	Seq         int64
	ExtraTokens int
	ExtraUSD    float64
}

// WaitingExecutions returns every execution in status waiting, oldest
// first, as a restart continues them. It fails when the DB is closed, ctx
// ends first, or a record cannot be read. It is safe for concurrent use.
func (db *DB) WaitingExecutions(ctx context.Context) ([]Waiting, error) {
	rows, err := db.query(ctx, nil, `SELECT e.id, coalesce(b.extra_tokens, 0), coalesce(b.extra_usd, 0)
		FROM executions e LEFT JOIN execution_budget b ON b.execution_id = e.id
		WHERE e.status = ? ORDER BY e.created_at, e.id`, workflow.ExecWaiting)
	if err != nil {
		return nil, db.readError(fmt.Errorf("list waiting executions: %w", err))
	}
	var out []Waiting
	for rows.Next() {
		var w Waiting
		w.Execution = &workflow.Execution{}
		if err := rows.Scan(&w.Execution.ID, &w.ExtraTokens, &w.ExtraUSD); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list waiting executions: %w", err)
		}
		out = append(out, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, db.readError(fmt.Errorf("list waiting executions: %w", err))
	}
	for i := range out {
		id := out[i].Execution.ID
		e, err := db.GetExecution(ctx, id)
		if err != nil {
			return nil, err
		}
		f, err := db.queryEvents(ctx, nil, id)
		if err != nil {
			return nil, db.readError(fmt.Errorf("events of waiting execution %s: %w", id, err))
		}
		out[i].Execution, out[i].Seq = e, f.MaxSeq
	}
	return out, nil
}
