package bus

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// The wire codec is github.com/go-json-experiment/json (the encoding/json/v2 proposal): it
// encodes and decodes generic JSON (map[string]any, []any) on a fast path that does not go
// through reflection for every value, which makes it faster than encoding/json here.
// Every message is encoded once by its sender, into a pooled buffer, and decoded once by each
// receiver, on the path of every ask.

// wireMessage is a Message as it is decoded. Content and Metadata are typed any, not
// map[string]any, so that the library takes its fast path for them; decode checks that they
// hold objects.
type wireMessage struct {
	ID               string      `json:"id"`
	Type             MessageType `json:"type"`
	FromAgent        string      `json:"from_agent"`
	ToAgent          string      `json:"to_agent"`
	Subject          string      `json:"subject"`
	Content          any         `json:"content"`
	Priority         Priority    `json:"priority"`
	RequiresResponse bool        `json:"requires_response"`
	ReplyTo          *string     `json:"reply_to"`
	Timestamp        string      `json:"timestamp"`
	ExpiresAt        string      `json:"expires_at"`
	Metadata         any         `json:"metadata"`
}

// wireOut is a Message as it is encoded. C and M are the types of content and metadata: any
// (holding the maps of the Message) in general, and a struct for the content and metadata of
// an ask (see shapes.go), which the library encodes without iterating and sorting a map. The
// times are written already formatted (see appendTime).
type wireOut[C, M any] struct {
	ID               string         `json:"id"`
	Type             MessageType    `json:"type"`
	FromAgent        string         `json:"from_agent"`
	ToAgent          string         `json:"to_agent"`
	Subject          string         `json:"subject"`
	Content          C              `json:"content"`
	Priority         Priority       `json:"priority"`
	RequiresResponse bool           `json:"requires_response"`
	ReplyTo          *string        `json:"reply_to"`
	Timestamp        jsontext.Value `json:"timestamp"`
	ExpiresAt        jsontext.Value `json:"expires_at"`
	Metadata         M              `json:"metadata"`
}

var (
	// encodeOptions: invalid UTF-8 in a string becomes U+FFFD, as with encoding/json, instead of
	// failing the publish; a nil map or slice inside content or metadata is null, as with
	// encoding/json; map keys are unique already, so the duplicate check is skipped; keys are
	// sorted, so that the same message always encodes to the same bytes.
	encodeOptions = json.JoinOptions(
		jsontext.AllowInvalidUTF8(true),
		json.FormatNilMapAsNull(true),
		json.FormatNilSliceAsNull(true),
		jsontext.AllowDuplicateNames(true),
		json.Deterministic(true),
	)
	// numberOptions are encodeOptions for content or metadata that may hold an encoding/json
	// Number (see plainJSON). A custom marshaler makes the library look up the type of every
	// value, struct fields included, in its table of marshalers, about a tenth of an encode;
	// the messages of an ask hold no Number and do without it.
	numberOptions = json.JoinOptions(
		encodeOptions,
		json.WithMarshalers(json.MarshalToFunc(encodeNumber)),
	)
	// decodeOptions: field names match as encoding/json matches them (exactly, or else ignoring
	// case, but not ignoring "_"). JSON text is UTF-8 (RFC 8259): invalid UTF-8 or a lone
	// surrogate escape is an error, as is a name that appears twice in one object (parsers
	// disagree on which one wins). Both checks keep the library on its fast path for generic
	// values; allowing invalid UTF-8 costs about 10 % of a decode.
	decodeOptions = json.JoinOptions(
		json.MatchCaseInsensitiveNames(true),
		jsonv1.MatchCaseSensitiveDelimiter(true),
	)
)

// maxPlainDepth bounds how deep plainJSON looks; deeper values (and cycles) take numberOptions,
// whose encoder finds cycles.
const maxPlainDepth = 32

