package web_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVendoredAssets checks that the vendored htmx files are exactly the
// files of the pinned npm packages (sums taken from the tarballs; see
// static/vendor/VERSIONS.md and .ci/vendor-check).
func TestVendoredAssets(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"htmx.min.js":          "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717", // htmx.org 2.0.11 package/dist/htmx.min.js
		"htmx.LICENSE":         "d3d2456f76414f2456104660ebd65aff1c04cd7966b942bdabd63f3cdb316a38", // htmx.org 2.0.11 package/LICENSE
		"htmx-ext-sse.js":      "3b5992a541619babefc4c169505af474df5c3039da51e59b96ccf9241ecd61d2", // htmx-ext-sse 2.2.4 package/dist/sse.js
		"htmx-ext-sse.LICENSE": "a17d224ce9afdc21ec9491b76a2f5d036d19aa641ac4f85ca29c21f9f7e54fdf", // htmx-ext-sse 2.2.4 package/LICENSE
	}
	dir := filepath.Join("static", "vendor")
	for name, sum := range want {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("vendored file missing: %v", err)
			continue
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: sha256 %x, want %s (the pinned package's file); run .ci/vendor-check", name, got, sum)
		}
	}
	htmx, err := os.ReadFile(filepath.Join(dir, "htmx.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(htmx), `version:"2.0.11"`) {
		t.Errorf("htmx.min.js does not say it is version 2.0.11")
	}
	notes, err := os.ReadFile(filepath.Join(dir, "VERSIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, sum := range want {
		if !strings.Contains(string(notes), sum) {
			t.Errorf("VERSIONS.md does not record the sum of %s", name)
		}
	}
}
