package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/workflow"
)

// decodeChunk appends the events of one chunk (a JSON array of
// storedEvent) to evs. It reads the format appendJSON writes, and the one
// the 0004 migration wrote with SQLite's JSON functions, by hand: with
// encoding/json's reflection, decoding was half the time of reading an
// execution back. Open values (a non-string output or context value,
// metadata) are handed to encoding/json. Unknown keys are skipped.
func decodeChunk(data []byte, evs []storedEvent) ([]storedEvent, error) {
	d := decoder{b: data}
	d.ws()
	if !d.eat('[') {
		return evs, d.fail("expected [")
	}
	d.ws()
	if d.eat(']') {
		return evs, d.end()
	}
	for {
		var se storedEvent
		if err := d.event(&se); err != nil {
			return evs, err
		}
		evs = append(evs, se)
		d.ws()
		if d.eat(']') {
			return evs, d.end()
		}
		if !d.eat(',') {
			return evs, d.fail("expected , or ]")
		}
		d.ws()
	}
}

type decoder struct {
	b []byte
	i int
}

var errSyntax = errors.New("invalid stored events")

func (d *decoder) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSyntax, what, d.i)
}

func (d *decoder) end() error {
	d.ws()
	if d.i != len(d.b) {
		return d.fail("data after the array")
	}
	return nil
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *decoder) event(se *storedEvent) error {
	if !d.eat('{') {
		return d.fail("expected {")
	}
	d.ws()
	if d.eat('}') {
		return nil
	}
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		d.ws()
		if !d.eat(':') {
			return d.fail("expected :")
		}
		d.ws()
		if err := d.field(se, key); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		d.ws()
		if d.eat('}') {
			return nil
		}
		if !d.eat(',') {
			return d.fail("expected , or }")
		}
		d.ws()
	}
}

func (d *decoder) field(se *storedEvent, key string) error {
	var err error
	text := func(p *string) {
		var s string
		if s, err = d.strOrNull(); err == nil {
			*p = s
		}
	}
	num := func(p *int64) { *p, err = d.int() }
	small := func(p *int) {
		var n int64
		if n, err = d.int(); err == nil {
			*p = int(n)
		}
	}
	switch key {
	case "k":
		var s string
		text(&s)
		se.Kind = workflow.EventKind(s)
	case "s":
		num(&se.Seq)
	case "t":
		num(&se.Time)
	case "node":
		text(&se.Node)
	case "type":
		text(&se.Type)
	case "name":
		text(&se.Name)
	case "status":
		text(&se.Status)
	case "v":
		se.Value, err = d.value()
	case "start":
		num(&se.Start)
	case "finish":
		num(&se.Finish)
	case "model":
		text(&se.Model)
	case "pt":
		small(&se.PT)
	case "ct":
		small(&se.CT)
	case "tt":
		small(&se.TT)
	case "calls":
		small(&se.Calls)
	case "err":
		text(&se.Err)
	case "level":
		text(&se.Level)
	case "msg":
		text(&se.Text)
	case "code":
		text(&se.Code)
	case "from":
		text(&se.From)
	case "to":
		text(&se.To)
	case "key":
		text(&se.Key)
	case "meta":
		if d.null() { // as encoding/json: a nil pointer
			se.Meta = nil
			return nil
		}
		var raw []byte
		if raw, err = d.skip(); err != nil {
			return err
		}
		var m map[string]any
		if err = json.Unmarshal(raw, &m); err != nil {
			return err
		}
		se.Meta = &m
	default: // a key this version does not know: checked, then ignored
		var raw []byte
		if raw, err = d.skip(); err == nil && !json.Valid(raw) {
			err = d.fail("invalid value")
		}
	}
	return err
}

// null reports whether a JSON null is next, and eats it.
func (d *decoder) null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// int reads an integer; null reads as 0, as encoding/json leaves it.
func (d *decoder) int() (int64, error) {
	if d.null() {
		return 0, nil
	}
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return 0, d.fail("expected an integer")
	}
	return n, nil
}

func (d *decoder) strOrNull() (string, error) {
	if d.null() {
		return "", nil
	}
	return d.str()
}

// str reads a JSON string. Like encoding/json it turns invalid UTF-8 and
// lone surrogates into U+FFFD.
func (d *decoder) str() (string, error) {
	if !d.eat('"') {
		return "", d.fail("expected a string")
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := d.b[start:d.i]
			d.i++
			if !utf8.Valid(s) {
				return string(validUTF8(nil, s)), nil
			}
			return string(s), nil
		}
		if c == '\\' {
			return d.strSlow(start)
		}
		if c < 0x20 {
			return "", d.fail("control character in string")
		}
		d.i++
	}
	return "", d.fail("unterminated string")
}

// strSlow reads the rest of a string that has escapes; start is just
// after its opening quote.
func (d *decoder) strSlow(start int) (string, error) {
	out := validUTF8(make([]byte, 0, d.i-start+16), d.b[start:d.i])
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), nil
		case c < 0x20:
			return "", d.fail("control character in string")
		case c != '\\':
			j := d.i
			for j < len(d.b) && d.b[j] != '"' && d.b[j] != '\\' && d.b[j] >= 0x20 {
				j++
			}
			out = validUTF8(out, d.b[d.i:j])
			d.i = j
			continue
		}
		if d.i+1 >= len(d.b) {
			break
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(d.b)-d.i >= 6 && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					var ok2 bool
					if r2, ok2 = d.hex4(); !ok2 {
						return "", d.fail("bad \\u escape")
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						out = utf8.AppendRune(out, dec)
						continue
					}
					d.i = save // not a pair: the second escape stands alone
				}
				out = utf8.AppendRune(out, utf8.RuneError)
				continue
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", d.fail("bad escape")
		}
	}
	return "", d.fail("unterminated string")
}

func (d *decoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}

// validUTF8 appends s to out with each invalid byte replaced by U+FFFD.
func validUTF8(out, s []byte) []byte {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[:size]...)
		}
		s = s[size:]
	}
	return out
}

// value reads an open value: a string by hand, anything else through
// encoding/json (numbers as float64, like the rest of the record).
func (d *decoder) value() (any, error) {
	if d.i < len(d.b) && d.b[d.i] == '"' {
		return d.str()
	}
	raw, err := d.skip()
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// skip passes over one JSON value and returns its text, checked only for
// where it ends (encoding/json checks the rest when it is decoded).
func (d *decoder) skip() ([]byte, error) {
	start := d.i
	depth := 0
	for d.i < len(d.b) {
		switch c := d.b[d.i]; c {
		case '"':
			if _, err := d.str(); err != nil {
				return nil, err
			}
			if depth == 0 {
				return d.b[start:d.i], nil
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // the end of the object or array holding a scalar
				if d.i == start {
					return nil, d.fail("missing value")
				}
				return d.b[start:d.i], nil
			}
			depth--
			if depth < 0 {
				return nil, d.fail("unexpected " + string(c))
			}
			if depth == 0 {
				d.i++
				return d.b[start:d.i], nil
			}
		case ',':
			if depth == 0 {
				if d.i == start {
					return nil, d.fail("missing value")
				}
				return d.b[start:d.i], nil
			}
		}
		d.i++
	}
	if depth == 0 && d.i > start {
		return d.b[start:d.i], nil
	}
	return nil, d.fail("unterminated value")
}
