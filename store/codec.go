package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Times are stored as unix nanoseconds (see migrations/0001_init.sql) and
// read back in UTC. The zero time and a nil pointer are stored as NULL.

func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func nanosPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return nanos(*t)
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func fromNanosPtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := time.Unix(0, n.Int64).UTC()
	return &t
}

// encodeJSON stores an open value as JSON text; nil is stored as NULL so it
// reads back as nil rather than as JSON null turned into something else.
func encodeJSON(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// encodeMap is encodeJSON for maps: a nil map is NULL, an empty one "{}",
// so each reads back as it was.
func encodeMap(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	return encodeJSON(m)
}

func decodeMap(s sql.NullString) (map[string]any, error) {
	if !s.Valid {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s.String), &m); err != nil {
		return nil, fmt.Errorf("decode stored json object: %w", err)
	}
	return m, nil
}
