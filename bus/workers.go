package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// WorkerKeyPrefix starts the key of every registered worker: "switchboard:worker:{name}".
const WorkerKeyPrefix = "switchboard:worker:"

// DefaultHeartbeat is how often a worker renews its registration. The key lives for three
// periods, so one slow or failed renewal does not make a live worker vanish, and a dead worker
// disappears from placement within 9 s.
const DefaultHeartbeat = 3 * time.Second

// ttlPeriods is how many heartbeat periods a registration outlives its last renewal.
const ttlPeriods = 3

// deregisterTimeout bounds the DEL of a clean stop, which runs after the heartbeat's context
// has ended.
const deregisterTimeout = 2 * time.Second

// ErrWorkerNameTaken is wrapped by the error of [Register] when a live worker already holds the
// name. A worker that crashed keeps its name until its key expires (three heartbeat periods).
var ErrWorkerNameTaken = errors.New("bus: worker name is taken by a live worker")

// ErrLeaseLost is wrapped by the error of [Registration.Run] when the registration can no
// longer be trusted: its key expired or was replaced, or no renewal succeeded for as long as the
// key lives. A worker that sees it must stop its nodes, because the server may already have
// given its work to another worker.
var ErrLeaseLost = errors.New("bus: worker registration lost")

// ErrMalformedWorker is wrapped by the error of [ListWorkers] for keys whose value is not a
// worker record; the workers that could be read are returned with it.
var ErrMalformedWorker = errors.New("bus: malformed worker record")

// WorkerKey returns the key under which the worker named name is registered.
func WorkerKey(name string) string { return WorkerKeyPrefix + name }

// Worker is what a worker process publishes about itself, for placement and for the dashboard's
// Bus page. It is stored as JSON under [WorkerKey].
type Worker struct {
	Name          string    `json:"name"`
	Host          string    `json:"host"`
	PID           int       `json:"pid"`
	Capacity      int       `json:"capacity"` // nodes it runs at once (--concurrency)
	InUse         int       `json:"in_use"`   // nodes running now
	StartedAt     time.Time `json:"started_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"` // the worker's clock at its last renewal
	Agents        []string  `json:"agents"`         // agent ids hosted now
	// Instance is random per registration. Renewals and the final DEL only touch a key that
	// still holds it, so a worker never refreshes or deletes the key of a successor that took
	// the same name after its own key expired.
	Instance string `json:"instance"`
}

// Free returns the capacity not in use (never negative).
func (w Worker) Free() int { return max(w.Capacity-w.InUse, 0) }

// HeartbeatOptions tune a [Registration]. The zero value is the production setting.
type HeartbeatOptions struct {
	// Interval between renewals; DefaultHeartbeat when <= 0. The key's TTL is three intervals.
	Interval time.Duration
	// OnError, when not nil, is called from the heartbeat goroutine with every failed renewal
	// (Redis unreachable, a timeout), including those that the next renewal recovers from, so
	// the worker can log them. It must not block.
	OnError func(error)
}

// Registration is a worker's live entry in the registry, created by [Register] and kept alive
// by [Registration.Run].
//
// Its methods are safe for concurrent use: Update may be called from any goroutine while Run
// renews the key.
type Registration struct {
	rdb      redis.UniversalClient
	name     string // w.Name, readable without the lock
	key      string
	interval time.Duration
	ttl      time.Duration
	onError  func(error)

	mu sync.Mutex
	w  Worker
}

// renewScript rewrites the key only while it still holds this registration's instance: a
// missing key (expired: the lease is lost) answers 0, a key of another instance answers -1.
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if cjson.decode(v)['instance'] ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// deregisterScript deletes the key only while it holds this registration's instance.
var deregisterScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['instance'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Register publishes w under WorkerKey(w.Name) with a TTL of three heartbeat intervals. It
// sets w.Instance, w.StartedAt (when zero) and w.LastHeartbeat. It fails when w.Name is empty
// or contains characters that would make the key ambiguous (':' or '*'), with an error
// wrapping [ErrWorkerNameTaken] when a live worker holds the name, and when Redis cannot be
// reached before ctx ends. The key is not renewed until [Registration.Run] is called. Safe for
// concurrent use (two processes racing for one name: one wins, the other gets
// ErrWorkerNameTaken).
func Register(ctx context.Context, rdb redis.UniversalClient, w Worker, opts HeartbeatOptions) (*Registration, error) {
	if w.Name == "" || strings.ContainsAny(w.Name, ":*?[]") {
		return nil, fmt.Errorf("register worker %q: name must be non-empty without ':', '*', '?', '[' or ']'", w.Name)
	}
	if w.Capacity < 0 || w.InUse < 0 {
		return nil, fmt.Errorf("register worker %s: capacity %d and in_use %d must not be negative", w.Name, w.Capacity, w.InUse)
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultHeartbeat
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
	w.Instance = hex.EncodeToString(id[:])
	now := time.Now().UTC()
	if w.StartedAt.IsZero() {
		w.StartedAt = now
	}
	w.LastHeartbeat = now
	w.Agents = slices.Clone(w.Agents)
	r := &Registration{
		rdb: rdb, name: w.Name, key: WorkerKey(w.Name), interval: interval, ttl: ttlPeriods * interval,
		onError: opts.OnError, w: w,
	}
	v, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("register worker %s: %w", w.Name, err)
	}
	ok, err := rdb.SetNX(ctx, r.key, v, r.ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("register worker %s: %w", w.Name, err)
	}
	if !ok {
		left, _ := rdb.PTTL(ctx, r.key).Result()
		return nil, fmt.Errorf("register worker %s (key %s expires in %s): %w", w.Name, r.key, left.Round(time.Millisecond), ErrWorkerNameTaken)
	}
	return r, nil
}

// Info returns a copy of the record as last written or updated.
func (r *Registration) Info() Worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.w
	w.Agents = slices.Clone(r.w.Agents)
	return w
}