// plainJSON reports whether v holds only values whose JSON form the library writes without a
// custom marshaler: strings, booleans, numbers of Go's own types, and maps and slices of them.
// Anything else (an encoding/json Number, a struct or a typed map that might hold one) gets
// numberOptions.
func plainJSON(v any, depth int) bool {
	switch v := v.(type) {
	case nil, string, bool, float64, int, int64, []string:
		return true
	case map[string]any:
		if depth >= maxPlainDepth {
			return false
		}
		for _, e := range v {
			if !plainJSON(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		if depth >= maxPlainDepth {
			return false
		}
		for _, e := range v {
			if !plainJSON(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// encodeNumber writes an encoding/json Number (what a decoder with UseNumber gives, as the
// workflow package's does for variables and CALL arguments) as the JSON number it holds; the
// library would otherwise write it as a string, since it is a string type. A Number that is not
// a valid JSON number fails the encode.
func encodeNumber(enc *jsontext.Encoder, n stdjson.Number) error {
	if n == "" {
		return enc.WriteToken(jsontext.Int(0))
	}
	v := jsontext.Value(n)
	if !v.IsValid() || v.Kind() != '0' {
		return fmt.Errorf("json.Number %q is not a JSON number", string(n))
	}
	return enc.WriteValue(v)
}

// wireBuffer is the scratch space of one encode or decode. Buffers are kept in a pool: a
// message is encoded into one, and its bytes are used (published, or copied out) before it
// goes back; a payload is copied into one to be decoded. The wire structs are kept here too,
// not on the stack: the library takes them as an any, which would allocate one per message.
type wireBuffer struct {
	buf bytes.Buffer
	// times holds the two timestamps, formatted and quoted, while the message is encoded.
	times   []byte
	answer  wireOut[wireAnswer, wireMeta]
	failure wireOut[wireFailure, wireMeta]
	query   wireOut[wireQuery, wireMeta]
	generic wireOut[any, any]
	in      wireMessage
}

var wireBuffers = sync.Pool{New: func() any { return new(wireBuffer) }}

// maxPooledBuffer is the largest buffer put back in the pool, so that one huge message does not
// pin its memory.
const maxPooledBuffer = 64 << 10

func getWireBuffer() *wireBuffer {
	b := wireBuffers.Get().(*wireBuffer)
	b.buf.Reset()
	return b
}

// bytes returns the encoded message, valid until release.
func (w *wireBuffer) bytes() []byte { return w.buf.Bytes() }

func (w *wireBuffer) release() {
	if w.buf.Cap() <= maxPooledBuffer {
		wireBuffers.Put(w)
	}
}

// jsonNull is the JSON text of a null.
var jsonNull = jsontext.Value("null")

// encodeWire encodes m (see [Message]) into a buffer from the pool; the caller uses its
// bytes() and then calls release.
func (m *Message) encodeWire() (*wireBuffer, error) {
	b := getWireBuffer()
	// The times go in as JSON strings; they hold only digits and punctuation.
	b.times = appendQuotedTime(b.times[:0], m.Timestamp)
	h := wireHead{m: m, ts: b.times, exp: jsonNull}
	if m.ExpiresAt != nil {
		b.times = appendQuotedTime(b.times, *m.ExpiresAt)
		h.ts, h.exp = b.times[:len(h.ts)], b.times[len(h.ts):]
	}
	var err error
	meta, ok := metaShape(m.Metadata)
	if !ok {
		err = encodeGeneric(b, h)
	} else if c, ok := answerShape(m.Content); ok {
		err = encodeWith(b, &b.answer, h, c, meta, encodeOptions)
	} else if c, ok := failureShape(m.Content); ok {
		err = encodeWith(b, &b.failure, h, c, meta, encodeOptions)
	} else if c, ok := queryShape(m.Content); ok {
		err = encodeWith(b, &b.query, h, c, meta, encodeOptions)
	} else {
		err = encodeGeneric(b, h)
	}
	if err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

// wireHead is what encodeWith needs besides content and metadata: the message and its times
// as JSON.
type wireHead struct {
	m       *Message
	ts, exp jsontext.Value
}

// encodeGeneric encodes content and metadata as the maps they are (an empty object for nil).
func encodeGeneric(b *wireBuffer, h wireHead) error {
	var content, meta any = h.m.Content, h.m.Metadata
	if h.m.Content == nil {
		content = map[string]any{}
	}
	if h.m.Metadata == nil {
		meta = map[string]any{}
	}
	opts := encodeOptions
	if !plainJSON(content, 0) || !plainJSON(meta, 0) {
		opts = numberOptions
	}
	return encodeWith(b, &b.generic, h, content, meta, opts)
}

// encodeWith encodes h's message, with content and meta in place of its maps, through w.
func encodeWith[C, M any](b *wireBuffer, w *wireOut[C, M], h wireHead, content C, meta M, opts json.Options) error {
	m := h.m
	*w = wireOut[C, M]{
		ID:               m.ID,
		Type:             m.Type,
		FromAgent:        m.FromAgent,
		ToAgent:          m.ToAgent,
		Subject:          m.Subject,
		Content:          content,
		Priority:         m.Priority,
		RequiresResponse: m.RequiresResponse,
		Timestamp:        h.ts,
		ExpiresAt:        h.exp,
		Metadata:         meta,
	}
	if m.ReplyTo != nil && *m.ReplyTo != "" {
		w.ReplyTo = m.ReplyTo
	}
	err := json.MarshalWrite(&b.buf, w, opts)
	// The pool must not keep the message alive.
	*w = wireOut[C, M]{}
	return err
}

// decodeWire decodes a wire payload into m; m is left alone on error. Errors wrap
// [ErrMalformed].
func (m *Message) decodeWire(data []byte) error {
	b := getWireBuffer()
	defer b.release()
	return m.decodeWireWith(&b.in, data)
}

// decodeWireString is decodeWire for a payload as go-redis gives it; the payload is copied into
// a pooled buffer instead of a new slice.
func (m *Message) decodeWireString(payload string) error {
	b := getWireBuffer()
	defer b.release()
	b.buf.WriteString(payload)
	return m.decodeWireWith(&b.in, b.buf.Bytes())
}

// decodeWireWith decodes data into m through w.
func (m *Message) decodeWireWith(w *wireMessage, data []byte) error {
	// Unmarshal merges into a struct; and the pool must not keep the message alive.
	*w = wireMessage{}
	defer func() { *w = wireMessage{} }()
	if err := json.Unmarshal(data, w, decodeOptions); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	content, err := wireObject("content", w.Content)
	if err != nil {
		return err
	}
	meta, err := wireObject("metadata", w.Metadata)
	if err != nil {
		return err
	}
	ts, err := parseTime(w.Timestamp)
	if err != nil {
		return fmt.Errorf("%w: timestamp: %w", ErrMalformed, err)
	}
	var expiresAt *time.Time
	if w.ExpiresAt != "" {
		t, err := parseTime(w.ExpiresAt)
		if err != nil {
			return fmt.Errorf("%w: expires_at: %w", ErrMalformed, err)
		}
		expiresAt = &t
	}
	replyTo := w.ReplyTo
	if replyTo != nil && *replyTo == "" {
		replyTo = nil
	}
	*m = Message{
		ID:               w.ID,
		Type:             lowerType(w.Type),
		FromAgent:        w.FromAgent,
		ToAgent:          w.ToAgent,
		Subject:          w.Subject,
		Content:          content,
		Priority:         w.Priority,
		RequiresResponse: w.RequiresResponse,
		ReplyTo:          replyTo,
		Timestamp:        ts,
		ExpiresAt:        expiresAt,
		Metadata:         meta,
	}
	return nil
}

// lowerType returns t in lower case; a type that is lowercase already, as every type the bus
// sends is, is returned without a copy.
func lowerType(t MessageType) MessageType {
	for i := 0; i < len(t); i++ {
		if 'A' <= t[i] && t[i] <= 'Z' {
			return MessageType(strings.ToLower(string(t)))
		}
	}
	return t
}

// wireObject returns v as an object: nil (JSON null or absent) stays nil, anything else but an
// object is an error naming field.
func wireObject(field string, v any) (map[string]any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	}
	return nil, fmt.Errorf("%w: %s is a JSON %s, want an object", ErrMalformed, field, jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}
