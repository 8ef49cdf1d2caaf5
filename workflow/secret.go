package workflow

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Mask is what a secret value is shown as.
const Mask = "••••"

// minSecretLen is the shortest value masked in text: masking a one- or
// two-character value would garble every record it occurs in.
const minSecretLen = 3

// Redacted returns a copy of w whose secret variables have their values
// replaced by Mask, for showing the workflow to a client.
func (w *Workflow) Redacted() *Workflow {
	c := *w
	c.Variables = make([]Variable, len(w.Variables))
	for i, v := range w.Variables {
		if v.Secret {
			v.Value = Mask
		}
		c.Variables[i] = v
	}
	return &c
}

// RestoreSecrets puts back into w the stored values of secret variables that
// a client sent back masked, so editing a workflow never overwrites a secret
// with its mask.
func (w *Workflow) RestoreSecrets(stored *Workflow) {
	old := map[string]any{}
	for _, v := range stored.Variables {
		if v.Secret {
			old[v.Name] = v.Value
		}
	}
	for i, v := range w.Variables {
		if s, ok := v.Value.(string); ok && s == Mask {
			if prev, ok := old[v.Name]; ok {
				w.Variables[i].Value = prev
			}
		}
	}
}

// SecretNames returns the names of w's secret variables.
func (w *Workflow) SecretNames() map[string]bool {
	names := map[string]bool{}
	for _, v := range w.Variables {
		if v.Secret {
			names[v.Name] = true
		}
	}
	return names
}

// Secrets returns the text of every secret value of a run: the secret
// variables' values, or the inputs that override them.
func (w *Workflow) Secrets(inputs map[string]any) []string {
	var out []string
	for _, v := range w.Variables {
		if !v.Secret {
			continue
		}
		val := v.Value
		if in, ok := inputs[v.Name]; ok {
			val = in
		}
		if s := toText(val); len(s) >= minSecretLen && s != Mask {
			out = append(out, s)
		}
	}
	return out
}

// CheckSecretInputs returns a problem for each run input that gives a
// secret variable a value too short to be masked in text (1 or 2
// characters), as Validate refuses such a stored value.
func (w *Workflow) CheckSecretInputs(inputs map[string]any) []Problem {
	var ps []Problem
	for _, v := range w.Variables {
		in, ok := inputs[v.Name]
		if !v.Secret || !ok {
			continue
		}
		if s := toText(in); s != "" && len(s) < minSecretLen {
			ps = append(ps, Problem{"inputs." + v.Name, fmt.Sprintf("a secret value must be at least %d characters long: a shorter one cannot be masked in logs and outputs", minSecretLen)})
		}
	}
	return ps
}

// Redactor masks secret values in text. The zero value and nil mask
// nothing. It is safe for concurrent use.
type Redactor struct {
	r *strings.Replacer
	// patterns are the texts r replaces, in its order of priority: where
	// several match at one place, the first listed wins.
	patterns []string
	// starts marks the first bytes of the patterns: a streamed text is
	// looked at closely only where one of them occurs.
	starts [256]bool
}

// NewRedactor returns a Redactor for the given secrets, or nil when there
// are none.
func NewRedactor(secrets []string) *Redactor {
	if len(secrets) == 0 {
		return nil
	}
	// Longest first, so a secret that contains another is masked whole.
	sorted := append([]string{}, secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	red := &Redactor{}
	var pairs []string
	for _, s := range sorted {
		red.patterns = append(red.patterns, s)
		// JSON-encoded text escapes some characters: mask that form too.
		if enc, err := json.Marshal(s); err == nil {
			if e := string(enc[1 : len(enc)-1]); e != s {
				red.patterns = append(red.patterns, e)
			}
		}
	}
	for _, p := range red.patterns {
		pairs = append(pairs, p, Mask)
		red.starts[p[0]] = true
	}
	red.r = strings.NewReplacer(pairs...)
	return red
}

// String masks the secrets in s.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Reply masks the secrets in s, a model's whole reply, as String does, and
// also a secret the reply was cut short in: when s ends with the first
// minSecretLen or more bytes of a secret, that end is masked too.
func (r *Redactor) Reply(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	out, held := r.scan(s)
	return out + cutShort(held)
}

// cutShort is what the end of a reply shows when it is the start of a
// secret: the mask, unless it is too short to tell anything.
func cutShort(held string) string {
	if len(held) >= minSecretLen {
		return Mask
	}
	return held
}

// Value masks the secrets in every string inside a JSON-like value,
// returning a copy when anything changed.
func (r *Redactor) Value(v any) any {
	if r == nil {
		return v
	}
	return r.value(v, r.String)
}

func (r *Redactor) value(v any, mask func(string) string) any {
	switch x := v.(type) {
	case string:
		return mask(x)
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = r.value(e, mask)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = r.value(e, mask)
		}
		return c
	case []string:
		c := make([]string, len(x))
		for i, e := range x {
			c[i] = mask(e)
		}
		return c
	}
	return v
}

