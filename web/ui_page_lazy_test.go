package web

import (
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// TestPagesBuiltOnFirstUse: building the dashboard makes no page's
// template; the first render of a page makes it once, however many render
// it at the same time, after fragments have been rendered already; and a
// page that does not parse fails the start.
func TestPagesBuiltOnFirstUse(t *testing.T) {
	t.Parallel()
	assets := fstest.MapFS{
		"templates/base.html":        {Data: []byte(`{{define "base"}}<main>{{template "content" .}}</main>{{end}}`)},
		"templates/partials/p.html":  {Data: []byte(`{{define "frag"}}<b>{{.}}</b>{{end}}`)},
		"templates/pages/one.html":   {Data: []byte(`{{define "content"}}one {{template "frag" .}}{{end}}`)},
		"templates/pages/two.html":   {Data: []byte(`{{define "content"}}two{{end}}`)},
		"static/favicon.svg":         {Data: []byte(`<svg/>`)},
		"templates/partials/q.html":  {Data: []byte(`{{define "other"}}x{{end}}`)},
		"templates/pages/three.html": {Data: []byte(`{{define "content"}}three{{end}}`)},
	}
	u, err := newUI(assets)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range u.pages {
		if p.t != nil {
			t.Errorf("page %s was built at start", name)
		}
	}
	// A fragment first: html/template cannot clone a set once it has run.
	if got, err := u.render("", "frag", "<x>"); err != nil || got != "<b>&lt;x&gt;</b>" {
		t.Fatalf("fragment: %q, %v", got, err)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() { got[i], _ = u.render("one", "base", "<y>") })
	}
	wg.Wait()
	for i, g := range got {
		if g != "<main>one <b>&lt;y&gt;</b></main>" {
			t.Errorf("render %d of page one: %q", i, g)
		}
	}
	if g, err := u.render("two", "base", nil); err != nil || g != "<main>two</main>" {
		t.Errorf("page two: %q, %v", g, err)
	}
	if u.pages["three"].t != nil {
		t.Error("page three was built without being rendered")
	}

	assets["templates/pages/bad.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{nosuchfunc}}{{end}}`)}
	if _, err := newUI(assets); err == nil || !strings.Contains(err.Error(), "bad.html") {
		t.Errorf("a page that does not parse: err %v, want one naming bad.html", err)
	}
}
