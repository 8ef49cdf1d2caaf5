package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The wire codec. Every message is encoded once by its sender and decoded once by every
// receiver, all on the path of an ask, so the codec is written out by hand instead of going
// through encoding/json's reflection: it produces byte for byte what encoding/json produced for
// the wire struct (HTML-safe escaping, sorted map keys), and accepts and rejects exactly what
// encoding/json accepted and rejected, with the same results. Values it has no fast path for
// (numbers, types other than the JSON ones) are handed to encoding/json.

// maxDepth is encoding/json's nesting limit, which decoding keeps so that it rejects what
// encoding/json rejected; encoding hands deeper values to encoding/json, which detects cycles.
const maxDepth = 10000

// maxFastEncodeDepth bounds the hand-written encoder's recursion; encoding/json takes over
// below it (a map that contains itself is found there, after 1000 levels, instead of
// overflowing the stack here).
const maxFastEncodeDepth = 64

// appendWire appends the wire encoding of m to dst (see [Message]).
func (m *Message) appendWire(dst []byte) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, m.ID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, string(m.Type))
	dst = append(dst, `,"from_agent":`...)
	dst = appendString(dst, m.FromAgent)
	dst = append(dst, `,"to_agent":`...)
	dst = appendString(dst, m.ToAgent)
	dst = append(dst, `,"subject":`...)
	dst = appendString(dst, m.Subject)
	dst = append(dst, `,"content":`...)
	var err error
	if m.Content == nil {
		dst = append(dst, "{}"...)
	} else if dst, err = appendObject(dst, m.Content, 0); err != nil {
		return nil, err
	}
	dst = append(dst, `,"priority":`...)
	dst = appendString(dst, string(m.Priority))
	dst = append(dst, `,"requires_response":`...)
	dst = strconv.AppendBool(dst, m.RequiresResponse)
	dst = append(dst, `,"reply_to":`...)
	if m.ReplyTo != nil && *m.ReplyTo != "" {
		dst = appendString(dst, *m.ReplyTo)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"timestamp":"`...)
	dst = m.Timestamp.UTC().AppendFormat(dst, timeLayout)
	dst = append(dst, `","expires_at":`...)
	if m.ExpiresAt != nil {
		dst = append(dst, '"')
		dst = m.ExpiresAt.UTC().AppendFormat(dst, timeLayout)
		dst = append(dst, '"')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"metadata":`...)
	if m.Metadata == nil {
		dst = append(dst, "{}"...)
	} else if dst, err = appendObject(dst, m.Metadata, 0); err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// wireSize estimates the encoded size of m, so that encoding allocates once.
func (m *Message) wireSize() int {
	n := 240 + len(m.ID) + len(m.FromAgent) + len(m.ToAgent) + len(m.Subject)
	if m.ReplyTo != nil {
		n += len(*m.ReplyTo)
	}
	for _, v := range m.Content {
		if s, ok := v.(string); ok {
			n += len(s)
		} else {
			n += 32
		}
	}
	return n + 24*len(m.Content) + 48*len(m.Metadata)
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth < maxFastEncodeDepth {
		switch v := v.(type) {
		case nil:
			return append(dst, "null"...), nil
		case string:
			return appendString(dst, v), nil
		case bool:
			return strconv.AppendBool(dst, v), nil
		case map[string]any:
			if v == nil {
				return append(dst, "null"...), nil
			}
			return appendObject(dst, v, depth+1)
		case []any:
			if v == nil {
				return append(dst, "null"...), nil
			}
			dst = append(dst, '[')
			for i, e := range v {
				if i > 0 {
					dst = append(dst, ',')
				}
				var err error
				if dst, err = appendValue(dst, e, depth+1); err != nil {
					return nil, err
				}
			}
			return append(dst, ']'), nil
		case []string:
			if v == nil {
				return append(dst, "null"...), nil
			}
			dst = append(dst, '[')
			for i, e := range v {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, e)
			}
			return append(dst, ']'), nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// appendObject encodes a map as encoding/json does: keys sorted.
func appendObject(dst []byte, m map[string]any, depth int) ([]byte, error) {
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, m[k], depth); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping on: <, > and & become \u003c,
// \u003e and \u0026, invalid UTF-8 becomes \ufffd, U+2028 and U+2029 are escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// errWireType is returned for a field whose JSON type does not fit; encoding/json reported
// these as *json.UnmarshalTypeError.
var errWireType = errors.New("wrong JSON type")

// decodeWire decodes a wire payload into m. Strings that need no unescaping share the memory
// of s, so s must not change afterwards (a Go string never does). Errors wrap [ErrMalformed].
func (m *Message) decodeWire(s string) error {
	d := wireDecoder{s: s}
	var (
		w         Message
		ts        string
		expiresAt *string
	)
	d.space()
	switch {
	case d.literal("null"):
		// encoding/json leaves the value alone: an empty message, which Validate rejects.
	case d.peek() == '{':
		d.i++
		d.space()
		if d.peek() == '}' {
			d.i++
			break
		}
		for d.err == nil {
			key := d.str()
			d.space()
			d.expect(':')
			d.space()
			if d.err != nil {
				break
			}
			switch wireField(key) {
			case "id":
				d.strField(&w.ID)
			case "type":
				var t string
				if d.strField(&t) {
					w.Type = MessageType(t)
				}
			case "from_agent":
				d.strField(&w.FromAgent)
			case "to_agent":
				d.strField(&w.ToAgent)
			case "subject":
				d.strField(&w.Subject)
			case "priority":
				var p string
				if d.strField(&p) {
					w.Priority = Priority(p)
				}
			case "timestamp":
				d.strField(&ts)
			case "requires_response":
				switch {
				case d.literal("true"):
					w.RequiresResponse = true
				case d.literal("false"):
					w.RequiresResponse = false
				case d.literal("null"):
				default:
					d.typeError(key)
				}
			case "reply_to":
				w.ReplyTo = d.strPtrField(key)
			case "expires_at":
				expiresAt = d.strPtrField(key)
			case "content":
				w.Content = d.objectField(key, w.Content)
			case "metadata":
				w.Metadata = d.objectField(key, w.Metadata)
			default:
				// encoding/json skipped unknown fields without converting their numbers.
				d.skip = true
				d.value(1)
				d.skip = false
			}
			d.space()
			if d.peek() == ',' {
				d.i++
				d.space()
				continue
			}
			d.expect('}')
			break
		}
	default:
		if d.err == nil {
			// Valid JSON of another type is a type error, invalid JSON a syntax error.
			d.value(0)
			if d.err == nil {
				d.fail(fmt.Errorf("%w: a message must be an object", errWireType))
			}
		}
	}
	d.space()
	if d.err == nil && d.i < len(d.s) {
		d.fail(errors.New("invalid character after the top-level value"))
	}
	if d.err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, d.err)
	}
	if w.ReplyTo != nil && *w.ReplyTo == "" {
		w.ReplyTo = nil
	}
	var err error
	if w.Timestamp, err = parseTime(ts); err != nil {
		return fmt.Errorf("%w: timestamp: %w", ErrMalformed, err)
	}
	if expiresAt != nil && *expiresAt != "" {
		t, err := parseTime(*expiresAt)
		if err != nil {
			return fmt.Errorf("%w: expires_at: %w", ErrMalformed, err)
		}
		w.ExpiresAt = &t
	}
	*m = w
	return nil
}

// wireFields are the JSON field names of a message.
var wireFields = [...]string{
	"id", "type", "from_agent", "to_agent", "subject", "content", "priority",
	"requires_response", "reply_to", "timestamp", "expires_at", "metadata",
}

// wireField returns the field that key names, matched as encoding/json matches struct fields:
// exactly, or else ignoring case; "" for an unknown key.
func wireField(key string) string {
	switch key {
	case "id", "type", "from_agent", "to_agent", "subject", "content", "priority",
		"requires_response", "reply_to", "timestamp", "expires_at", "metadata":
		return key
	}
	for _, f := range wireFields {
		if strings.EqualFold(key, f) {
			return f
		}
	}
	return ""
}

// wireDecoder is a JSON parser over one payload. The first error stops it: d.err is set and
// every later step does nothing.
type wireDecoder struct {
	s    string
	i    int
	err  error
	skip bool // the value is thrown away: numbers are checked, not converted
}

func (d *wireDecoder) fail(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("offset %d: %w", d.i, err)
	}
}

func (d *wireDecoder) typeError(key string) {
	d.fail(fmt.Errorf("%w for field %s", errWireType, key))
}

func (d *wireDecoder) peek() byte {
	if d.err != nil || d.i >= len(d.s) {
		return 0
	}
	return d.s[d.i]
}

func (d *wireDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *wireDecoder) expect(c byte) {
	if d.peek() != c {
		d.fail(fmt.Errorf("want %q", c))
		return
	}
	d.i++
}

// literal consumes word (true, false, null) when it comes next.
func (d *wireDecoder) literal(word string) bool {
	if d.err != nil || !strings.HasPrefix(d.s[d.i:], word) {
		return false
	}
	d.i += len(word)
	return true
}

// strField decodes a string field: null leaves it alone, as with encoding/json. It reports
// whether it set the field.
func (d *wireDecoder) strField(dst *string) bool {
	switch d.peek() {
	case '"':
		*dst = d.str()
		return d.err == nil
	case 'n':
		if d.literal("null") {
			return false
		}
	}
	d.value(1) // a syntax error, or else a type error
	d.fail(errWireType)
	return false
}

// strPtrField decodes a string-or-null field; null is nil.
func (d *wireDecoder) strPtrField(key string) *string {
	switch d.peek() {
	case '"':
		s := d.str()
		return &s
	case 'n':
		if d.literal("null") {
			return nil
		}
	}
	d.value(1)
	d.typeError(key)
	return nil
}

// objectField decodes an object-or-null field into m: null is a nil map; an object's entries
// are added to m (made when nil), as encoding/json adds them to a map it decodes into twice.
func (d *wireDecoder) objectField(key string, m map[string]any) map[string]any {
	switch d.peek() {
	case '{':
		if m == nil {
			m = map[string]any{}
		}
		d.object(m, 2)
		return m
	case 'n':
		if d.literal("null") {
			return nil
		}
	}
	d.value(1)
	d.typeError(key)
	return m
}

// value decodes any JSON value as encoding/json decodes into an interface: objects as
// map[string]any, arrays as []any, numbers as float64. depth is how many objects and arrays
// enclose it (the message itself is 1).
func (d *wireDecoder) value(depth int) any {
	switch d.peek() {
	case '{':
		m := map[string]any{}
		d.object(m, depth+1)
		return m
	case '[':
		return d.array(depth + 1)
	case '"':
		return d.str()
	case 't':
		if d.literal("true") {
			return true
		}
	case 'f':
		if d.literal("false") {
			return false
		}
	case 'n':
		if d.literal("null") {
			return nil
		}
	default:
		if c := d.peek(); c == '-' || c >= '0' && c <= '9' {
			return d.number()
		}
	}
	d.fail(errors.New("invalid character looking for a value"))
	return nil
}

// object decodes the object at d.i, nested depth deep, into m.
func (d *wireDecoder) object(m map[string]any, depth int) {
	if depth > maxDepth {
		d.fail(errors.New("exceeded max depth"))
		return
	}
	d.i++ // '{'
	d.space()
	if d.peek() == '}' {
		d.i++
		return
	}
	for d.err == nil {
		key := d.str()
		d.space()
		d.expect(':')
		d.space()
		v := d.value(depth)
		if d.err != nil {
			return
		}
		m[key] = v
		d.space()
		if d.peek() == ',' {
			d.i++
			d.space()
			continue
		}
		d.expect('}')
		return
	}
}

func (d *wireDecoder) array(depth int) []any {
	if depth > maxDepth {
		d.fail(errors.New("exceeded max depth"))
		return nil
	}
	d.i++ // '['
	d.space()
	a := []any{}
	if d.peek() == ']' {
		d.i++
		return a
	}
	for d.err == nil {
		v := d.value(depth)
		if d.err != nil {
			return nil
		}
		a = append(a, v)
		d.space()
		if d.peek() == ',' {
			d.i++
			d.space()
			continue
		}
		d.expect(']')
		break
	}
	return a
}

// number decodes a number with JSON's grammar, as a float64.
func (d *wireDecoder) number() any {
	s, start := d.s, d.i
	i := start
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		d.i = i
		d.fail(errors.New("invalid number"))
		return nil
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.i = i
			d.fail(errors.New("invalid number"))
			return nil
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.i = i
			d.fail(errors.New("invalid number"))
			return nil
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	if d.skip {
		return nil
	}
	f, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil {
		d.fail(fmt.Errorf("%w: number %s", errWireType, s[start:i]))
		return nil
	}
	return f
}

// str decodes the string at d.i as encoding/json does: invalid UTF-8 and lone surrogates
// become U+FFFD. A string without escapes or invalid UTF-8 is a substring of d.s.
func (d *wireDecoder) str() string {
	if d.peek() != '"' {
		d.fail(errors.New("want a string"))
		return ""
	}
	s := d.s
	start := d.i + 1
	i := start
	for i < len(s) {
		c := s[i]
		if c == '"' {
			d.i = i + 1
			return s[start:i]
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	// The slow path: escapes, invalid UTF-8, or an error.
	b := make([]byte, 0, i-start+16)
	b = append(b, s[start:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			return string(b)
		case c < 0x20:
			d.i = i
			d.fail(errors.New("invalid character in string literal"))
			return ""
		case c == '\\':
			if i+1 >= len(s) {
				d.i = i
				d.fail(errors.New("unexpected end of string"))
				return ""
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
				i += 2
			case 'b':
				b = append(b, '\b')
				i += 2
			case 'f':
				b = append(b, '\f')
				i += 2
			case 'n':
				b = append(b, '\n')
				i += 2
			case 'r':
				b = append(b, '\r')
				i += 2
			case 't':
				b = append(b, '\t')
				i += 2
			case 'u':
				r := hex4(s[i:])
				if r < 0 {
					d.i = i
					d.fail(errors.New("invalid escape in string literal"))
					return ""
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2 := hex4(s[i:]); r2 >= 0 {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							i += 6
							break
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			default:
				d.i = i
				d.fail(errors.New("invalid escape in string literal"))
				return ""
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			b = utf8.AppendRune(b, r)
			i += size
		}
	}
	d.i = i
	d.fail(errors.New("unexpected end of string"))
	return ""
}

// hex4 decodes the escape \uXXXX at the start of s, or returns -1.
func hex4(s string) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range []byte(s[2:6]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
