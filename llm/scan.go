package llm

import "strings"

// callMarker introduces a CALL statement, e.g. "CALL: ask_node('teacher', 'Why?')".
const callMarker = "CALL:"

// scanCalls returns every complete CALL statement in text, verbatim and in text order: the
// marker "CALL:", optional whitespace, an identifier, optional blanks, and a balanced
// parenthesised argument list. Inside the list, single- and double-quoted strings may hold the
// other quote kind, brackets and backslash-escaped quotes; (), [] and {} must nest properly.
// A statement that is unterminated or badly nested is skipped and scanning resumes right after
// its marker, so one broken statement does not hide the ones after it.
//
// It is the demo model's own small scanner (llm may not import the executor, which owns the
// authoritative parser); it only has to agree on well-formed statements. Safe for concurrent
// use; it never panics on any input.
func scanCalls(text string) []string {
	var calls []string
	for i := 0; i < len(text); {
		k := strings.Index(text[i:], callMarker)
		if k < 0 {
			break
		}
		start := i + k
		after := start + len(callMarker)
		// "RECALL: x(y)" is prose, not a statement.
		if start > 0 && isIdentByte(text[start-1]) {
			i = after
			continue
		}
		if end, ok := scanCallBody(text, after); ok {
			calls = append(calls, text[start:end])
			i = end
		} else {
			i = after
		}
	}
	return calls
}

// scanCallBody parses "name(...)" starting at pos (after the marker) and returns the index just
// past the closing parenthesis.
func scanCallBody(text string, pos int) (end int, ok bool) {
	p := pos
	for p < len(text) && isSpaceByte(text[p]) {
		p++
	}
	if p >= len(text) || !isIdentStart(text[p]) {
		return 0, false
	}
	for p < len(text) && isIdentByte(text[p]) {
		p++
	}
	for p < len(text) && (text[p] == ' ' || text[p] == '\t') {
		p++
	}
	if p >= len(text) || text[p] != '(' {
		return 0, false
	}
	closers := []byte{')'}
	for j := p + 1; j < len(text); j++ {
		switch c := text[j]; c {
		case '\'', '"':
			j++
			for j < len(text) && text[j] != c {
				if text[j] == '\\' {
					j++ // the escaped byte, whatever it is, cannot end the string
				}
				j++
			}
			if j >= len(text) {
				return 0, false
			}
		case '(':
			closers = append(closers, ')')
		case '[':
			closers = append(closers, ']')
		case '{':
			closers = append(closers, '}')
		case ')', ']', '}':
			if c != closers[len(closers)-1] {
				return 0, false
			}
			closers = closers[:len(closers)-1]
			if len(closers) == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

func isSpaceByte(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func isIdentStart(b byte) bool {
	return b == '_' || ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z')
}

func isIdentByte(b byte) bool { return isIdentStart(b) || ('0' <= b && b <= '9') }
