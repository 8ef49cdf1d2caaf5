package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Streams and consumer groups of worker mode. Work that must not be lost travels on Redis
// Streams, not Pub/Sub: the server adds a task_request per node run to TasksStream, which the
// workers read as consumers of TasksGroup; a worker adds the task_response (and the events it
// sends back) to ResultsStream, which the server reads as a consumer of ResultsGroup.
const (
	TasksStream   = "switchboard:tasks"
	TasksGroup    = "switchboard:workers"
	ResultsStream = "switchboard:results"
	ResultsGroup  = "switchboard:server"
)

// WorkerTasksStream is the task stream of the worker named name: the server adds the
// task_requests of the agents it placed on that worker there, and the worker reads it as a
// consumer of TasksGroup named after itself.
func WorkerTasksStream(name string) string { return TasksStream + ":" + name }

// ServerResultsStream is the result stream of the server whose agent id is server: its
// workers add their task_responses and events there, and it reads it as a consumer of
// ResultsGroup.
func ServerResultsStream(server string) string { return ResultsStream + ":" + server }

// Defaults of [QueueOptions].
const (
	// DefaultLease is how long a delivered entry may go without an ack or a renewal before
	// another consumer claims it.
	DefaultLease = 15 * time.Second
	// DefaultBlock bounds one XREADGROUP wait. go-redis does not interrupt a blocking read when
	// its context is cancelled, so this is also how late [Consumer.Next] notices a cancellation,
	// and how late an idle consumer looks for lapsed leases: a failover takes at most the lease
	// plus this.
	DefaultBlock = 500 * time.Millisecond
	// DefaultMaxLen is the approximate length XADD trims a stream to. It is a backstop against
	// a stream growing without end when nobody trims; [TaskQueue.Trim] is the normal trimming.
	DefaultMaxLen = 100_000
	// DefaultDeadAfter is how many leases a consumer with nothing pending may stay idle before
	// [TaskQueue.RemoveDeadConsumers] removes it.
	DefaultDeadAfter = 3
)

// ErrNotPending is wrapped by the error of [Consumer.Ack] when the entry was not pending any
// more (already acked, or lost with its group when Redis restarted without persistence).
var ErrNotPending = errors.New("bus: stream entry is not pending")

// Task is one entry of a task stream: a task_request (server → worker) or a task_response
// (worker → server). The entry's fields are type, execution_id, node_id, attempt and payload.
type Task struct {
	// ID is the stream entry id, set when the task is submitted or delivered.
	ID string
	// Kind is TypeTaskRequest or TypeTaskResponse.
	Kind MessageType
	// ExecutionID and NodeID name the node run the task is about; both are required.
	ExecutionID string
	NodeID      string
	// Attempt is the attempt number as submitted (>= 1; 0 is submitted as 1). For a
	// task_request the server sets it (a fresh run is 1, a retry it decides on is higher); a
	// task_response carries the attempt that produced it, [Task.RunAttempt] of its request.
	Attempt int
	// Payload is the task's body as JSON (empty is sent as null).
	Payload json.RawMessage
	// Deliveries is how many times the entry has been delivered to a consumer of the group,
	// this delivery included: 1 on the first read, +1 for every claim after a lapsed lease.
	// Set on delivery only.
	Deliveries int
}

// RunAttempt is the attempt a delivered task_request stands for: Attempt + Deliveries - 1, so
// the first delivery runs the submitted attempt and every claim after a lapsed lease is the
// next one. A worker runs the node as this attempt and puts it in its task_response and events.
// It means nothing for a delivered task_response: a response delivered twice is still the
// attempt in its Attempt field.
//
// Fencing, on the server (next to the store, which knows what was applied): it keeps, per
// execution and node, the highest attempt it has seen in any result or event, drops results
// and events of lower attempts (a zombie worker that lost its lease), and applies one result
// per node at most, keyed by execution, node and attempt, so a result delivered twice is
// acked without effect.
func (t Task) RunAttempt() int {
	return max(t.Attempt, 1) + max(t.Deliveries, 1) - 1
}

