package web_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/web"
)

// editorPost sends a document as the editor's script does: JSON, with the
// CSRF header from the page.
func (c *uiClient) editorPost(path, doc string) (int, string) {
	c.t.Helper()
	if c.csrf == "" {
		c.get("/ui/workflows")
	}
	code, body, _ := c.do("POST", path, strings.NewReader(doc), map[string]string{
		"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": c.csrf})
	return code, body
}

type editorAnswer struct {
	Valid    bool
	Detail   string
	Problems []struct{ Path, Message string }
	ID       string
	URL      string
	EditURL  string `json:"edit_url"`
}

func (a editorAnswer) has(path, msg string) bool {
	for _, p := range a.Problems {
		if p.Path == path && strings.Contains(p.Message, msg) {
			return true
		}
	}
	return false
}

// TestUIEditorPages checks the editor's pages: the new one starts from an
// empty canvas, the edit one holds the document with secrets masked, and
// both load the editor module by its checksummed URL.
func TestUIEditorPages(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	withSecret := strings.Replace(uiDoc, `"variables":[`, `"variables":[{"name":"api_key","value":"sk-very-secret-value","secret":true},`, 1)
	code, body, _ := s.do(t, "POST", "/workflows/", withSecret)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	id := decode[map[string]any](t, body)["id"].(string)

	code, page, _ := c.get("/ui/workflows/new")
	if code != 200 {
		t.Fatalf("new: %d", code)
	}
	mustContain(t, "the new workflow's editor", page, `id="wf-editor"`, `data-module="/ui/static/editor/editor.js?v=`,
		`data-types="/ui/static/editor/types.js?v=`, `data-validate-url="/ui/workflows/new/validate"`, `data-save-url="/ui/workflows/new"`,
		`&#34;nodes&#34;: []`, `<label for="ed-json">`)
	code, page, _ = c.get("/ui/workflows/" + id + "/edit")
	if code != 200 {
		t.Fatalf("edit: %d", code)
	}
	mustContain(t, "the workflow's editor", page, `data-validate-url="/ui/workflows/`+id+`/validate"`, `data-save-url="/ui/workflows/`+id+`/document"`,
		`&#34;id&#34;: &#34;student&#34;`, "••••")
	if strings.Contains(page, "sk-very-secret-value") {
		t.Errorf("the editor page shows a secret value")
	}
	_, list, _ := c.get("/ui/workflows")
	mustContain(t, "the list", list, `href="/ui/workflows/new"`)
	_, wf, _ := c.get("/ui/workflows/" + id)
	mustContain(t, "the workflow page", wf, `href="/ui/workflows/`+id+`/edit"`)
	if code, _, _ := c.get("/ui/workflows/nosuch/edit"); code != 404 {
		t.Errorf("editor of a missing workflow: %d", code)
	}
	code, js, hdr := c.get("/ui/static/editor/types.js")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/javascript") || !strings.Contains(js, "export const nodeTypes") {
		t.Errorf("types.js: %d %s", code, hdr.Get("Content-Type"))
	}
}

