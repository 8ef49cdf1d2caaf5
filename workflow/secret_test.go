package workflow_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

// streamSecrets overlap on purpose: one is the start of another, one
// begins with the end of another, one is masked in its JSON form too.
var streamSecrets = []string{"SEKRETVALUE1234", "SEKRET", "UE1234XYZ", `pa"ss`, "ÅÅÅ-key"}

// streamMask feeds text to a StreamMasker in pieces of n bytes (the whole
// text when n is 0) and returns what it let out, piece by piece, the
// Flush last.
func streamMask(r *workflow.Redactor, text string, n int) []string {
	m := r.Stream()
	var out []string
	for len(text) > 0 {
		k := len(text)
		if n > 0 {
			k = min(n, len(text))
		}
		out = append(out, m.Write(text[:k]))
		text = text[k:]
	}
	return append(out, m.Flush())
}

// checkStream fails when the pieces let out differ, joined, from Reply of
// the whole text, hold a secret, or when a piece ends with the start of a
// secret that what follows completes.
func checkStream(t *testing.T, r *workflow.Redactor, text string, pieces []string) {
	t.Helper()
	joined := strings.Join(pieces, "")
	if want := r.Reply(text); joined != want {
		t.Fatalf("%q in pieces %q: joined %q, want Reply %q", text, pieces, joined, want)
	}
	// A reply that does not end inside a secret is masked as String masks.
	if a, b := r.Reply(text+"\n"), r.String(text+"\n"); a != b {
		t.Fatalf("%q: Reply %q, String %q", text, a, b)
	}
	for _, s := range streamSecrets {
		if strings.Contains(joined, s) {
			t.Fatalf("%q: the stream %q holds the secret %q", text, pieces, s)
		}
	}
	at := 0
	for _, p := range pieces[:len(pieces)-1] {
		at += len(p)
		before, after := joined[:at], joined[at:]
		for _, s := range streamSecrets {
			for j := 1; j < len(s); j++ {
				if strings.HasSuffix(before, s[:j]) && strings.HasPrefix(after, s[j:]) {
					t.Fatalf("%q: pieces %q cut the secret %q after %q", text, pieces, s, s[:j])
				}
			}
		}
	}
}

func TestStreamMaskerChunkings(t *testing.T) {
	t.Parallel()
	r := workflow.NewRedactor(streamSecrets)
	texts := []string{
		" SEKRETVALUE1234 done",
		"SEKRET alone, SEKRETX, SEKRETVALUE123 short by one, then SEKRETVALUE1234",
		"xxSEKRETVALUE1234XYZ and VALUE UE1234XYZ",
		"SEKRSEKRETVALUE1234",
		"SSSEKRET",
		`json {"k":"pa\"ss"} and raw pa"ss`,
		"ÅÅÅ-key and ÅÅ-ke",
		"no secret here at all",
		"the reply is cut short in SEKRETVAL",
		"cut short in the short one: SEK",
		"two letters are kept: SE",
		"",
	}
	for _, text := range texts {
		for _, n := range []int{1, 2, 3, 4, 5, 7, 0} {
			checkStream(t, r, text, streamMask(r, text, n))
		}
	}
}

// TestStreamMaskerPieces pins what a model streaming four characters at a
// time gets shown: the start of the secret is held back until the delta
// that completes it, which shows the mask instead.
func TestStreamMaskerPieces(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		secrets []string
		text    string
		n       int
		want    []string
	}{
		{"the issue's deltas", []string{"SEKRETVALUE1234"}, " SEKRETVALUE1234 done", 4,
			[]string{" ", "", "", "••••", " don", "e", ""}},
		{"a prefix secret waits for the longer one", []string{"SEKRETVALUE1234", "SEKRET"}, "SEKRET!", 3,
			[]string{"", "", "••••!", ""}},
		{"cut short at the end", []string{"SEKRETVALUE1234"}, "a SEKRETV", 4,
			[]string{"a ", "", "", "••••"}},
		{"no secret: nothing held", []string{"SEKRETVALUE1234"}, "plain words", 4,
			[]string{"plai", "n wo", "rds", ""}},
	} {
		got := streamMask(workflow.NewRedactor(tc.secrets), tc.text, tc.n)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: pieces %q, want %q", tc.name, got, tc.want)
		}
	}
	var none *workflow.Redactor
	if m := none.Stream(); m != nil || m.Write("SEK") != "SEK" || m.Flush() != "" {
		t.Error("no secrets: the masker must pass text through")
	}
}

// TestStreamMaskerRandom streams random texts made of secret pieces in
// random pieces: whatever the cut, the stream joins to Reply of the text.
func TestStreamMaskerRandom(t *testing.T) {
	t.Parallel()
	r := workflow.NewRedactor(streamSecrets)
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{" ", "x", "SEK", "RET", "VALUE", "1234", "UE1", "234XYZ", "pa", `"ss`, `\"ss`, "Å", "ÅÅ-key"}
	for range 3000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(words[rng.IntN(len(words))])
		}
		text := b.String()
		var pieces []string
		m := r.Stream()
		for rest := text; rest != ""; {
			k := min(1+rng.IntN(6), len(rest))
			pieces = append(pieces, m.Write(rest[:k]))
			rest = rest[k:]
		}
		checkStream(t, r, text, append(pieces, m.Flush()))
	}
}

// BenchmarkStreamMask measures the masking of a 2 KB reply streamed four
// bytes at a time, with secrets and without (a nil masker).
func BenchmarkStreamMask(b *testing.B) {
	reply := strings.Repeat("The answer is in the report; see SEKRET-less text. ", 40)
	for _, bc := range []struct {
		name string
		r    *workflow.Redactor
	}{{"secrets", workflow.NewRedactor(streamSecrets)}, {"none", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(reply)))
			for b.Loop() {
				m := bc.r.Stream()
				for i := 0; i < len(reply); i += 4 {
					m.Write(reply[i:min(i+4, len(reply))])
				}
				m.Flush()
			}
		})
	}
}
