package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The hand-written wire codec must behave exactly as the encoding/json code it replaced, which
// is kept here as the reference: refEncode and refDecode.

type refWire struct {
	ID               string         `json:"id"`
	Type             MessageType    `json:"type"`
	FromAgent        string         `json:"from_agent"`
	ToAgent          string         `json:"to_agent"`
	Subject          string         `json:"subject"`
	Content          map[string]any `json:"content"`
	Priority         Priority       `json:"priority"`
	RequiresResponse bool           `json:"requires_response"`
	ReplyTo          *string        `json:"reply_to"`
	Timestamp        string         `json:"timestamp"`
	ExpiresAt        *string        `json:"expires_at"`
	Metadata         map[string]any `json:"metadata"`
}

func refEncode(m Message) ([]byte, error) {
	w := refWire{
		ID: m.ID, Type: m.Type, FromAgent: m.FromAgent, ToAgent: m.ToAgent, Subject: m.Subject,
		Content: m.Content, Priority: m.Priority, RequiresResponse: m.RequiresResponse,
		Timestamp: formatTime(m.Timestamp), Metadata: m.Metadata,
	}
	if w.Content == nil {
		w.Content = map[string]any{}
	}
	if w.Metadata == nil {
		w.Metadata = map[string]any{}
	}
	if m.ReplyTo != nil && *m.ReplyTo != "" {
		w.ReplyTo = m.ReplyTo
	}
	if m.ExpiresAt != nil {
		s := formatTime(*m.ExpiresAt)
		w.ExpiresAt = &s
	}
	return json.Marshal(w)
}

func refDecode(data []byte) (Message, error) {
	var w refWire
	if err := json.Unmarshal(data, &w); err != nil {
		return Message{}, err
	}
	ts, err := parseTime(w.Timestamp)
	if err != nil {
		return Message{}, err
	}
	var exp *time.Time
	if w.ExpiresAt != nil && *w.ExpiresAt != "" {
		t, err := parseTime(*w.ExpiresAt)
		if err != nil {
			return Message{}, err
		}
		exp = &t
	}
	replyTo := w.ReplyTo
	if replyTo != nil && *replyTo == "" {
		replyTo = nil
	}
	return Message{
		ID: w.ID, Type: w.Type, FromAgent: w.FromAgent, ToAgent: w.ToAgent, Subject: w.Subject,
		Content: w.Content, Priority: w.Priority, RequiresResponse: w.RequiresResponse,
		ReplyTo: replyTo, Timestamp: ts, ExpiresAt: exp, Metadata: w.Metadata,
	}, nil
}

// checkDecode fails t when decoding data gives another result than the reference.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	want, werr := refDecode(data)
	var got Message
	gerr := got.UnmarshalJSON(data)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("decode %q: error %v, encoding/json's %v", data, gerr, werr)
	}
	if gerr != nil {
		if !errors.Is(gerr, ErrMalformed) {
			t.Fatalf("decode %q: error %v does not wrap ErrMalformed", data, gerr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decode %q:\n got %#v\nwant %#v", data, got, want)
	}
}

// checkEncode fails t when encoding m gives other bytes (or another error) than the reference.
func checkEncode(t *testing.T, m Message) {
	t.Helper()
	want, werr := refEncode(m)
	got, gerr := m.MarshalJSON()
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("encode %#v: error %v, encoding/json's %v", m, gerr, werr)
	}
	if string(got) != string(want) {
		t.Fatalf("encode:\n got %s\nwant %s", got, want)
	}
}

var oddStrings = []string{
	"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\there\nnewline\r\x00\x01\x1f\x7f",
	"\b\f", "é ü 日本語 🎉", "\u2028 and \u2029", "bad utf8 \xff\xfe end", "\xc3", "trailing \xe2\x82",
	"/slash", "\u00e9", "a\u0000b",
}

func TestWireEncodeMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 123456789, time.FixedZone("x", 3600))
	exp := now.Add(time.Minute)
	reply := "query:a:b:1-2"
	empty := ""
	type custom struct{ A int }
	base := Message{ID: "id", Type: TypeQuery, FromAgent: "a", ToAgent: "b", Subject: "s",
		Priority: PriorityHigh, Timestamp: now, Metadata: Meta("e", "w")}
	var cases []Message
	for _, s := range oddStrings {
		m := base
		m.ID, m.FromAgent, m.Subject, m.Type = s, s, s, MessageType(s)
		m.Content = map[string]any{s: s, "k" + s: []string{s, s}, "n": []any{s, nil, true}}
		cases = append(cases, m)
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
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
		{"n": 1.0, "f": 3.25, "big": 1e21, "small": 1e-7, "neg": -0.0, "i": 7, "u": uint8(3)},
		{"nested": map[string]any{"z": 1, "a": map[string]any{}, "nilmap": map[string]any(nil)}},
		{"nils": []any(nil), "strs": []string(nil), "empty": []any{}, "emptys": []string{}},
		{"time": now, "custom": custom{3}, "ptr": &custom{4}, "raw": json.RawMessage(`{ "a" : 1 }`)},
		{"deep": deep},
		{"nan": math.NaN()}, {"cycle": cyclic}, {"fn": func() {}},
	} {
		m := base
		m.Content = c
		cases = append(cases, m)
	}
	for _, m := range []Message{
		{}, {ID: "x", ReplyTo: &reply, ExpiresAt: &exp, RequiresResponse: true},
		{ID: "x", ReplyTo: &empty}, {ID: "y", Metadata: map[string]any{}},
	} {
		cases = append(cases, m)
	}
	q := NewQuery("a", "b", "why?", map[string]any{"chain": []string{"a"}}, Meta("e", "w"), time.Minute)
	cases = append(cases, q, NewResponse(q, "b", "because"), NewErrorResponse(q, "b", "boom"),
		NewBroadcast("a", "hi", []string{"t"}, Meta("e", "w"), 0))
	for i, m := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkEncode(t, m) })
	}
}

