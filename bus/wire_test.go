package bus_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
)

// generic is v as encoding/json reads it back into an any: numbers become float64, []string
// becomes []any, invalid UTF-8 becomes U+FFFD.
func generic(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	if v == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

var oddStrings = []string{
	"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\there\nnewline\r\x00\x01\x1f\x7f",
	"\b\f", "é ü 日本語 🎉", "\u2028 and \u2029", "/slash", "a\u0000b",
}

// TestWireRoundTrip checks that what a sender encodes, a receiver decodes to the same message:
// times in UTC at microsecond precision, nil maps as empty ones, JSON's own number and array
// types.
func TestWireRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 8, 0, 0, 123456789, time.FixedZone("x", 3600))
	exp := now.Add(time.Minute)
	reply, empty := "query:a:b:1-2", ""
	base := bus.Message{ID: "id", Type: bus.TypeQuery, FromAgent: "a", ToAgent: "b", Subject: "s",
		Priority: bus.PriorityHigh, Timestamp: now, Metadata: bus.Meta("e", "w")}
	var cases []bus.Message
	for _, s := range oddStrings {
		m := base
		m.ID, m.FromAgent, m.ToAgent, m.Subject, m.Type, m.Priority = s, s, s, s, bus.MessageType(s), bus.Priority(s)
		m.Content = map[string]any{s: s, "k" + s: []string{s, s}, "n": []any{s, nil, true}}
		cases = append(cases, m)
	}
	deep := map[string]any{"leaf": "x"}
	for i := range 200 {
		if i%2 == 0 {
			deep = map[string]any{"d": deep}
		} else {
			deep = map[string]any{"l": []any{deep}}
		}
	}
	for _, c := range []map[string]any{
		nil, {}, {"response": "ok", "success": true},
		{"n": 1.0, "f": 3.25, "big": 1e21, "small": 1e-7, "neg": -0.5, "i": 7, "u": uint8(3)},
		{"nested": map[string]any{"z": 1, "a": map[string]any{}, "nilmap": map[string]any(nil)}},
		{"nils": []any(nil), "strs": []string(nil), "empty": []any{}, "emptys": []string{}},
		{"deep": deep},
	} {
		m := base
		m.Content = c
		cases = append(cases, m)
	}
	cases = append(cases,
		bus.Message{},
		bus.Message{ID: "x", ReplyTo: &reply, ExpiresAt: &exp, RequiresResponse: true},
		bus.Message{ID: "x", ReplyTo: &empty},
	)
	q := bus.NewQuery("a", "b", "why?", map[string]any{"chain": []string{"a"}}, bus.Meta("e", "w"), time.Minute)
	cases = append(cases, q, bus.NewResponse(q, "b", "because"), bus.NewErrorResponse(q, "b", "boom"),
		bus.NewBroadcast("a", "hi", []string{"t"}, bus.Meta("e", "w"), 0))

	for _, m := range cases {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		var got bus.Message
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		want := m
		want.Timestamp = m.Timestamp.UTC().Truncate(time.Microsecond)
		if m.ExpiresAt != nil {
			e := m.ExpiresAt.UTC().Truncate(time.Microsecond)
			want.ExpiresAt = &e
		}
		if m.ReplyTo != nil && *m.ReplyTo == "" {
			want.ReplyTo = nil
		}
		want.Content, want.Metadata = generic(t, m.Content), generic(t, m.Metadata)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", data, got, want)
		}
		again, err := json.Marshal(got)
		if err != nil || string(again) != string(data) {
			t.Errorf("encoding the decoded message gives other bytes (%v):\n%s\n%s", err, data, again)
		}
	}
}

