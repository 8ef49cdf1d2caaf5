package bus_test

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
)

var protocolFields = []string{
	"content", "expires_at", "from_agent", "id", "metadata", "priority", "reply_to",
	"requires_response", "subject", "timestamp", "to_agent", "type",
}

var wireTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// decodeWire decodes a payload into a generic map and checks it has exactly the protocol's
// fields.
func decodeWire(t *testing.T, payload []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("payload is not a JSON object: %v\n%s", err, payload)
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, protocolFields) {
		t.Fatalf("fields = %v, want exactly %v\n%s", got, protocolFields, payload)
	}
	if ts, _ := m["timestamp"].(string); !wireTime.MatchString(ts) {
		t.Errorf("timestamp %q is not RFC 3339 UTC with microseconds", m["timestamp"])
	}
	if e := m["expires_at"]; e != nil {
		if s, _ := e.(string); !wireTime.MatchString(s) {
			t.Errorf("expires_at %q is neither null nor RFC 3339 UTC with microseconds", e)
		}
	}
	if _, ok := m["content"].(map[string]any); !ok {
		t.Errorf("content %v is not an object", m["content"])
	}
	if _, ok := m["metadata"].(map[string]any); !ok {
		t.Errorf("metadata %v is not an object", m["metadata"])
	}
	return m
}

func TestAgentIDAndChannel(t *testing.T) {
	t.Parallel()
	id := bus.AgentID("exec-1", "teacher")
	if id != "node-exec-1-teacher" {
		t.Errorf("AgentID = %q", id)
	}
	if c := bus.Channel(id); c != "agent:messages:node-exec-1-teacher" {
		t.Errorf("Channel = %q", c)
	}
	if bus.BroadcastChannel != "agent:messages:broadcast" || bus.ChannelPattern != "agent:messages:*" {
		t.Errorf("constants changed: %q %q", bus.BroadcastChannel, bus.ChannelPattern)
	}
}

