package workflow

import (
	"encoding/json"
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

// Redactor masks secret values in text. The zero value and nil mask
// nothing. It is safe for concurrent use.
type Redactor struct {
	r *strings.Replacer
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
	var pairs []string
	for _, s := range sorted {
		pairs = append(pairs, s, Mask)
		// JSON-encoded text escapes some characters: mask that form too.
		if enc, err := json.Marshal(s); err == nil {
			if e := string(enc[1 : len(enc)-1]); e != s {
				pairs = append(pairs, e, Mask)
			}
		}
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// String masks the secrets in s.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Value masks the secrets in every string inside a JSON-like value,
// returning a copy when anything changed.
func (r *Redactor) Value(v any) any {
	if r == nil {
		return v
	}
	switch x := v.(type) {
	case string:
		return r.String(x)
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = r.Value(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = r.Value(e)
		}
		return c
	case []string:
		c := make([]string, len(x))
		for i, e := range x {
			c[i] = r.String(e)
		}
		return c
	}
	return v
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
		n.Output = r.Value(n.Output)
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
		m.Content = r.String(m.Content)
		m.Metadata, _ = r.Value(m.Metadata).(map[string]any)
		ev.Message = &m
	case ev.Context != nil:
		c := *ev.Context
		c.Value = r.Value(c.Value)
		ev.Context = &c
	case ev.Delta != nil:
		d := *ev.Delta
		d.Text = r.String(d.Text)
		ev.Delta = &d
	}
	return ev
}
