package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// encodeTrigger stores an execution's trigger as JSON text, an empty string for none.
func encodeTrigger(t *workflow.Trigger) (string, error) {
	if t == nil {
		return "", nil
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeTrigger(s string, e *workflow.Execution) error {
	if s == "" {
		return nil
	}
	var t workflow.Trigger
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return fmt.Errorf("execution %s trigger: decode stored json: %w", e.ID, err)
	}
	e.Trigger = &t
	return nil
}

// newHookToken returns 32 random bytes in hex: unguessable, and safe in a
// URL path as it is.
func newHookToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make webhook token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// WebhookToken returns the webhook token of workflow id, making one the
// first time it is asked for. It fails with a "not_found" workflow.Error
// when there is no such workflow, an "unavailable" one when the DB is
// closed, and with ctx's error if ctx ends first. It is safe for
// concurrent use: two first calls at once return the same token.
func (db *DB) WebhookToken(ctx context.Context, id string) (string, error) {
	tok, err := db.HookToken(ctx, id)
	if err == nil || workflow.ErrorCode(err) != workflow.CodeNotFound {
		return tok, err
	}
	fresh, err := newHookToken()
	if err != nil {
		return "", err
	}
	if err := db.putHookToken(ctx, id, fresh, false); err != nil {
		return "", err
	}
	return db.HookToken(ctx, id)
}

// RotateWebhookToken gives workflow id a new webhook token and returns it;
// the old one stops working at once. It fails like WebhookToken.
func (db *DB) RotateWebhookToken(ctx context.Context, id string) (string, error) {
	fresh, err := newHookToken()
	if err != nil {
		return "", err
	}
	if err := db.putHookToken(ctx, id, fresh, true); err != nil {
		return "", err
	}
	return fresh, nil
}

// putHookToken stores token for workflow id; replace says whether it takes
// the place of a token already there.
func (db *DB) putHookToken(ctx context.Context, id, token string, replace bool) error {
	q := `INSERT INTO webhook_tokens (workflow_id, token, created_at) SELECT id, ?, ? FROM workflows WHERE id = ?
		ON CONFLICT (workflow_id) DO NOTHING`
	if replace {
		q = `INSERT INTO webhook_tokens (workflow_id, token, created_at) SELECT id, ?, ? FROM workflows WHERE id = ?
			ON CONFLICT (workflow_id) DO UPDATE SET token = excluded.token, created_at = excluded.created_at`
	}
	var exists bool
	err := db.exec(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM workflows WHERE id = ?)`, id).Scan(&exists); err != nil || !exists {
			return err
		}
		_, err := tx.Exec(q, token, time.Now().UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store webhook token of workflow %s: %w", id, err)
	}
	if !exists {
		return notFound("workflow", id, nil)
	}
	return nil
}

// HookToken returns the webhook token of workflow id without making one.
// It fails with a "not_found" workflow.Error when the workflow has none
// (it never had its token shown, or it does not exist), an "unavailable"
// one when the DB is closed, and with ctx's error if ctx ends first. It is
// safe for concurrent use.
func (db *DB) HookToken(ctx context.Context, id string) (string, error) {
	var tok string
	err := db.queryRow(ctx, nil, `SELECT token FROM webhook_tokens WHERE workflow_id = ?`, id).Scan(&tok)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("webhook token of workflow", id, err)
	}
	if err != nil {
		return "", db.readError(fmt.Errorf("read webhook token of workflow %s: %w", id, err))
	}
	return tok, nil
}

// LastTick returns the time of the last schedule tick recorded for
// workflow id, and false when none is. It fails when the DB is closed or
// ctx ends first. It is safe for concurrent use.
func (db *DB) LastTick(ctx context.Context, id string) (time.Time, bool, error) {
	var n int64
	err := db.queryRow(ctx, nil, `SELECT last_tick FROM schedule_ticks WHERE workflow_id = ?`, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, db.readError(fmt.Errorf("read last tick of workflow %s: %w", id, err))
	}
	return time.Unix(0, n).UTC(), true, nil
}

// SetLastTick records at as the last schedule tick of workflow id; nothing
// is recorded for a workflow that no longer exists. It fails when the DB is
// closed or ctx ends first. It is safe for concurrent use.
func (db *DB) SetLastTick(ctx context.Context, id string, at time.Time) error {
	err := db.exec(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO schedule_ticks (workflow_id, last_tick) SELECT id, ? FROM workflows WHERE id = ?
			ON CONFLICT (workflow_id) DO UPDATE SET last_tick = excluded.last_tick`, at.UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("record last tick of workflow %s: %w", id, err)
	}
	return nil
}
