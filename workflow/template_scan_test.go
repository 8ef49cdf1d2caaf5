package workflow

import (
	"regexp"
	"slices"
	"testing"
)

// placeholderRE is the definition the hand-written scanner implements.
var placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}`)

// scanAll lists the placeholders nextPlaceholder finds, as the regexp's
// FindAllStringSubmatchIndex does.
func scanAll(text string) [][]int {
	var out [][]int
	for at := 0; ; {
		start, end, name := nextPlaceholder(text, at)
		if start < 0 {
			return out
		}
		nameAt := start + 2
		for text[nameAt:nameAt+len(name)] != name {
			nameAt++
		}
		out = append(out, []int{start, end, nameAt, nameAt + len(name)})
		at = end
	}
}

func checkScan(t *testing.T, text string) {
	t.Helper()
	want := placeholderRE.FindAllStringSubmatchIndex(text, -1)
	got := scanAll(text)
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("placeholders of %q: scanner %v, regexp %v", text, got, want)
	}
}

func TestPlaceholderScanMatchesRegexp(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"", "plain", "{{", "}}", "{{}}", "{{ }}", "{{a}}", "{{ a }}", "{{\ta\n}}", "{{\va}}",
		"{{a.}}", "{{a..b}}", "{{a.b.c}}", "{{a.-b}}", "{{a-b.c_d.9}}", "{{9a}}", "{{_x}}", "{{-x}}",
		"{{{a}}}", "{{{{a}}}}", "{a}", "{{a}", "{{a}}{{b}}", "{{a}}}{{b}}", "{{ outputs.student }} and {{shared.k}}",
		`{"json": {"nested": 1}} {{x}}`, "{{é}}", "{{aé}}", "{{a b}}", "{{a}}\n{{ b.c }}\r\n{{x.y }}",
		"{{a.b}}c}}", "{{a\f}}", "x{{y", "{{a.b.}}{{c}}",
	} {
		checkScan(t, text)
	}
}

func FuzzPlaceholderScan(f *testing.F) {
	for _, s := range []string{"{{a}}", "{{ a.b }}", "{{{a}}}", "{{a.}}{{b}}", "x{{ y\t}}z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) { checkScan(t, text) })
}