// TestWireEncode checks what goes on the wire beyond the round trip: the same bytes each time
// with keys sorted, text as it is (no HTML escaping), invalid UTF-8 replaced, and an error,
// not a panic, for values JSON cannot hold.
func TestWireEncode(t *testing.T) {
	t.Parallel()
	m := bus.Message{ID: "<b>&</b>", Type: bus.TypeNotification, FromAgent: "bad \xff utf8",
		Content: map[string]any{"z": 1, "a": 2, "m": map[string]any{"y": 1, "b": 2}}}
	first, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if again, _ := m.MarshalJSON(); string(again) != string(first) {
			t.Fatalf("two encodings differ:\n%s\n%s", first, again)
		}
	}
	for _, want := range []string{`"id":"<b>&</b>"`, `"from_agent":"bad \ufffd utf8"`, `"content":{"a":2,"m":{"b":2,"y":1},"z":1}`} {
		if !strings.Contains(string(first), want) && !strings.Contains(string(first), strings.ReplaceAll(want, `\ufffd`, "\ufffd")) {
			t.Errorf("payload lacks %s:\n%s", want, first)
		}
	}
	if !json.Valid(first) {
		t.Errorf("payload is not valid JSON: %s", first)
	}

	// A json.Number, as a decoder with UseNumber gives, is written as the number it holds.
	nums := bus.Message{ID: "n", Type: bus.TypeQuery, FromAgent: "a",
		Content: map[string]any{"n": json.Number("1.5"), "zero": json.Number(""), "ctx": map[string]any{"k": json.Number("1")}}}
	data, err := nums.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `"content":{"ctx":{"k":1},"n":1.5,"zero":0}`; !strings.Contains(string(data), want) {
		t.Errorf("numbers: payload lacks %s:\n%s", want, data)
	}
	// Wherever it is: in a list, in a typed map or struct, below where the encoder looks for one.
	deepNum := any(json.Number("4"))
	for range 40 {
		deepNum = map[string]any{"d": deepNum}
	}
	nums.Content = map[string]any{"l": []any{[]any{json.Number("2")}}, "typed": map[string]json.Number{"k": "3"},
		"s": struct{ N json.Number }{"5"}, "deep": deepNum}
	if data, err = nums.MarshalJSON(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"l":[[2]]`, `"typed":{"k":3}`, `"s":{"N":5}`, `{"d":4}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("numbers: payload lacks %s:\n%s", want, data)
		}
	}
	for _, bad := range []string{"1e", `{"a":1}`, `"x"`, "true", "null", "1 2"} {
		nums.Content = map[string]any{"n": json.Number(bad)}
		if data, err := nums.MarshalJSON(); err == nil {
			t.Errorf("json.Number %q, not a number, was encoded: %s", bad, data)
		}
	}

	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, v := range map[string]any{"NaN": math.NaN(), "Inf": math.Inf(1), "func": func() {}, "chan": make(chan int), "cycle": cyclic} {
		bad := bus.Message{ID: "x", Type: bus.TypeQuery, FromAgent: "a", Content: map[string]any{"v": v}}
		if _, err := bad.MarshalJSON(); err == nil || !strings.Contains(err.Error(), "encode message x") {
			t.Errorf("encode content %s: error %v, want one naming the message", name, err)
		}
	}
}

