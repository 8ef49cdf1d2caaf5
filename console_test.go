package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunCommandAsksAPerson: `switchboard run` asks a human node's question
// at the console and takes the answer from its input, asking again after
// an answer the node refuses; at the end of the input it stops the
// execution, unless the question has a default answer to wait for.
func TestRunCommandAsksAPerson(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, config string) string {
		f := filepath.Join(dir, name)
		doc := `{"name":"h","nodes":[{"id":"start","type":"start"},{"id":"q","type":"human","config":` + config + `},{"id":"end","type":"end"}],
			"edges":[{"from":"start","to":"q"},{"from":"q","to":"end"}]}`
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	choice := file("choice.json", `{"question":"Ship it?","input":"choice","choices":["yes","no"]}`)

	var out strings.Builder
	if err := runWith(t.Context(), []string{"run", choice}, testEnv, strings.NewReader("maybe\nyes\n"), &out, t.Output()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"? q asks: Ship it? [yes / no]", `answer: must be one of ["yes" "no"], not "maybe"`, "✔ q completed", "success (mode simple"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	err := runWith(t.Context(), []string{"run", choice}, testEnv, strings.NewReader(""), &out, t.Output())
	if err == nil || !strings.Contains(out.String(), "nobody can answer here (no more input): stopping the execution") ||
		!strings.Contains(err.Error(), "stopped by request while it waited for an answer") {
		t.Fatalf("with no input: %v\n%s", err, out.String())
	}

	out.Reset()
	withDefault := file("default.json", `{"question":"Name?","input":"text","timeout_seconds":1,"default":"nobody"}`)
	if err := run(t.Context(), []string{"run", withDefault}, testEnv, &out, t.Output()); err != nil {
		t.Fatalf("with a default: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `the answer is "nobody" at`) || !strings.Contains(out.String(), "success") {
		t.Errorf("with a default:\n%s", out.String())
	}
}
