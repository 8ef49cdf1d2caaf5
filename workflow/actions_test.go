package workflow_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// actionDoc is a workflow of a start node and one node of the given type
// and config, with extra edges from the node (JSON objects).
func actionDoc(typ, config string, edges ...string) string {
	es := append([]string{`{"from":"s","to":"n"}`}, edges...)
	return `{"name":"a","nodes":[{"id":"s","type":"start"},{"id":"n","type":"` + typ + `","config":` + config + `},` +
		`{"id":"x","type":"end"},{"id":"y","type":"end"}],"edges":[` + strings.Join(es, ",") + `]}`
}

// TestActionNodeValidation: every mistake in an action node's config or
// in the when of an edge is a problem at its JSON path, and a good config
// of every type (the original service's keys included) passes.
func TestActionNodeValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		doc  string
		want map[string]string // path → part of the message; empty: valid
	}{
		{"webhook with the original's keys", actionDoc("webhook", `{"url":"https://api.example.com/v1/{{workflow_id}}","method":"POST",
			"headers":{"X-Workflow-ID":"{{workflow_id}}"},"body":{"results":{"ai":"{{outputs.s}}"}},"params":{"source":"workflow","v":1},
			"auth":{"type":"bearer","token":"{{api_token}}"},"timeout":30,"retries":3,"retry_delay":2,"expected_status":[200,201,202]}`), nil},
		{"http basic and api_key", actionDoc("http", `{"url":"http://h.example/x","auth":{"type":"api_key","key":"k","header":"X-Key"},"expected_status":204}`), nil},
		{"http problems", actionDoc("http", `{"url":"ftp://h/x","method":"FETCH","headers":{"bad header":"v","X":1},
			"timeout":1000,"retries":50,"retry_delay":-1,"expected_status":[200,"ok",99],"auth":{"type":"oauth"}}`),
			map[string]string{
				"nodes[1].config.url": "http:// or https://", "nodes[1].config.method": "FETCH",
				"nodes[1].config.headers": `"bad header" is not a header name`, "nodes[1].config.headers.X": "must be a string",
				"nodes[1].config.timeout": "at most 300", "nodes[1].config.retries": "at most 10",
				"nodes[1].config.retry_delay": "positive number", "nodes[1].config.expected_status[1]": "HTTP status",
				"nodes[1].config.expected_status[2]": "HTTP status", "nodes[1].config.auth.type": "basic, bearer or api_key",
			}},
		{"http without url", actionDoc("http", `{}`), map[string]string{"nodes[1].config.url": "is required"}},
		{"http GET with a body", actionDoc("http", `{"url":"http://h/x","method":"GET","body":{"a":1}}`),
			map[string]string{"nodes[1].config.body": "GET request has no body"}},
		{"http auth fields", actionDoc("http", `{"url":"http://h/x","auth":{"type":"basic"}}`),
			map[string]string{"nodes[1].config.auth.username": "is required"}},
		{"email with the original's keys", actionDoc("email", `{"to":"{{user_email}}","cc":"a@x.org,b@x.org","bcc":"audit@x.org",
			"from":"wf@x.org","subject":"{{workflow_id}} done","body":"<b>hi</b>","format":"html","retries":3,"retry_delay":2}`), nil},
		{"email recipients as lists", actionDoc("email", `{"to":["a@x.org","{{user_email}}"],"bcc":["audit@x.org"],"subject":"s"}`), nil},
		{"email list problems", actionDoc("email", `{"to":["a@x.org",5],"cc":[],"subject":"s"}`),
			map[string]string{"nodes[1].config.to[1]": "must be a string"}},
		{"email problems", actionDoc("email", `{"subject":5,"format":"pdf","smtp":{"host":"evil"}}`),
			map[string]string{"nodes[1].config.to": "is required", "nodes[1].config.subject": "must be a string",
				"nodes[1].config.format": "text", "nodes[1].config.smtp": "set by the operator"}},
		{"delay", actionDoc("delay", `{"seconds":2.5}`), nil},
		{"delay over a day", actionDoc("delay", `{"seconds":90000}`), map[string]string{"nodes[1].config.seconds": "at most 86400"}},
		{"delay without seconds", actionDoc("delay", `{}`), map[string]string{"nodes[1].config.seconds": "is required"}},
		{"condition", actionDoc("condition", `{"condition":"inputs.x > 1 && shared.k == 'a'"}`,
			`{"from":"n","to":"x","when":"true"}`, `{"from":"n","to":"y","when":"false"}`), nil},
		{"condition syntax error", actionDoc("condition", `{"condition":"inputs.x >"}`, `{"from":"n","to":"x","when":"true"}`),
			map[string]string{"nodes[1].config.condition": "does not compile"}},
		{"condition unknown name", actionDoc("condition", `{"expression":"score > 1"}`, `{"from":"n","to":"x","when":"true"}`),
			map[string]string{"nodes[1].config.expression": "score"}},
		{"condition edges need when", actionDoc("condition", `{"condition":"true"}`, `{"from":"n","to":"x"}`, `{"from":"n","to":"y","when":" x"}`),
			map[string]string{"edges[1].when": "needs \"when\"", "edges[2].when": "surrounding spaces"}},
		{"when only leaves conditions", actionDoc("transformer", `{"template":{"a":"{{x}}"}}`, `{"from":"n","to":"x","when":"true"}`),
			map[string]string{"edges[1].when": "only an edge leaving a condition"}},
		{"when must be a string", actionDoc("condition", `{"condition":"true"}`, `{"from":"n","to":"x","when":true}`),
			map[string]string{"edges[1].when": "must be a string"}},
		{"filter must be boolean", actionDoc("filter", `{"condition":"'text'"}`), map[string]string{"nodes[1].config.condition": "does not compile"}},
		{"transformer needs one of template or expression", actionDoc("transformer", `{}`), map[string]string{"nodes[1].config.template": "is required"}},
		{"transformer both", actionDoc("transformer", `{"template":1,"expression":"1"}`), map[string]string{"nodes[1].config": "not both"}},
		{"transformer expression", actionDoc("transformer", `{"expression":"{'n': len(inputs)}"}`), nil},
		{"outputs of a node that does not run before", actionDoc("email", `{"to":"a@x.org","subject":"{{outputs.x}}","body":"{{outputs.s.k}} {{outputs.nope}}"}`, `{"from":"n","to":"x"}`),
			map[string]string{"nodes[1].config.subject": `needs node "x" to run before "n"`, "nodes[1].config.body": `node "nope", which is not in this workflow`}},
		{"outputs deep in a body", actionDoc("http", `{"url":"http://h/x","body":{"a":[{"b":"{{outputs.y}}"}]}}`),
			map[string]string{"nodes[1].config.body.a[0].b": `needs node "y"`}},
		{"unknown type names the types", actionDoc("slack", `{}`), map[string]string{"nodes[1].type": "http (or webhook), condition, filter"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := workflow.Parse([]byte(tc.doc))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var we *workflow.Error
			if !errors.As(err, &we) || we.Code != workflow.CodeInvalid {
				t.Fatalf("want an invalid error, got %v", err)
			}
			got := map[string]string{}
			for _, p := range we.Problems {
				got[p.Path] += p.Message + "; "
			}
			for path, part := range tc.want {
				if !strings.Contains(got[path], part) {
					t.Errorf("%s: got %q, want it to hold %q", path, got[path], part)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("problems %v, want only at %v", got, tc.want)
			}
		})
	}
}

func TestBranchLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    any
		want string
	}{{true, "true"}, {false, "false"}, {"urgent", "urgent"}, {3, "3"}, {float64(4), "4"}} {
		if got, err := workflow.BranchLabel(tc.v); err != nil || got != tc.want {
			t.Errorf("BranchLabel(%v) = %q, %v; want %q", tc.v, got, err, tc.want)
		}
	}
	for _, v := range []any{nil, "", 1.5, []any{1}, map[string]any{}} {
		if _, err := workflow.BranchLabel(v); err == nil {
			t.Errorf("BranchLabel(%#v): no error", v)
		}
	}
}

// TestTimestampPlaceholder: {{timestamp}}, which the original service's
// webhook and email nodes offered, renders the time now (RFC 3339, UTC),
// unless a variable has that name.
func TestTimestampPlaceholder(t *testing.T) {
	t.Parallel()
	before := time.Now().UTC().Truncate(time.Second)
	out, err := workflow.Render("at {{timestamp}}", workflow.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, strings.TrimPrefix(out, "at "))
	if err != nil || at.Before(before) || at.Location() != time.UTC {
		t.Errorf("rendered %q (%v)", out, err)
	}
	if out, _ := workflow.Render("{{timestamp}}", workflow.Scope{Vars: map[string]any{"timestamp": "given"}}); out != "given" {
		t.Errorf("a variable named timestamp: %q", out)
	}
}

// FuzzActionConfig: no config of an action node, nor any when, makes
// Parse panic; a config Parse accepts reads back without panicking too.
func FuzzActionConfig(f *testing.F) {
	f.Add("webhook", `{"url":"https://h/{{x}}","auth":{"type":"basic","username":"u"},"expected_status":[200],"body":{"a":["{{outputs.s}}"]}}`, "")
	f.Add("condition", `{"condition":"inputs.x > 1 ? 'a' : 'b'"}`, "a")
	f.Add("filter", `{"expression":"len(input) > 0"}`, "")
	f.Add("transformer", `{"template":{"k":"{{outputs.s.x}}"}}`, "")
	f.Add("email", `{"to":"a@b","subject":"s","format":"html","retries":2}`, "")
	f.Add("delay", `{"seconds":1e308}`, "")
	f.Fuzz(func(t *testing.T, typ, config, when string) {
		doc := `{"name":"f","nodes":[{"id":"s","type":"start"},{"id":"n","type":` + strconvQuote(typ) + `,"config":` + config +
			`},{"id":"x","type":"end"}],"edges":[{"from":"s","to":"n"},{"from":"n","to":"x","when":` + strconvQuote(when) + `}]}`
		w, err := workflow.Parse([]byte(doc))
		if err != nil || w == nil {
			return
		}
		n := w.Node("n")
		_, _, _, _ = n.ReadHTTP(), n.ReadEmail(), n.Expression(), n.DelaySeconds()
	})
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
