package web_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/web"
)

// TestValidationAnswers checks that documents and execute bodies a client
// gets wrong are answered 422 with a problem at the JSON path concerned.
func TestValidationAnswers(t *testing.T) {
	t.Parallel()
	s := newServer(t, web.Config{BodyLimit: 64 << 10})
	code, body, _ := s.do(t, "POST", "/workflows/", qaDoc)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	id := decode[map[string]any](t, body)["id"].(string)
	withVar := func(v string) string {
		return strings.Replace(qaDoc, `{"name":"topic","value":"rain"}`, `{"name":"topic","value":"rain"},`+v, 1)
	}
	code, body, _ = s.do(t, "POST", "/workflows/", withVar(`{"name":"pin","value":"","secret":true}`))
	if code != 201 {
		t.Fatalf("create with a secret: %d %s", code, body)
	}
	secretID := decode[map[string]any](t, body)["id"].(string)
	tests := []struct {
		name, method, path, body string
		wantPath, wantMessage    string
	}{
		{"short secret", "POST", "/workflows/", withVar(`{"name":"pin","value":"42","secret":true}`),
			"variables[1].value", "cannot be masked"},
		{"ask timeout 1e10", "POST", "/workflows/", strings.Replace(qaDoc, `"team":"blue"`, `"ask_timeout_seconds":1e10`, 1),
			"metadata.ask_timeout_seconds", "must be at most 604800 (a week), not 1e10"},
		{"node timeout 1e12", "PUT", "/workflows/ID", strings.Replace(qaDoc, `"system_prompt":"You teach."`, `"timeout_seconds":1e12`, 1),
			"nodes[2].config.timeout_seconds", "must be at most 604800 (a week), not 1e12"},
		{"max asks", "POST", "/workflows/", strings.Replace(qaDoc, `"team":"blue"`, `"max_asks":1e12`, 1),
			"metadata.max_asks", "must be at most 10000"},
		{"position x a word", "POST", "/workflows/", strings.Replace(qaDoc, `{"id":"start","type":"start"}`, `{"id":"start","type":"start","position":{"x":"left","y":0}}`, 1),
			"nodes[0].position.x", `must be a number, not "left"`},
		{"variable type nonsense", "POST", "/workflows/", withVar(`{"name":"n","value":"1","type":"nonsense"}`),
			"variables[1].type", `unknown type "nonsense"`},
		{"duplicate edge", "POST", "/workflows/", strings.Replace(qaDoc, `"edges":[`, `"edges":[{"from":"start","to":"student"},`, 1),
			"edges[1]", `duplicate edge from "start" to "student"`},
		{"two start nodes", "POST", "/workflows/", strings.Replace(qaDoc, `{"id":"end","type":"end"}`, `{"id":"end","type":"start"}`, 1),
			"nodes[3].type", "a workflow has one start node"},
		{"prompt null", "PUT", "/workflows/ID", strings.Replace(qaDoc, `"system_prompt":"You teach."`, `"prompt":null`, 1),
			"nodes[2].config.prompt", "must be a string, not null"},
		{"NUL in an id", "POST", "/workflows/", strings.ReplaceAll(qaDoc, `"teacher"`, `"teacher\u0000"`),
			"nodes[2].id", "may not contain control characters"},
		{"execute mode a number", "POST", "/workflows/ID/execute", `{"communication_mode":5}`,
			"communication_mode", `must be "simple" or "pubsub"`},
		{"short secret input", "POST", "/workflows/SECRET/execute", `{"inputs":{"pin":"42"}}`,
			"inputs.pin", "cannot be masked"},
		{"short secret input, async", "POST", "/workflows/SECRET/execute", `{"inputs":{"pin":"42"},"async_execution":true}`,
			"inputs.pin", "cannot be masked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := strings.ReplaceAll(strings.ReplaceAll(tt.path, "SECRET", secretID), "ID", id)
			code, body, _ := s.do(t, tt.method, path, tt.body)
			if code != 422 {
				t.Fatalf("%d %s; want 422", code, body)
			}
			var answer struct {
				Problems []struct{ Path, Message string }
			}
			if err := json.Unmarshal(body, &answer); err != nil {
				t.Fatal(err)
			}
			for _, p := range answer.Problems {
				if p.Path == tt.wantPath && strings.Contains(p.Message, tt.wantMessage) {
					return
				}
			}
			t.Fatalf("no problem at %s containing %q in %s", tt.wantPath, tt.wantMessage, body)
		})
	}
}
