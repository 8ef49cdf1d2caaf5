package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestQuick runs the bench with -quick and checks that it produces every
// named figure, each positive. It checks no figure against its target:
// the quick counts are too small to measure anything, and benchmarks are
// never timed assertions.
// TestMain lets the test binary be the raw responder the workers section
// starts in another process (see rawremote.go).
func TestMain(m *testing.M) {
	if exitAsRawResponder(context.Background()) {
		return
	}
	os.Exit(m.Run())
}

func TestQuick(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipping the bench smoke run in -short mode")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but redis-server is missing: %v", err)
		}
		t.Skip("skipping: redis-server not found on PATH (apt-get install redis-server)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	// The progress lines go to the test's output, shown when it fails or with -v.
	if err := run(ctx, []string{"-quick", "-json"}, &out, t.Output()); err != nil {
		t.Fatalf("bench -quick: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("bench -json printed no JSON object: %v\n%s", err, out.String())
	}
	for _, name := range figureNames {
		v, ok := got[name].(float64)
		if !ok || v <= 0 {
			t.Errorf("figure %s = %v, want a positive number", name, got[name])
		}
	}
	checks, _ := got["checks"].([]any)
	if len(checks) != len(targets) {
		t.Errorf("%d checks, want one per target (%d)", len(checks), len(targets))
	}
	if _, ok := got["ratios"].(map[string]any); !ok {
		t.Errorf("no ratios in %s", out.String())
	}
}

// TestTable checks the readable output on made-up figures: a target row per
// target, and a missing figure shown as missing.
func TestTable(t *testing.T) {
	t.Parallel()
	r := &results{figures: map[string]float64{"exec_per_s_seq": 6000, "ask_simple_p50_us": 9, "ask_inprocess_floor_p50_us": 2}}
	var out bytes.Buffer
	writeTable(&out, r)
	for _, want := range []string{
		"| `exec_per_s_seq` | 6000 |",
		"| exec_per_s_seq ≥ 5,000 | 6000 | 1.20 | pass |",
		"| ask_simple_p50_us ≤ 3x ask_inprocess_floor_p50_us | 4.500 | 1.50 | **FAIL** |",
		"| `startup_ms` | missing |",
	} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if err := writeJSON(io.Discard, r); err != nil {
		t.Fatal(err)
	}
}