// QueueOptions configure a [TaskQueue]. The zero value is the task stream with production
// settings.
type QueueOptions struct {
	Stream string // TasksStream when empty
	Group  string // TasksGroup when empty
	// Lease is how long a delivered entry may go without Ack or Renew before another consumer
	// claims it; DefaultLease when <= 0. Tests shorten it.
	Lease time.Duration
	// Block bounds one blocking read; DefaultBlock when <= 0.
	Block time.Duration
	// MaxLen is the approximate length XADD trims to; DefaultMaxLen when 0, no trimming on
	// XADD when < 0.
	MaxLen int64
	// DeadAfter is the number of leases after which an idle consumer with nothing pending is
	// dead; DefaultDeadAfter when <= 0.
	DeadAfter int
}

// TaskQueue is one stream with one consumer group: [TaskQueue.Submit] adds entries, a
// [Consumer] reads, renews and acks them, and the queue's housekeeping (ClaimStale through
// Next, Trim, RemoveDeadConsumers) keeps delivery at-least-once and the stream bounded. The
// same type serves both directions: the task stream (workers consume) and the result stream
// (the server consumes), which follow the same ack and claim rules.
//
// Delivery is at least once: an entry is acked only after its effect is safe elsewhere (the
// worker's task_response is on the result stream; the server's result is stored), and a
// consumer that dies or stalls before that loses the entry to another consumer after the
// lease, with Deliveries one higher.
//
// Every method that talks to Redis takes a context and fails when Redis cannot be reached
// before it ends. A TaskQueue is safe for concurrent use.
type TaskQueue struct {
	rdb       redis.UniversalClient
	stream    string
	group     string
	lease     time.Duration
	block     time.Duration
	maxLen    int64
	deadAfter int
}

// NewTaskQueue returns a queue over opts.Stream and opts.Group. It does not talk to Redis:
// call [TaskQueue.Ensure] before the first read.
func NewTaskQueue(rdb redis.UniversalClient, opts QueueOptions) *TaskQueue {
	q := &TaskQueue{rdb: rdb, stream: opts.Stream, group: opts.Group, lease: opts.Lease,
		block: opts.Block, maxLen: opts.MaxLen, deadAfter: opts.DeadAfter}
	if q.stream == "" {
		q.stream = TasksStream
	}
	if q.group == "" {
		q.group = TasksGroup
	}
	if q.lease <= 0 {
		q.lease = DefaultLease
	}
	if q.block <= 0 {
		q.block = DefaultBlock
	}
	if q.maxLen == 0 {
		q.maxLen = DefaultMaxLen
	}
	if q.deadAfter <= 0 {
		q.deadAfter = DefaultDeadAfter
	}
	return q
}

// Stream returns the stream's key.
func (q *TaskQueue) Stream() string { return q.stream }

// Group returns the consumer group's name.
func (q *TaskQueue) Group() string { return q.group }

// Lease returns the lease after which an unacked entry is claimed by another consumer.
func (q *TaskQueue) Lease() time.Duration { return q.lease }

// Ensure creates the stream and the consumer group if they do not exist; an existing group
// (BUSYGROUP) is not an error, so every process calls it at start. The group starts at the
// beginning of the stream, so entries added before any consumer started are delivered too.
func (q *TaskQueue) Ensure(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.stream, q.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create group %s on %s: %w", q.group, q.stream, err)
	}
	return nil
}

// Submit adds t to the stream (XADD, trimming to about MaxLen entries) and returns the entry
// id. It fails when t has no execution or node id, a Kind other than task_request or
// task_response, a negative Attempt or a Payload that is not JSON, naming the field.
//
// Approximate trimming drops whole nodes of old entries, acked or not: MaxLen is a backstop
// set far above any backlog, and [TaskQueue.Trim] removes only entries nobody needs.
func (q *TaskQueue) Submit(ctx context.Context, t Task) (string, error) {
	if err := t.validate(); err != nil {
		return "", fmt.Errorf("submit to %s: %w", q.stream, err)
	}
	args := &redis.XAddArgs{Stream: q.stream, Values: t.fields()}
	if q.maxLen > 0 {
		args.MaxLen, args.Approx = q.maxLen, true
	}
	id, err := q.rdb.XAdd(ctx, args).Result()
	if err != nil {
		return "", fmt.Errorf("submit %s %s/%s to %s: %w", t.Kind, t.ExecutionID, t.NodeID, q.stream, err)
	}
	return id, nil
}