// TTL returns how long the key lives after a renewal (three heartbeat intervals).
func (r *Registration) TTL() time.Duration { return r.ttl }

// Update changes the record (typically InUse and Agents) under the registration's lock; the
// change reaches Redis with the next renewal, within one heartbeat interval. fn must not change
// Name or Instance (such changes are undone) and must not block.
func (r *Registration) Update(fn func(w *Worker)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name, inst := r.w.Name, r.w.Instance
	fn(&r.w)
	r.w.Name, r.w.Instance = name, inst
}

// Run renews the key every heartbeat interval until ctx ends, then deletes it (a clean stop:
// the worker leaves placement at once instead of after its TTL) and returns nil.
//
// A renewal that fails is reported to OnError and retried at the next tick. Run returns an
// error wrapping [ErrLeaseLost] as soon as it learns that the key expired or belongs to another
// instance, or when no renewal has succeeded for a whole TTL (Redis down or unreachable): from
// then on another process may own the work, so the worker must cancel its nodes. Each renewal
// is bounded by one interval, so a hung connection cannot hold Run past the TTL.
//
// Run must be called at most once at a time.
func (r *Registration) Run(ctx context.Context) error {
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deregisterTimeout)
			defer cancel()
			if err := r.deregister(dctx); err != nil {
				return fmt.Errorf("deregister worker %s: %w", r.name, err)
			}
			return nil
		case <-tick.C:
		}
		err := r.renew(ctx)
		switch {
		case err == nil:
			lastOK = time.Now()
		case errors.Is(err, ErrLeaseLost):
			return err
		case ctx.Err() != nil:
			// The renewal was cut short by the stop itself; the next loop deregisters.
		default:
			if r.onError != nil {
				r.onError(err)
			}
			if since := time.Since(lastOK); since >= r.ttl {
				return fmt.Errorf("worker %s: no renewal for %s (ttl %s), last error: %w: %w",
					r.name, since.Round(time.Millisecond), r.ttl, err, ErrLeaseLost)
			}
		}
	}
}

// renew writes the current record with a fresh TTL, bounded by one interval.
func (r *Registration) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.interval)
	defer cancel()
	r.mu.Lock()
	r.w.LastHeartbeat = time.Now().UTC()
	v, err := json.Marshal(r.w)
	inst, name := r.w.Instance, r.name
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("renew worker %s: %w", name, err)
	}
	n, err := renewScript.Run(ctx, r.rdb, []string{r.key}, inst, v, r.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("renew worker %s: %w", name, err)
	}
	switch n {
	case 0:
		return fmt.Errorf("renew worker %s: key %s expired: %w", name, r.key, ErrLeaseLost)
	case -1:
		return fmt.Errorf("renew worker %s: key %s now belongs to another instance: %w", name, r.key, ErrLeaseLost)
	}
	return nil
}

// deregister deletes the key if it is still this registration's.
func (r *Registration) deregister(ctx context.Context) error {
	r.mu.Lock()
	inst := r.w.Instance
	r.mu.Unlock()
	return deregisterScript.Run(ctx, r.rdb, []string{r.key}, inst).Err()
}

// listBatch is the SCAN COUNT hint and the MGET batch size of ListWorkers.
const listBatch = 100

// ListWorkers returns the live workers (those whose key has not expired), sorted by name, for
// placement and the dashboard. It walks the keys with SCAN, never KEYS, so it does not stall
// Redis however many keys it holds; a worker that registers or expires during the walk may be
// missing or present. It fails when Redis cannot be reached before ctx ends. Records that
// cannot be decoded are left out and named in an error wrapping [ErrMalformedWorker], returned
// together with the workers that could be read. Safe for concurrent use.
func ListWorkers(ctx context.Context, rdb redis.UniversalClient) ([]Worker, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, WorkerKeyPrefix+"*", listBatch).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list workers: scan: %w", err)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // SCAN may return a key twice
	workers := make([]Worker, 0, len(keys))
	var bad []string
	for batch := range slices.Chunk(keys, listBatch) {
		vals, err := rdb.MGet(ctx, batch...).Result()
		if err != nil {
			return nil, fmt.Errorf("list workers: mget: %w", err)
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // expired since the scan
			}
			var w Worker
			if err := json.Unmarshal([]byte(s), &w); err != nil || w.Name == "" {
				bad = append(bad, batch[i])
				continue
			}
			workers = append(workers, w)
		}
	}
	if len(bad) > 0 {
		return workers, fmt.Errorf("list workers: keys %s: %w", strings.Join(bad, ", "), ErrMalformedWorker)
	}
	return workers, nil
}