// Stream returns a StreamMasker for one streamed reply, or nil (which
// passes text through untouched) when r masks nothing.
func (r *Redactor) Stream() *StreamMasker {
	if r == nil || r.r == nil {
		return nil
	}
	return &StreamMasker{r: r}
}

// StreamMasker masks the secrets in a reply that arrives in pieces, where a
// secret may be cut across pieces: the end of what arrived that could still
// be the start of a secret is held back until a later piece or the end of
// the reply shows what it is. The pieces Write and Flush return join to
// Reply of the whole reply, and none ends with the start of a secret that
// the next one completes. A nil *StreamMasker passes text through. It is
// not safe for concurrent use.
type StreamMasker struct {
	r    *Redactor
	held string
}

// Write takes the next piece of the reply and returns the masked text that
// can be shown now, which may be empty.
func (m *StreamMasker) Write(piece string) string {
	if m == nil {
		return piece
	}
	s := piece
	if m.held != "" {
		s = m.held + piece
	}
	out, held := m.r.scan(s)
	m.held = held
	return out
}

// Flush ends the reply and returns the rest of it, masked as Reply masks
// the end of a reply.
func (m *StreamMasker) Flush() string {
	if m == nil {
		return ""
	}
	s := cutShort(m.held)
	m.held = ""
	return s
}

// scan masks s from its start as r.r.Replace would, up to the first place
// where a pattern might begin but s ends before telling whether it does:
// that end, shorter than the pattern, is returned as held. The choice at
// each place depends only on the text from there on, so scanning in pieces
// chooses as scanning the whole does.
func (r *Redactor) scan(s string) (out, held string) {
	var b []byte
	from := 0 // s[from:i] is copied as it is
	for i := 0; i < len(s); {
		if !r.starts[s[i]] {
			i++
			continue
		}
		rest, match, open := s[i:], "", false
		for _, p := range r.patterns {
			if len(rest) < len(p) {
				if strings.HasPrefix(p, rest) {
					open = true
					break
				}
			} else if match == "" && strings.HasPrefix(rest, p) {
				match = p
			}
		}
		switch {
		case open:
			held = rest
			s = s[:i]
			i = len(s)
		case match != "":
			b = append(append(b, s[from:i]...), Mask...)
			i += len(match)
			from = i
		default:
			i++
		}
	}
	if b == nil {
		return s[from:], held
	}
	return string(append(b, s[from:]...)), held
}

// Event returns a copy of ev with secrets masked in every text it carries.
func (r *Redactor) Event(ev Event) Event {
	if r == nil {
		return ev
	}
	switch {
	case ev.Execution != nil:
		h := *ev.Execution
		h.Error = r.String(h.Error)
		h.FallbackReason = r.String(h.FallbackReason)
		if h.Inputs != nil {
			h.Inputs, _ = r.Value(h.Inputs).(map[string]any)
		}
		ev.Execution = &h
	case ev.Node != nil:
		n := *ev.Node
		// An output is a reply (or made of replies) and may end in a
		// secret cut short, as the node's streamed text does.
		n.Output = r.value(n.Output, r.Reply)
		n.Error = r.String(n.Error)
		ev.Node = &n
	case ev.Log != nil:
		l := *ev.Log
		l.Message = r.String(l.Message)
		ev.Log = &l
	case ev.Error != nil:
		e := *ev.Error
		e.Message = r.String(e.Message)
		ev.Error = &e
	case ev.Message != nil:
		m := *ev.Message
		if m.Type == CommResponse {
			m.Content = r.Reply(m.Content)
		} else {
			m.Content = r.String(m.Content)
		}
		m.Metadata, _ = r.Value(m.Metadata).(map[string]any)
		ev.Message = &m
	case ev.Context != nil:
		c := *ev.Context
		c.Value = r.Value(c.Value)
		ev.Context = &c
	case ev.Delta != nil:
		// Only a secret whole within this delta is masked here: streamed
		// text is masked across deltas by a StreamMasker where it is made.
		d := *ev.Delta
		d.Text = r.String(d.Text)
		ev.Delta = &d
	}
	return ev
}