// SubmitAll adds tasks to the stream in order, in one round trip (a pipeline of XADDs), and
// returns their entry ids. It fails, adding none, when a task is invalid; when Redis fails
// part way, the error says so and the ids of the tasks added before are returned.
func (q *TaskQueue) SubmitAll(ctx context.Context, tasks []Task) ([]string, error) {
	for _, t := range tasks {
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("submit to %s: %w", q.stream, err)
		}
	}
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(tasks))
	for i, t := range tasks {
		args := &redis.XAddArgs{Stream: q.stream, Values: t.fields()}
		if q.maxLen > 0 {
			args.MaxLen, args.Approx = q.maxLen, true
		}
		cmds[i] = pipe.XAdd(ctx, args)
	}
	_, err := pipe.Exec(ctx)
	ids := make([]string, 0, len(tasks))
	for _, c := range cmds {
		id, cerr := c.Result()
		if cerr != nil {
			return ids, fmt.Errorf("submit %d tasks to %s: %w", len(tasks), q.stream, cerr)
		}
		ids = append(ids, id)
	}
	if err != nil {
		return ids, fmt.Errorf("submit %d tasks to %s: %w", len(tasks), q.stream, err)
	}
	return ids, nil
}

func (t Task) validate() error {
	switch {
	case t.Kind != TypeTaskRequest && t.Kind != TypeTaskResponse:
		return fmt.Errorf("task type %q: want %q or %q", t.Kind, TypeTaskRequest, TypeTaskResponse)
	case t.ExecutionID == "":
		return errors.New("task execution_id is empty")
	case t.NodeID == "":
		return fmt.Errorf("task of execution %s: node_id is empty", t.ExecutionID)
	case t.Attempt < 0:
		return fmt.Errorf("task %s/%s: attempt %d is negative", t.ExecutionID, t.NodeID, t.Attempt)
	case len(t.Payload) > 0 && !json.Valid(t.Payload):
		return fmt.Errorf("task %s/%s: payload is not valid JSON", t.ExecutionID, t.NodeID)
	}
	return nil
}

func (t Task) fields() []any {
	payload := string(t.Payload)
	if payload == "" {
		payload = "null"
	}
	return []any{
		"type", string(t.Kind),
		"execution_id", t.ExecutionID,
		"node_id", t.NodeID,
		"attempt", strconv.Itoa(max(t.Attempt, 1)),
		"payload", payload,
	}
}

// DecodeTask reads a stream entry written by [TaskQueue.Submit], for a reader of the stream
// other than a [Consumer]. Its Deliveries is 0.
func DecodeTask(m redis.XMessage) (Task, error) { return decodeTask(m) }

// decodeTask reads an entry written by Submit. An entry that is not one (written by another
// program) is an error naming the entry and field.
func decodeTask(m redis.XMessage) (Task, error) {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	t := Task{ID: m.ID, Kind: MessageType(strings.ToLower(str("type"))), ExecutionID: str("execution_id"),
		NodeID: str("node_id"), Payload: json.RawMessage(str("payload"))}
	a, err := strconv.Atoi(str("attempt"))
	if err != nil {
		return t, fmt.Errorf("stream entry %s: field attempt %q is not a number", m.ID, str("attempt"))
	}
	t.Attempt = a
	if err := t.validate(); err != nil {
		return t, fmt.Errorf("stream entry %s: %w", m.ID, err)
	}
	return t, nil
}

// Len returns the number of entries in the stream (XLEN): pending, undelivered and not yet
// trimmed.
func (q *TaskQueue) Len(ctx context.Context) (int64, error) {
	n, err := q.rdb.XLen(ctx, q.stream).Result()
	if err != nil {
		return 0, fmt.Errorf("length of %s: %w", q.stream, err)
	}
	return n, nil
}

