package bus

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestShapesEncodeAsMaps checks that a message whose content and metadata take a struct of
// wire_shapes.go encodes to the bytes its maps give, and that maps of another shape (a key
// more or less, a value of another type) keep their maps.
func TestShapesEncodeAsMaps(t *testing.T) {
	t.Parallel()
	odd := []string{"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\there\nnewline\x00\x1f\x7f",
		"é 日本語 🎉", "\u2028 \u2029", "bad \xff utf8", "lone \xed\xa0\x80 surrogate"}
	meta := Meta("e1", "w1")
	var typed, untyped []Message
	for _, s := range odd {
		for _, chain := range [][]string{nil, {}, {s}, {"a", s}} {
			q := NewQuery("node-"+s, "node-b", s, map[string]any{"chain": chain, "from_node": s, "to_node": "b"}, Meta(s, s), time.Minute)
			typed = append(typed, q, NewResponse(q, "node-b", s), NewErrorResponse(q, "node-b", s))
		}
	}
	q := NewQuery("a", "b", "why?", map[string]any{"chain": []string{"a"}, "from_node": "a", "to_node": "b"}, meta, 0)
	for _, c := range []map[string]any{
		nil, {},
		{"response": "x", "success": "true"}, {"response": 1.0, "success": true}, {"response": "x", "success": true, "more": 1},
		{"response": "x"}, {"error": 5, "response": "", "success": false}, {"error": "x", "response": "", "other": false},
		{"question": "q", "context": map[string]any{"chain": []any{"a"}, "from_node": "a", "to_node": "b"}},
		{"question": "q", "context": map[string]any{"chain": []string{"a"}, "from_node": "a", "to_node": "b", "k": "v"}},
		{"question": "q", "context": map[string]any{"chain": []string{"a"}, "from_node": "a"}},
		{"question": "q", "context": map[string]any{"chain": []string{"a"}, "from_node": 1, "to_node": "b"}},
		{"question": 1, "context": map[string]any{"chain": []string{"a"}, "from_node": "a", "to_node": "b"}},
		{"question": "q", "context": nil}, {"question": "q", "other": map[string]any{}},
	} {
		m := q
		m.Content = c
		untyped = append(untyped, m)
	}
	for _, md := range []map[string]any{nil, {}, {"execution_id": "e"}, {"execution_id": "e", "workflow_id": 1},
		{"execution_id": "e", "workflow_id": "w", "traceparent": "00-x"}, {"execution_id": "e", "other": "w"}} {
		m := q
		m.Metadata = md
		untyped = append(untyped, m)
	}
	for i, m := range append(typed, untyped...) {
		_, metaOK := metaShape(m.Metadata)
		_, answerOK := answerShape(m.Content)
		_, failureOK := failureShape(m.Content)
		_, queryOK := queryShape(m.Content)
		if shaped := metaOK && (answerOK || failureOK || queryOK); shaped != (i < len(typed)) {
			t.Errorf("content %v, metadata %v: shaped %v, want %v", m.Content, m.Metadata, shaped, i < len(typed))
		}
		w, err := m.encodeWire()
		if err != nil {
			t.Fatal(err)
		}
		got := bytes.Clone(w.bytes())
		w.release()
		b := wireBuffers.Get().(*wireBuffer)
		b.buf.Reset()
		h := wireHead{m: &m, ts: []byte(`"` + formatTime(m.Timestamp) + `"`), exp: jsonNull}
		if m.ExpiresAt != nil {
			h.exp = []byte(`"` + formatTime(*m.ExpiresAt) + `"`)
		}
		if err := encodeGeneric(b, h); err != nil {
			t.Fatal(err)
		}
		if want := b.bytes(); !bytes.Equal(got, want) {
			t.Errorf("encoded through the shapes:\n%s\nthrough the maps:\n%s", got, want)
		}
		b.release()
	}
}

// TestAppendQuotedTime checks the wire's times against time.Time.AppendFormat with the
// wire's layout.
func TestAppendQuotedTime(t *testing.T) {
	t.Parallel()
	times := []time.Time{
		{}, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 999, time.FixedZone("x", -5*3600)), time.Now(),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		times = append(times, time.Unix(r.Int64N(300e9)-100e9, r.Int64N(1e9)).In(time.FixedZone("y", r.IntN(50000)-25000)))
	}
	for _, tm := range times {
		got := string(appendQuotedTime([]byte("x"), tm))
		if want := `x"` + tm.UTC().Format(timeLayout) + `"`; got != want {
			t.Errorf("%v: got %s, want %s", tm, got, want)
		}
		if !strings.HasSuffix(got, `Z"`) {
			t.Errorf("%v: %s is not in UTC", tm, got)
		}
	}
}
