package llm

import (
	"strings"
	"testing"
)

func TestScanCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"none", "no calls here", nil},
		{"simple", "CALL: get_shared_context('topic')", []string{"CALL: get_shared_context('topic')"}},
		{"no space, blanks before paren", "x CALL:f\t('a')", []string{"CALL:f\t('a')"}},
		{"newline after marker", "using: CALL:\nask_node('a', 'b')", []string{"CALL:\nask_node('a', 'b')"}},
		{"list argument", "CALL: broadcast_message('m', ['ai-processor', \"x\"])", []string{"CALL: broadcast_message('m', ['ai-processor', \"x\"])"}},
		{"paren inside quotes", "CALL: f('a)b') tail", []string{"CALL: f('a)b')"}},
		{"escaped quotes", `CALL: f('it\'s', "say \"hi\"") tail`, []string{`CALL: f('it\'s', "say \"hi\"")`}},
		{"escaped backslash ends string", `CALL: f('a\\') tail`, []string{`CALL: f('a\\')`}},
		{"nested call syntax", "CALL: f(g(1), {'k': [2]})", []string{"CALL: f(g(1), {'k': [2]})"}},
		{"unterminated paren", "CALL: f('a'", nil},
		{"unterminated quote", "CALL: f('a)", nil},
		{"mismatched bracket", "CALL: f([)] CALL: g()", []string{"CALL: g()"}},
		{"no identifier", "CALL: ('a') CALL: 1x() CALL: h()", []string{"CALL: h()"}},
		{"not a word boundary", "RECALL: f('a')", nil},
		{"marker inside a call's string", "CALL: f('CALL: g()') and CALL: h()", []string{"CALL: f('CALL: g()')", "CALL: h()"}},
		{"broken call does not hide the next", "CALL: f('x CALL: g('y')", []string{"CALL: g('y')"}},
		{"lowercase is prose", "call: f()", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scanCalls(tt.text)
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") || len(got) != len(tt.want) {
				t.Errorf("scanCalls(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func FuzzDemoScan(f *testing.F) {
	for _, s := range []string{
		"CALL: ask_node('teacher', 'Can you explain photosynthesis?')",
		`x CALL: f("a\"b", 'c\'d', ['e']) y CALL: g(`,
		"CALL: f('x CALL: g('y')",
		"RECALL: f() CALL:\n h({[()]})",
		"CALL: f('\\",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		calls := scanCalls(text)
		pos := 0
		for _, c := range calls {
			if !strings.HasPrefix(c, callMarker) || !strings.HasSuffix(c, ")") {
				t.Fatalf("statement %q is not CALL:...)", c)
			}
			i := strings.Index(text[pos:], c)
			if i < 0 {
				t.Fatalf("statement %q is not in the text after offset %d", c, pos)
			}
			pos += i + len(c)
			if again := scanCalls(c); len(again) != 1 || again[0] != c {
				t.Fatalf("statement %q rescans as %q", c, again)
			}
		}
		// The demo model's replies must keep the executor's rounds bounded: a calls reply
		// carries exactly the calls, a follow-up reply carries none.
		for _, p := range []Purpose{PurposeTask, PurposeAnswer, PurposeFollowUp} {
			r := Request{Agent: "a", AgentName: "A", Purpose: p, Messages: []Message{{Role: RoleUser, Content: text}}}
			reply := demoReply(r)
			got := scanCalls(reply)
			switch {
			case p == PurposeFollowUp:
				if len(got) != 0 {
					t.Fatalf("follow-up reply %q contains calls %q", reply, got)
				}
			case len(calls) > 0:
				if strings.Join(got, "\x00") != strings.Join(calls, "\x00") {
					t.Fatalf("reply %q carries calls %q, want %q", reply, got, calls)
				}
			default:
				if len(got) != 0 {
					t.Fatalf("reply %q to a text without calls contains calls %q", reply, got)
				}
			}
			if strings.Join(wordChunks(reply), "") != reply {
				t.Fatalf("word chunks of %q do not rebuild it", reply)
			}
		}
	})
}