// Pending returns the number of entries delivered to a consumer and not acked yet. A stream or
// group that does not exist has none.
func (q *TaskQueue) Pending(ctx context.Context) (int64, error) {
	p, err := q.rdb.XPending(ctx, q.stream, q.group).Result()
	if err != nil {
		if isNoGroup(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("pending of %s/%s: %w", q.stream, q.group, err)
	}
	return p.Count, nil
}

// ConsumerInfo describes one consumer of the group, for the dashboard and for tests.
type ConsumerInfo struct {
	Name    string        `json:"name"`
	Pending int64         `json:"pending"` // entries delivered to it and not acked
	Idle    time.Duration `json:"idle"`    // since it last read, claimed or renewed
}

// Consumers lists the group's consumers (XINFO CONSUMERS). A stream or group that does not
// exist has none.
func (q *TaskQueue) Consumers(ctx context.Context) ([]ConsumerInfo, error) {
	cs, err := q.rdb.XInfoConsumers(ctx, q.stream, q.group).Result()
	if err != nil {
		if isNoGroup(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("consumers of %s/%s: %w", q.stream, q.group, err)
	}
	out := make([]ConsumerInfo, len(cs))
	for i, c := range cs {
		out[i] = ConsumerInfo{Name: c.Name, Pending: c.Pending, Idle: c.Idle}
	}
	return out, nil
}

// removeConsumerScript deletes a consumer only if, at that instant, it has nothing pending and
// has been idle for at least ARGV[2] ms. Checking and deleting in one script matters: a
// consumer that reads between a separate check and the DELCONSUMER would lose the entry it
// just read (DELCONSUMER drops the consumer's pending entries, so nobody could claim it).
var removeConsumerScript = redis.NewScript(`
local cs = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(cs) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] == ARGV[3] then
    if tonumber(f['pending']) == 0 and tonumber(f['idle']) >= tonumber(ARGV[2]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[3])
      return 1
    end
    return 0
  end
end
return 0
`)

// RemoveDeadConsumers removes the consumers that have nothing pending and have been idle for
// DeadAfter leases (XGROUP DELCONSUMER), and returns their names. A consumer that still has
// pending entries is kept until another consumer has claimed them.
//
// Idle time is what XINFO CONSUMERS reports: on Redis 7.2 and later the time since the
// consumer's last read of any kind, so a live consumer waiting in Next stays; on Redis 7.0 the
// time since a read last delivered something, so a live consumer that got no work for that
// long is removed too. That costs nothing: removal happens only with nothing pending, and
// Redis recreates the consumer with its next delivery, even one to a read already waiting.
// (miniredis reports no idle time for XREADGROUP readers, so nothing is removed there.)
//
// Run it from one place (the server) every few leases; running it from several is safe, only
// wasteful.
func (q *TaskQueue) RemoveDeadConsumers(ctx context.Context) ([]string, error) {
	cs, err := q.Consumers(ctx)
	if err != nil {
		return nil, err
	}
	dead := time.Duration(q.deadAfter) * q.lease
	var removed []string
	for _, c := range cs {
		if c.Pending != 0 || c.Idle < dead {
			continue
		}
		n, err := removeConsumerScript.Run(ctx, q.rdb, []string{q.stream}, q.group, dead.Milliseconds(), c.Name).Int()
		if err != nil {
			return removed, fmt.Errorf("remove consumer %s of %s/%s: %w", c.Name, q.stream, q.group, err)
		}
		if n == 1 {
			removed = append(removed, c.Name)
		}
	}
	return removed, nil
}

// Trim removes the entries that no group needs any more: those before the oldest entry that is
// pending or not yet delivered in every group of the stream (XTRIM MINID). Unlike MAXLEN, it
// never drops an entry that a consumer still has to run or claim. It returns how many entries
// it removed. Run it from one place every few seconds.
func (q *TaskQueue) Trim(ctx context.Context) (int64, error) {
	groups, err := q.rdb.XInfoGroups(ctx, q.stream).Result()
	if err != nil {
		if isNoGroup(err) || strings.Contains(err.Error(), "no such key") {
			return 0, nil
		}
		return 0, fmt.Errorf("trim %s: %w", q.stream, err)
	}
	var minID string
	for _, g := range groups {
		// Everything after last-delivered-id is still to be delivered.
		keep, err := nextID(g.LastDeliveredID)
		if err != nil {
			return 0, fmt.Errorf("trim %s: group %s: %w", q.stream, g.Name, err)
		}
		if g.Pending > 0 {
			p, err := q.rdb.XPending(ctx, q.stream, g.Name).Result()
			if err != nil {
				return 0, fmt.Errorf("trim %s: pending of %s: %w", q.stream, g.Name, err)
			}
			if p.Count > 0 && lessID(p.Lower, keep) {
				keep = p.Lower
			}
		}
		if minID == "" || lessID(keep, minID) {
			minID = keep
		}
	}
	if minID == "" {
		return 0, nil // no group: nobody has read anything, keep everything
	}
	n, err := q.rdb.XTrimMinID(ctx, q.stream, minID).Result()
	if err != nil {
		return 0, fmt.Errorf("trim %s to %s: %w", q.stream, minID, err)
	}
	return n, nil
}

// Consumer reads a [TaskQueue] under one consumer name. Give every process its own name (for
// a worker: its worker name plus something unique per start, such as the registration's
// instance), because a consumer's pending entries belong to the name.
//
// A Consumer is safe for concurrent use, but one goroutine should call Next (it batches).
type Consumer struct {
	q    *TaskQueue
	name string

	mu          sync.Mutex
	lastClaim   time.Time                          // when Next last looked for lapsed leases
	claimCursor string                             // where ClaimStale's next XAUTOCLAIM scan starts
	held        map[string]context.CancelCauseFunc // running tasks KeepAlive renews, by entry id
}

// Consumer returns the consumer of q named name. It does not talk to Redis; the consumer
// appears in the group with its first delivery.
func (q *TaskQueue) Consumer(name string) *Consumer { return &Consumer{q: q, name: name} }

// Name returns the consumer's name.
func (c *Consumer) Name() string { return c.name }

// Next returns up to limit tasks (limit <= 0 means 1) for this consumer, waiting until there
// is at least one or ctx ends. It claims entries whose lease lapsed (XAUTOCLAIM: their
// consumer died or stalled) at most every quarter lease (and at most every Block), and
// otherwise reads new ones (XREADGROUP, each wait bounded by Block, so a cancelled ctx is
// noticed within Block). Every returned task is pending for this consumer until
// [Consumer.Ack]; if it is neither acked nor renewed within the lease, another consumer gets
// it.
//
// It fails when ctx ends (with ctx's error, wrapped), when Redis cannot be reached, or when an
// entry is not a task (it is acked, so it is not redelivered forever, and the error names it;
// the other tasks of the batch are returned with the error). When the group is missing (Redis
// restarted empty) it creates it again and goes on. After an error the caller pauses before
// calling again, since a Redis that is down fails every call at once.
func (c *Consumer) Next(ctx context.Context, limit int) ([]Task, error) {
	if limit <= 0 {
		limit = 1
	}
	claimEvery := min(c.q.lease/4, c.q.block)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("next task of %s for %s: %w", c.q.stream, c.name, err)
		}
		c.mu.Lock()
		claim := time.Since(c.lastClaim) >= claimEvery
		if claim {
			c.lastClaim = time.Now()
		}
		c.mu.Unlock()
		if claim {
			tasks, err := c.ClaimStale(ctx, limit)
			if len(tasks) > 0 || err != nil {
				return tasks, err
			}
		}
		tasks, err := c.read(ctx, limit)
		if len(tasks) > 0 || err != nil {
			return tasks, err
		}
	}
}