// TestUIEditorValidateAndSave checks the editor's endpoints: problems come
// back with their JSON paths (200: they are the answer), a save of an
// invalid document is refused with them and stores nothing, a valid one is
// created then updated, and a masked secret keeps the stored value.
func TestUIEditorValidateAndSave(t *testing.T) {
	t.Parallel()
	s, c := newUI(t, web.Config{})
	bad := strings.Replace(uiDoc, `"edges":[`, `"edges":[{"from":"student","to":"ghost"},`, 1)
	bad = strings.Replace(bad, `"name":"Teacher",`, `"name":"Teacher","temperature":"hot",`, 1)
	tests := []struct {
		name, doc string
		valid     bool
		path, msg string
	}{
		{"valid", uiDoc, true, "", ""},
		{"edge to nowhere", bad, false, "edges[0].to", `no node has that id`},
		{"field of a node", bad, false, "nodes[2].config.temperature", `must be a number, not "hot"`},
		{"empty canvas", `{"name":"x","nodes":[],"edges":[]}`, false, "nodes", "at least one node"},
		{"not JSON", `{"name":`, false, "", "malformed JSON"},
		{"output not upstream", strings.Replace(uiDoc, `"system_prompt":"You teach."`, `"prompt":"{{outputs.student}}"`, 1), false,
			"nodes[2].config.prompt", `needs node "student" to run before "teacher"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := c.editorPost("/ui/workflows/new/validate", tt.doc)
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			a := decode[editorAnswer](t, []byte(body))
			if a.Valid != tt.valid {
				t.Fatalf("valid %v, want %v: %s", a.Valid, tt.valid, body)
			}
			if !tt.valid && !a.has(tt.path, tt.msg) {
				t.Errorf("no problem at %q containing %q: %s", tt.path, tt.msg, body)
			}
		})
	}

	code, body := c.editorPost("/ui/workflows/new", bad)
	if code != 422 || !decode[editorAnswer](t, []byte(body)).has("edges[0].to", "no node has that id") {
		t.Fatalf("save of an invalid document: %d %s", code, body)
	}
	if n, _ := s.db.CountWorkflows(t.Context()); n != 0 {
		t.Fatalf("a refused save stored %d workflows", n)
	}

	withSecret := strings.Replace(uiDoc, `"variables":[`, `"variables":[{"name":"api_key","value":"sk-very-secret-value","secret":true},`, 1)
	code, body = c.editorPost("/ui/workflows/new", withSecret)
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	a := decode[editorAnswer](t, []byte(body))
	if a.ID == "" || a.URL != "/ui/workflows/"+a.ID || a.EditURL != "/ui/workflows/"+a.ID+"/edit" {
		t.Fatalf("create answered %s", body)
	}
	// The editor sends back what it was shown: the secret masked.
	_, page, _ := c.get("/ui/workflows/" + a.ID + "/edit")
	if !strings.Contains(page, "••••") {
		t.Fatalf("the secret is not masked on the page")
	}
	shown := strings.Replace(withSecret, "sk-very-secret-value", "••••", 1)
	shown = strings.Replace(shown, `"name":"qa"`, `"name":"qa, edited"`, 1)
	code, body = c.editorPost("/ui/workflows/"+a.ID+"/validate", shown)
	if code != 200 || !decode[editorAnswer](t, []byte(body)).Valid {
		t.Fatalf("validate with the mask: %d %s", code, body)
	}
	code, body = c.editorPost("/ui/workflows/"+a.ID+"/document", shown)
	if code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	w, err := s.db.GetWorkflow(t.Context(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "qa, edited" || w.Variables[0].Value != "sk-very-secret-value" {
		t.Errorf("stored after the update: name %q, secret %v", w.Name, w.Variables[0].Value)
	}
	if n, _ := s.db.CountWorkflows(t.Context()); n != 1 {
		t.Errorf("%d workflows stored, want 1", n)
	}
	if code, body := c.editorPost("/ui/workflows/nosuch/document", uiDoc); code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("update of a missing workflow: %d %s", code, body)
	}
	var answer map[string]any
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Errorf("a failed save is not answered in JSON: %s", body)
	}
}

// TestUIEditorNeedsCSRFAndLogin checks that the editor's endpoints are
// behind the dashboard's login and its CSRF token.
func TestUIEditorNeedsCSRFAndLogin(t *testing.T) {
	t.Parallel()
	_, c := newUI(t, web.Config{})
	c.get("/ui/workflows")
	for _, path := range []string{"/ui/workflows/new/validate", "/ui/workflows/new"} {
		code, body, _ := c.do("POST", path, strings.NewReader(uiDoc), map[string]string{"Content-Type": "application/json", "X-CSRF-Token": "forged"})
		if code != 403 {
			t.Errorf("%s with a forged token: %d %s", path, code, body)
		}
	}
	_, anon := newUI(t, web.Config{Token: "s3cret-token"})
	code, _, hdr := anon.do("POST", "/ui/workflows/new/validate", strings.NewReader(uiDoc), map[string]string{"Content-Type": "application/json"})
	if code != 303 || !strings.HasPrefix(hdr.Get("Location"), "/ui/login") {
		t.Errorf("validate without a login: %d %s", code, hdr.Get("Location"))
	}
	code, _, hdr = anon.get("/ui/workflows/new")
	if code != 303 || !strings.HasPrefix(hdr.Get("Location"), "/ui/login") {
		t.Errorf("the editor without a login: %d %s", code, hdr.Get("Location"))
	}
}
