package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// TestStaticGzipOnFirstUse: building the dashboard compresses nothing;
// the first request that accepts gzip makes a file's gzipped copy, once,
// however many ask at the same time; a file that does not shrink is
// served as it is.
func TestStaticGzipOnFirstUse(t *testing.T) {
	t.Parallel()
	js := strings.Repeat("function hello() { return 'world'; }\n", 200)
	noise := make([]byte, 4096) // random bytes do not compress
	r := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	assets := fstest.MapFS{
		"static/app.js":              {Data: []byte(js)},
		"static/noise.js":            {Data: noise},
		"templates/base.html":        {Data: []byte(`{{define "base"}}{{end}}`)},
		"templates/partials/p.html":  {Data: []byte(`{{define "p"}}{{end}}`)},
		"templates/pages/index.html": {Data: []byte(`{{define "content"}}{{end}}`)},
	}
	u, err := newUI(assets)
	if err != nil {
		t.Fatal(err)
	}
	a := u.static["app.js"]
	if !a.zip || a.gz != nil {
		t.Fatalf("app.js after start: zip %v, %d gzipped bytes; want a candidate not yet compressed", a.zip, len(a.gz))
	}
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() { got[i] = a.gzipped() })
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) == 0 || &got[i][0] != &got[0][0] {
			t.Fatalf("request %d got another gzipped copy (%d bytes)", i, len(got[i]))
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(got[0]))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != js {
		t.Fatalf("gzipped app.js reads back as %d bytes (err %v), want the file", len(plain), err)
	}
	if n := u.static["noise.js"]; !n.zip || n.gzipped() != nil {
		t.Errorf("noise.js: zip %v, gzipped %d bytes; want it served as it is", n.zip, len(n.gzipped()))
	}
}