// Read returns up to limit new entries for this consumer (limit <= 0 means 1), waiting at most
// Block for one; it claims nothing. A reader whose entries nobody else may take over reads
// this way: a worker reading its own stream (the server takes over what it held, after the
// lease), or the server reading its result stream. When the group is missing (Redis
// restarted empty) it creates it again. It fails when Redis cannot be reached, with ctx's
// error when ctx ends, and when an entry is not a task (acked and named, like Next).
func (c *Consumer) Read(ctx context.Context, limit int) ([]Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read %s for %s: %w", c.q.stream, c.name, err)
	}
	return c.read(ctx, max(limit, 1))
}

// read does one bounded XREADGROUP of new entries.
func (c *Consumer) read(ctx context.Context, limit int) ([]Task, error) {
	res, err := c.q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.q.group, Consumer: c.name, Streams: []string{c.q.stream, ">"},
		Count: int64(limit), Block: c.q.block,
	}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil // the block time passed with nothing new
	case isNoGroup(err):
		if err := c.q.Ensure(ctx); err != nil {
			return nil, fmt.Errorf("read %s for %s: group gone: %w", c.q.stream, c.name, err)
		}
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read %s for %s: %w", c.q.stream, c.name, err)
	}
	var msgs []redis.XMessage
	for _, s := range res {
		msgs = append(msgs, s.Messages...)
	}
	return c.decode(ctx, msgs, nil)
}