func TestNewQueryID(t *testing.T) {
	t.Parallel()
	now := time.Unix(1732690000, 123456789)
	re := regexp.MustCompile(`^query:node-e-a:node-e-b:1732690000\.123456-[0-9a-f]{8}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := bus.NewQueryID("node-e-a", "node-e-b", now)
		if !re.MatchString(id) {
			t.Fatalf("NewQueryID = %q, does not match %s", id, re)
		}
		if seen[id] {
			t.Fatalf("NewQueryID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestMessageJSONRoundTrip(t *testing.T) {
	t.Parallel()
	from, to := bus.AgentID("e1", "student"), bus.AgentID("e1", "teacher")
	meta := bus.Meta("e1", "wf1")
	q := bus.NewQuery(from, to, "Why is the sky blue?", map[string]any{"topic": "physics"}, meta, time.Minute)
	r := bus.NewResponse(q, to, "Rayleigh scattering.")
	e := bus.NewErrorResponse(q, to, "model unavailable")
	bc := bus.NewBroadcast(from, "Session finished", []string{"ai-processor"}, meta, 0)
	bare := bus.Message{ID: "x", Type: bus.TypeNotification, FromAgent: from} // nil maps, zero time

	for _, tc := range []struct {
		name  string
		m     bus.Message
		check func(t *testing.T, w map[string]any)
	}{
		{"query", q, func(t *testing.T, w map[string]any) {
			if w["type"] != "query" || w["from_agent"] != from || w["to_agent"] != to ||
				w["priority"] != "high" || w["requires_response"] != true {
				t.Errorf("query header wrong: %v", w)
			}
			if w["reply_to"] != nil {
				t.Errorf("reply_to = %v, want null", w["reply_to"])
			}
			if w["expires_at"] == nil {
				t.Error("expires_at is null for a query with a ttl")
			}
			c := w["content"].(map[string]any)
			if c["question"] != "Why is the sky blue?" || !reflect.DeepEqual(c["context"], map[string]any{"topic": "physics"}) {
				t.Errorf("content = %v", c)
			}
			md := w["metadata"].(map[string]any)
			if md["execution_id"] != "e1" || md["workflow_id"] != "wf1" {
				t.Errorf("metadata = %v", md)
			}
			if !strings.HasPrefix(w["id"].(string), "query:"+from+":"+to+":") {
				t.Errorf("id = %v", w["id"])
			}
		}},
		{"response", r, func(t *testing.T, w map[string]any) {
			if w["type"] != "response" || w["reply_to"] != q.ID || w["to_agent"] != from || w["from_agent"] != to {
				t.Errorf("response header wrong: %v", w)
			}
			c := w["content"].(map[string]any)
			if c["response"] != "Rayleigh scattering." || c["success"] != true {
				t.Errorf("content = %v", c)
			}
			if w["expires_at"] != nil {
				t.Errorf("expires_at = %v, want null", w["expires_at"])
			}
		}},
		{"error response", e, func(t *testing.T, w map[string]any) {
			c := w["content"].(map[string]any)
			if w["type"] != "response" || c["success"] != false || c["error"] != "model unavailable" {
				t.Errorf("error response = %v", w)
			}
		}},
		{"broadcast", bc, func(t *testing.T, w map[string]any) {
			c := w["content"].(map[string]any)
			if w["type"] != "broadcast" || w["to_agent"] != "" || c["message"] != "Session finished" ||
				!reflect.DeepEqual(c["target_types"], []any{"ai-processor"}) || w["expires_at"] != nil {
				t.Errorf("broadcast = %v", w)
			}
		}},
		{"bare", bare, func(t *testing.T, w map[string]any) {
			if len(w["content"].(map[string]any)) != 0 || len(w["metadata"].(map[string]any)) != 0 {
				t.Errorf("nil maps should encode as {}: %v", w)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, err := json.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, decodeWire(t, payload))
			var back bus.Message
			if err := json.Unmarshal(payload, &back); err != nil {
				t.Fatal(err)
			}
			want := tc.m
			want.Timestamp = want.Timestamp.UTC()
			if want.Content == nil {
				want.Content = map[string]any{}
			}
			if want.Metadata == nil {
				want.Metadata = map[string]any{}
			}
			// JSON has one number type and arrays of any: compare through JSON again.
			again, _ := json.Marshal(back)
			if string(again) != string(payload) {
				t.Errorf("round trip changed the payload:\n%s\n%s", payload, again)
			}
			if !back.Timestamp.Equal(want.Timestamp) || back.ID != want.ID || back.ReplyToID() != want.ReplyToID() {
				t.Errorf("round trip = %+v, want %+v", back, want)
			}
		})
	}

	if got, err := r.Answer(); err != nil || got != "Rayleigh scattering." {
		t.Errorf("Answer = %q, %v", got, err)
	}
	if _, err := e.Answer(); !errors.Is(err, bus.ErrRemote) || !strings.Contains(err.Error(), "model unavailable") {
		t.Errorf("Answer of error response = %v, want ErrRemote with the text", err)
	}
	if _, err := q.Answer(); err == nil {
		t.Error("Answer of a query succeeded")
	}
	if got := bc.TargetTypes(); !slices.Equal(got, []string{"ai-processor"}) {
		t.Errorf("TargetTypes = %v", got)
	}
	if q.ExecutionID() != "e1" || q.WorkflowID() != "wf1" || q.Question() != "Why is the sky blue?" {
		t.Errorf("accessors: %q %q %q", q.ExecutionID(), q.WorkflowID(), q.Question())
	}
}

func TestMessageDecodeLenient(t *testing.T) {
	t.Parallel()
	// As a Python writer may send it: naive timestamp, reply_to "", no expires_at.
	payload := `{"id":"q1","type":"response","from_agent":"a","to_agent":"b","subject":"s",
		"content":{"response":"ok","success":true},"priority":"high","requires_response":false,
		"reply_to":"","timestamp":"2024-11-27T06:46:40.5","metadata":{}}`
	var m bus.Message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		t.Fatal(err)
	}
	if m.ReplyTo != nil || m.ExpiresAt != nil {
		t.Errorf("reply_to/expires_at = %v/%v, want nil", m.ReplyTo, m.ExpiresAt)
	}
	if want := time.Date(2024, 11, 27, 6, 46, 40, 5e8, time.UTC); !m.Timestamp.Equal(want) {
		t.Errorf("timestamp = %v, want %v", m.Timestamp, want)
	}

	for _, bad := range []string{
		`not json`, `[1,2]`, `{"id":5}`, `{"content":"text"}`, `{"timestamp":"yesterday"}`,
		`{"expires_at":"soon"}`, `{"metadata":[1]}`,
	} {
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Errorf("decoding %s succeeded", bad)
		}
	}
	if err := (bus.Message{}).Validate(); !errors.Is(err, bus.ErrMalformed) {
		t.Errorf("Validate of empty message = %v", err)
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()
	now := time.Now()
	past, future := now.Add(-time.Second), now.Add(time.Second)
	for _, tc := range []struct {
		exp  *time.Time
		want bool
	}{{nil, false}, {&past, true}, {&now, true}, {&future, false}} {
		if got := (bus.Message{ExpiresAt: tc.exp}).Expired(now); got != tc.want {
			t.Errorf("Expired(%v) = %v, want %v", tc.exp, got, tc.want)
		}
	}
	q := bus.NewQuery("a", "b", "?", nil, nil, time.Minute)
	if q.Expired(time.Now()) || !q.Expired(time.Now().Add(2*time.Minute)) {
		t.Error("NewQuery ttl not applied")
	}
	if bus.NewQuery("a", "b", "?", nil, nil, 0).ExpiresAt != nil {
		t.Error("ttl 0 should mean no expiry")
	}
}