// TestWireDecodeMalformed checks that input that is not one protocol message is refused with
// an error wrapping bus.ErrMalformed (naming the field where there is one), and that the
// message decoded into is left alone.
func TestWireDecodeMalformed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, mention string }{
		{``, ""}, {` `, ""}, {`not json`, ""}, {`{`, ""}, {`}`, ""}, {`{"id":"x"`, ""},
		{`{"id":"x",}`, ""}, {`{,}`, ""}, {`{"id" "x"}`, ""}, {`{"id":"x"}}`, ""},
		{`{"id":"x"} x`, ""}, {`{"id":"x"}{}`, ""},
		{`[]`, ""}, {`[1,2]`, ""}, {`"s"`, ""}, {`1`, ""}, {`true`, ""},
		{`{"id":5}`, "id"}, {`{"type":[]}`, "type"}, {`{"reply_to":5}`, "reply_to"},
		{`{"requires_response":"true"}`, "requires_response"}, {`{"requires_response":1}`, "requires_response"},
		{`{"requires_response":tru}`, ""},
		{`{"content":"text"}`, "content"}, {`{"content":[]}`, "content"}, {`{"metadata":[1]}`, "metadata"},
		{`{"metadata":5}`, "metadata"},
		{`{"timestamp":"yesterday"}`, "timestamp"}, {`{"timestamp":1}`, "timestamp"},
		{`{"expires_at":"soon"}`, "expires_at"}, {`{"expires_at":{}}`, "expires_at"},
		{`{"content":{"n":1e400}}`, ""}, {`{"content":{"n":01}}`, ""}, {`{"content":{"n":.5}}`, ""},
		{`{"content":{"n":+1}}`, ""}, {`{"unknown":bad}`, ""}, {`{"unknown":"\x"}`, ""},
		{`{"id":"\u12g4"}`, ""}, {`{"id":"\a"}`, ""}, {"{\"id\":\"tab\there\"}", ""}, {`{"id":"abc`, ""},
		// JSON text is UTF-8.
		{`{"id":"\ud83c"}`, "id"}, {"{\"id\":\"ok\xff\"}", ""}, {"{\"content\":{\"\xff\":1}}", ""},
		// A name twice in one object: parsers disagree on which one wins, so neither does.
		{`{"id":"a","id":"b"}`, "id"}, {`{"ID":"x","id":"y"}`, ""}, {`{"content":{"a":1,"a":2}}`, ""},
		{`{"content":{"deep":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `}}`, ""},
	} {
		m := bus.Message{ID: "untouched"}
		err := m.UnmarshalJSON([]byte(tc.in))
		if !errors.Is(err, bus.ErrMalformed) {
			t.Errorf("decode %.60q: error %v, want one wrapping ErrMalformed", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("decode %q: error %q does not name %s", tc.in, err, tc.mention)
		}
		if m.ID != "untouched" {
			t.Errorf("decode %.60q failed but changed the message to %+v", tc.in, m)
		}
		// Through encoding/json, as the dashboard's bus monitor decodes.
		if err := json.Unmarshal([]byte(tc.in), &m); err == nil {
			t.Errorf("json.Unmarshal %.60q succeeded", tc.in)
		}
	}
}

// TestWireDecodeLenient checks what decoding accepts from other writers: names in another case
// (as encoding/json matches them), unknown fields, null, escapes, zone-less or offset
// timestamps.
func TestWireDecodeLenient(t *testing.T) {
	t.Parallel()
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	exp := ts("2024-11-27T06:46:40Z")
	reply := "q1"
	for _, tc := range []struct {
		in   string
		want bus.Message
	}{
		{`null`, bus.Message{}},
		{` {} `, bus.Message{}},
		{" \t\n{\"id\":\"x\"}\r\n", bus.Message{ID: "x"}},
		{`{"ID":"x","Type":"query","FROM_AGENT":"a","Reply_To":"q1","CONTENT":{"K":1}}`,
			bus.Message{ID: "x", Type: bus.TypeQuery, FromAgent: "a", ReplyTo: &reply, Content: map[string]any{"K": 1.0}}},
		// encoding/json does not ignore "_" when it matches names, so neither does the bus.
		{`{"id":"x","fromagent":"a","FromAgent":"b"}`, bus.Message{ID: "x"}},
		{`{"id":"x","unknown":1e400,"more":[1,{"y":[null,true]}],"content":{}}`,
			bus.Message{ID: "x", Content: map[string]any{}}},
		{`{"reply_to":""}`, bus.Message{}}, {`{"reply_to":null}`, bus.Message{}},
		{`{"expires_at":""}`, bus.Message{}}, {`{"expires_at":null}`, bus.Message{}},
		{`{"expires_at":"2024-11-27T06:46:40Z"}`, bus.Message{ExpiresAt: &exp}},
		{`{"timestamp":"2024-11-27T06:46:40.5"}`, bus.Message{Timestamp: ts("2024-11-27T06:46:40.5Z")}},
		{`{"timestamp":"2024-11-27T06:46:40.123+02:00"}`, bus.Message{Timestamp: ts("2024-11-27T04:46:40.123Z")}},
		{`{"timestamp":null,"requires_response":null,"content":null,"metadata":null,"id":null}`, bus.Message{}},
		{`{"requires_response":true}`, bus.Message{RequiresResponse: true}},
		{`{"id":"\"\\\/\b\f\n\r\t\u00e9\u0041"}`, bus.Message{ID: "\"\\/\b\f\n\r\té" + "A"}},
		{`{"id":"\ud83c\udf89 \u003cb\u003e"}`, bus.Message{ID: "🎉 <b>"}},
		{`{"content":{"a":{"b":[1,"x",null,true,false,{"c":-0.5e-3}]},"":""}}`,
			bus.Message{Content: map[string]any{"a": map[string]any{"b": []any{1.0, "x", nil, true, false, map[string]any{"c": -0.5e-3}}}, "": ""}}},
	} {
		m := bus.Message{ID: "stale", Subject: "stale"}
		if err := m.UnmarshalJSON([]byte(tc.in)); err != nil {
			t.Errorf("decode %s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(m, tc.want) {
			t.Errorf("decode %s:\n got %#v\nwant %#v", tc.in, m, tc.want)
		}
	}

	deep := `{"content":{"deep":` + strings.Repeat(`[`, 9998) + strings.Repeat(`]`, 9998) + `}}`
	var m bus.Message
	if err := m.UnmarshalJSON([]byte(deep)); err != nil {
		t.Errorf("decode 9,998 nested arrays: %v", err)
	}
}

// TestWireReadsEncodingJSON checks that a message written by encoding/json, the way the
// original service and tools built on it write one (HTML-escaped, fields in any order), decodes.
func TestWireReadsEncodingJSON(t *testing.T) {
	t.Parallel()
	in := map[string]any{
		"metadata": map[string]any{"execution_id": "e1", "workflow_id": "w1"},
		"type":     "query", "id": "query:a:b:1", "from_agent": "a", "to_agent": "b", "subject": "query",
		"content":  map[string]any{"question": "<is> a & b?", "context": map[string]any{}},
		"priority": "high", "requires_response": true, "reply_to": nil,
		"timestamp": "2024-11-27T06:46:40.123456", "expires_at": nil,
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var m bus.Message
	if err := m.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.Question() != "<is> a & b?" || m.ExecutionID() != "e1" || m.WorkflowID() != "w1" || !m.RequiresResponse ||
		m.Timestamp != time.Date(2024, 11, 27, 6, 46, 40, 123456000, time.UTC) {
		t.Errorf("decoded %+v", m)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range in {
			if !yield(k) {
				return
			}
		}
	})
	if len(keys) != 12 {
		t.Fatalf("test payload has %d fields", len(keys))
	}
}

// FuzzWireDecode checks that any input either fails with ErrMalformed or decodes to a message
// that encodes and decodes again to itself (at the wire's microsecond precision).
func FuzzWireDecode(f *testing.F) {
	q := bus.NewQuery("a", "b", "why?", map[string]any{"chain": []string{"a"}, "n": 2.5}, bus.Meta("e", "w"), time.Minute)
	good, _ := q.MarshalJSON()
	resp, _ := bus.NewResponse(q, "b", "because").MarshalJSON()
	for _, s := range []string{string(good), string(resp), `{"ID":"\ud83c\udf89","content":{"a":[1e5,null]}}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m bus.Message
		if err := m.UnmarshalJSON(data); err != nil {
			if !errors.Is(err, bus.ErrMalformed) {
				t.Fatalf("decode %q: error %v does not wrap ErrMalformed", data, err)
			}
			return
		}
		again, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("re-encode %q: %v", data, err)
		}
		var back bus.Message
		if err := back.UnmarshalJSON(again); err != nil {
			t.Fatalf("decode the re-encoded %s: %v", again, err)
		}
		if m.Content == nil {
			m.Content = map[string]any{}
		}
		if m.Metadata == nil {
			m.Metadata = map[string]any{}
		}
		// The wire carries microseconds; a reader accepts finer fractions.
		m.Timestamp = m.Timestamp.Truncate(time.Microsecond)
		if m.ExpiresAt != nil {
			e := m.ExpiresAt.Truncate(time.Microsecond)
			m.ExpiresAt = &e
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip of %q:\n got %#v\nwant %#v", data, back, m)
		}
	})
}

// TestWireDecodeStartsAfresh checks that a message decodes to what its payload says alone:
// the decoder's pooled state keeps nothing of the message decoded before it.
func TestWireDecodeStartsAfresh(t *testing.T) {
	t.Parallel()
	q := bus.NewQuery("a", "b", "why?", map[string]any{"k": "v"}, bus.Meta("e", "w"), time.Minute)
	full, err := bus.NewResponse(q, "b", "because").MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		var m bus.Message
		if err := m.UnmarshalJSON(full); err != nil || m.ReplyToID() != q.ID {
			t.Fatalf("decode %s: %+v, %v", full, m, err)
		}
		var bare bus.Message
		if err := bare.UnmarshalJSON([]byte(`{"id":"x"}`)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(bare, bus.Message{ID: "x"}) {
			t.Fatalf(`decode {"id":"x"} after %s: %#v`, full, bare)
		}
	}
}