// decode turns delivered entries into tasks. deliveries gives each entry's delivery count
// (nil: a first delivery). Entries that are not tasks are acked and reported.
func (c *Consumer) decode(ctx context.Context, msgs []redis.XMessage, deliveries map[string]int) ([]Task, error) {
	tasks := make([]Task, 0, len(msgs))
	var bad []string
	var errs []error
	for _, m := range msgs {
		t, err := decodeTask(m)
		if err != nil {
			bad = append(bad, m.ID)
			errs = append(errs, err)
			continue
		}
		t.Deliveries = 1
		if d, ok := deliveries[m.ID]; ok {
			t.Deliveries = d
		}
		tasks = append(tasks, t)
	}
	if len(bad) > 0 {
		if err := c.q.rdb.XAck(ctx, c.q.stream, c.q.group, bad...).Err(); err != nil {
			errs = append(errs, fmt.Errorf("ack entries that are not tasks: %w", err))
		}
		return tasks, fmt.Errorf("read %s for %s: %w", c.q.stream, c.name, errors.Join(errs...))
	}
	return tasks, nil
}

// ClaimStale takes over up to limit entries whose lease lapsed (XAUTOCLAIM with the lease as
// minimum idle time) and returns them as tasks with Deliveries counted by Redis, so
// [Task.RunAttempt] is one more than the lapsed attempt. [Consumer.Next] calls it between
// reads; it is exported for a server that wants to sweep on a timer.
//
// One call examines a bounded part of the pending list (XAUTOCLAIM looks at ten entries per
// entry asked for); the next call goes on from there and wraps around at the end, so a large
// pending list is covered over several calls.
//
// Entries that were trimmed away while pending (only MaxLen trimming can do that) cannot be
// run again: Redis drops them from the pending list and they are reported in an error. The
// stream ids in it are all that is left of them.
func (c *Consumer) ClaimStale(ctx context.Context, limit int) ([]Task, error) {
	return c.claim(ctx, limit, c.q.lease)
}

// ClaimAbandoned is [Consumer.ClaimStale] without waiting for the lease: it takes over up to
// limit pending entries however recently they were read or renewed. It is for the entries of a
// consumer that is known to be gone (a worker that deregistered when it stopped, or whose
// registration expired), which nobody renews any more; a zombie that still runs one is fenced
// by the attempt number the claim raises.
func (c *Consumer) ClaimAbandoned(ctx context.Context, limit int) ([]Task, error) {
	return c.claim(ctx, limit, 0)
}

func (c *Consumer) claim(ctx context.Context, limit int, minIdle time.Duration) ([]Task, error) {
	if limit <= 0 {
		limit = 1
	}
	c.mu.Lock()
	start := c.claimCursor
	c.mu.Unlock()
	if start == "" {
		start = "0-0"
	}
	msgs, cursor, deleted, err := c.q.rdb.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
		Stream: c.q.stream, Group: c.q.group, Consumer: c.name,
		MinIdle: minIdle, Start: start, Count: int64(limit),
	}).Result()
	if err == nil {
		c.mu.Lock()
		c.claimCursor = cursor // "0-0" when the scan reached the end: start over
		c.mu.Unlock()
	}
	if err != nil {
		if isNoGroup(err) {
			return nil, nil // Next's read recreates it
		}
		return nil, fmt.Errorf("claim stale entries of %s for %s: %w", c.q.stream, c.name, err)
	}
	var lostErr error
	if len(deleted) > 0 {
		lostErr = fmt.Errorf("claim stale entries of %s for %s: entries %s were trimmed while pending", c.q.stream, c.name, strings.Join(deleted, ", "))
	}
	if len(msgs) == 0 {
		return nil, lostErr
	}
	counts, err := c.deliveries(ctx, msgs)
	if err != nil {
		return nil, errors.Join(err, lostErr)
	}
	tasks, err := c.decode(ctx, msgs, counts)
	return tasks, errors.Join(err, lostErr)
}

