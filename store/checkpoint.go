package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// SQLite's automatic checkpoint runs inside the COMMIT that crosses its
// threshold (1,000 frames by default), copying pages into the database file
// and fsyncing both files while every execution waiting on that commit
// waits too. Here a checkpointer goroutine does most of that work instead,
// on a connection of its own, in PASSIVE mode, which never blocks the
// writer or the readers, after every checkpointEvery commits and at most
// every checkpointPause. The writer's own automatic checkpoint stays, at a
// higher threshold (writerCheckpointFrames), as the backstop that bounds
// the WAL: a passive checkpoint racing a busy writer never catches up with
// the last frame, and only a complete checkpoint lets the WAL start over.
// When it runs, most frames are copied already. SQLite runs one checkpoint
// at a time and skips the writer's with SQLITE_BUSY while a passive pass is
// copying, so the WAL can outgrow writerCheckpointFrames by what the writer
// commits during one pass (more on a loaded machine); the first commit after
// the WAL starts over truncates the file back to walSizeLimit.

const (
	// writerCheckpointFrames is the writer connection's wal_autocheckpoint.
	writerCheckpointFrames = 4000
	// checkpointEvery is how many commits the writer makes between two
	// requests for a checkpoint; with a few frames per commit it keeps the
	// WAL around the 1,000 frames SQLite would let it reach.
	checkpointEvery = 128
	// checkpointPause is the least time between two checkpoints, so a flood
	// of tiny commits does not turn into a flood of fsyncs.
	checkpointPause = 50 * time.Millisecond
	// walSizeLimit truncates the WAL file back to this size when it starts
	// over, if a burst made it grow.
	walSizeLimit = 16 << 20
)

// checkpointer runs checkpoints on db when asked on want, until want is
// closed; then it runs a last one and returns.
func checkpointer(db *sql.DB, want <-chan struct{}, logger *slog.Logger) {
	for range want {
		if err := checkpoint(context.Background(), db); err != nil {
			logger.Warn("store: checkpoint failed; the WAL file grows until one succeeds", "err", err)
		}
		time.Sleep(checkpointPause)
	}
	if err := checkpoint(context.Background(), db); err != nil {
		logger.Warn("store: last checkpoint failed", "err", err)
	}
}

// checkpoint copies what it can of the WAL into the database file without
// waiting for anyone.
func checkpoint(ctx context.Context, db *sql.DB) error {
	var busy, logFrames, done int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