func TestWireDecodeMatchesEncodingJSON(t *testing.T) {
	q := NewQuery("a", "b", "why <is> the \"sky\" blue?\n", map[string]any{"chain": []string{"a"}, "n": 2.5},
		Meta("e", "w"), time.Minute)
	good, _ := q.MarshalJSON()
	resp, _ := NewResponse(q, "b", "é \u2028").MarshalJSON()
	inputs := []string{
		string(good), string(resp), " \t\n\r" + string(good) + " \n",
		`null`, ` null `, `{}`, `[]`, `[1,2]`, `"s"`, `1`, `true`, ``, ` `, `{`, `}`, `{"id":"x"`,
		`{"id":"x"}`, `{"id":"x",}`, `{,}`, `{"id" "x"}`, `{"id":"x"}}`, `{"id":"x"} x`, `{"id":"x"}{}`,
		`{"id":5}`, `{"id":null}`, `{"id":"a","id":"b"}`, `{"ID":"x","Id":"y"}`, `{"iD":"x","id":"y"}`,
		`{"id":"x","id":null}`, `{"FROM_AGENT":"f","Type":"query"}`, `{"from_agent":"\u212a"}`,
		`{"reply_to":""}`, `{"reply_to":null}`, `{"reply_to":"q"}`, `{"reply_to":5}`, `{"reply_to":"a","reply_to":null}`,
		`{"expires_at":null}`, `{"expires_at":""}`, `{"expires_at":"soon"}`, `{"expires_at":"2024-11-27T06:46:40Z"}`,
		`{"timestamp":"2024-11-27T06:46:40.5"}`, `{"timestamp":"2024-11-27T06:46:40.123+02:00"}`,
		`{"timestamp":"yesterday"}`, `{"timestamp":null}`, `{"timestamp":1}`,
		`{"requires_response":true}`, `{"requires_response":false}`, `{"requires_response":null}`,
		`{"requires_response":"true"}`, `{"requires_response":1}`, `{"requires_response":tru}`,
		`{"content":"text"}`, `{"content":null}`, `{"content":{}}`, `{"content":[]}`, `{"metadata":[1]}`,
		`{"content":{"a":1},"content":{"b":2}}`, `{"content":{"a":1},"content":null}`,
		`{"content":{"a":{"b":[1,"x",null,true,false,{"c":-0.5e-3}]}}}`,
		`{"content":{"n":1e400}}`, `{"unknown":1e400}`, `{"unknown":[1e400,{"x":1e999}]}`,
		`{"unknown":{"a":[1,2,{}]},"id":"x"}`, `{"unknown":bad}`, `{"unknown":"\x"}`,
		`{"content":{"n":01}}`, `{"content":{"n":-}}`, `{"content":{"n":1.}}`, `{"content":{"n":.5}}`,
		`{"content":{"n":1e}}`, `{"content":{"n":1e+}}`, `{"content":{"n":+1}}`, `{"content":{"n":-0}}`,
		`{"content":{"n":1E+2}}`, `{"content":{"n":123456789012345678901234567890}}`,
		`{"id":"\"\\\/\b\f\n\r\t"}`, `{"id":"\u00e9\u0041"}`, `{"id":"\ud83c\udf89"}`, `{"id":"\ud83c"}`,
		`{"id":"\udf89\ud83c"}`, `{"id":"\ud83c\u0041"}`, `{"id":"\ud83cx"}`, `{"id":"\u12"}`, `{"id":"\u12g4"}`,
		`{"id":"\'"}`, `{"id":"\a"}`, "{\"id\":\"tab\there\"}", "{\"id\":\"\xff\xfe\"}", "{\"id\":\"ok\xc3\"}",
		"{\"id\":\"\xe2\x80\xa8\"}", `{"id":"abc`, `{"id":"abc\`, `{"i\u0064":"x"}`, `{"\u0069d":"y"}`,
		"{\"content\":{\"\xff\":\"\xff\"}}", `{"content":{"a":1,"a":2}}`, `{"content":{"":""}}`,
		`{"id":"x","type":"response","from_agent":"a","reply_to":"q","content":{"response":"r","success":true}}`,
		`{"content":{"deep":` + strings.Repeat(`[`, 9998) + strings.Repeat(`]`, 9998) + `}}`,
		`{"content":{"deep":` + strings.Repeat(`[`, 9999) + strings.Repeat(`]`, 9999) + `}}`,
		`{"content":{"deep":` + strings.Repeat(`{"a":`, 9998) + `1` + strings.Repeat(`}`, 9998) + `}}`,
		`{"content":{"deep":` + strings.Repeat(`{"a":`, 9999) + `1` + strings.Repeat(`}`, 9999) + `}}`,
		strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000),
		strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001),
	}
	for _, s := range oddStrings {
		b, _ := json.Marshal(s)
		inputs = append(inputs, `{"id":`+string(b)+`,"content":{`+string(b)+`:`+string(b)+`}}`)
	}
	for i, in := range inputs {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkDecode(t, []byte(in)) })
	}
}

func FuzzWireDecode(f *testing.F) {
	q := NewQuery("a", "b", "why?", map[string]any{"chain": []string{"a"}, "n": 2.5}, Meta("e", "w"), time.Minute)
	good, _ := q.MarshalJSON()
	resp, _ := NewResponse(q, "b", "because").MarshalJSON()
	for _, s := range []string{string(good), string(resp), `{"ID":"\ud83c","content":{"a":[1e5,null]}}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

func FuzzWireEncode(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m := Message{ID: a, Type: MessageType(b), FromAgent: a, ReplyTo: &b,
			Content: map[string]any{a: b, b: []any{a, map[string]any{b: a}}}, Metadata: map[string]any{a: []string{b}}}
		checkEncode(t, m)
		data, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, data)
	})
}

// BenchmarkWire is one query and one response encoded and decoded, as one ask needs, by the
// wire codec and by the encoding/json code it replaced.
func BenchmarkWire(b *testing.B) {
	q := NewQuery("node-e-asker", "node-e-answerer", "Question 1: what is the next step?",
		map[string]any{"from_node": "asker", "to_node": "answerer", "chain": []string{"asker"}},
		Meta("e", "w"), 30*time.Second)
	r := NewResponse(q, "node-e-answerer", "An answer, in one sentence.")
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, m := range []Message{q, r} {
				data, _ := m.MarshalJSON()
				var back Message
				if err := back.decodeWire(string(data)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, m := range []Message{q, r} {
				data, _ := refEncode(m)
				if _, err := refDecode(data); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