// deliveries reads the delivery count of each claimed entry (XAUTOCLAIM does not return it).
func (c *Consumer) deliveries(ctx context.Context, msgs []redis.XMessage) (map[string]int, error) {
	pipe := c.q.rdb.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: c.q.stream, Group: c.q.group, Start: m.ID, End: m.ID, Count: 1,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("delivery counts of claimed entries of %s: %w", c.q.stream, err)
	}
	counts := make(map[string]int, len(msgs))
	for i, cmd := range cmds {
		if p := cmd.Val(); len(p) == 1 {
			counts[msgs[i].ID] = int(p[0].RetryCount)
		}
	}
	return counts, nil
}

// Ack acknowledges tasks (XACK): they leave the pending list and are never delivered again.
// Ack a task_request only after its task_response is on the result stream, and a
// task_response only after its effect is stored. Ack does not check who holds the entry: a
// zombie that acks after a claim only ends a delivery whose result it has already sent, and
// the server applies one result per attempt. It fails with an error wrapping [ErrNotPending]
// when none of the ids was pending.
func (c *Consumer) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	n, err := c.q.rdb.XAck(ctx, c.q.stream, c.q.group, ids...).Result()
	if err != nil {
		return fmt.Errorf("ack %s on %s: %w", strings.Join(ids, ", "), c.q.stream, err)
	}
	if n == 0 {
		return fmt.Errorf("ack %s on %s: %w", strings.Join(ids, ", "), c.q.stream, ErrNotPending)
	}
	return nil
}

// renewScript resets the idle time of each entry in ARGV[3..] that is still pending for
// consumer ARGV[2], keeping its delivery count (RETRYCOUNT: plain XCLAIM would count a
// delivery), and returns the ids it could not renew. XPENDING and XCLAIM run in one script so
// an entry claimed by another consumer in between is never taken back.
var renewTasksScript = redis.NewScript(`
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'RETRYCOUNT', p[1][4], 'JUSTID')
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
`)

// Renew extends the lease of tasks this consumer still holds, so a node that runs longer than
// the lease is not claimed by another worker. [Consumer.KeepAlive] calls it for the tasks
// registered with [Consumer.Hold], several times per lease. It returns the ids it could not renew: another
// consumer claimed them (this worker stalled past the lease) or they are no longer pending.
// The worker must cancel those nodes, because another attempt runs them now.
func (c *Consumer) Renew(ctx context.Context, ids ...string) (lost []string, err error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(ids)+2)
	args = append(args, c.q.group, c.name)
	for _, id := range ids {
		args = append(args, id)
	}
	lost, err = renewTasksScript.Run(ctx, c.q.rdb, []string{c.q.stream}, args...).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("renew %d tasks of %s for %s: %w", len(ids), c.q.stream, c.name, err)
	}
	return lost, nil
}

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

// parseID splits a stream id "ms-seq".
func parseID(id string) (ms, seq uint64, err error) {
	a, b, ok := strings.Cut(id, "-")
	if !ok {
		return 0, 0, fmt.Errorf("stream id %q: want ms-seq", id)
	}
	if ms, err = strconv.ParseUint(a, 10, 64); err == nil {
		seq, err = strconv.ParseUint(b, 10, 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("stream id %q: %w", id, err)
	}
	return ms, seq, nil
}

// nextID returns the smallest id after id.
func nextID(id string) (string, error) {
	ms, seq, err := parseID(id)
	if err != nil {
		return "", err
	}
	if seq == ^uint64(0) {
		return strconv.FormatUint(ms+1, 10) + "-0", nil
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10), nil
}

// lessID orders two well-formed stream ids (ids that do not parse sort first).
func lessID(a, b string) bool {
	am, as, _ := parseID(a)
	bm, bs, _ := parseID(b)
	return am < bm || am == bm && as < bs
}
