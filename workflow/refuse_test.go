package workflow_test

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

// refuseDoc is a valid workflow with one ai-processor node a; tests put a
// fault into it by replacing one of its parts.
const refuseDoc = `{"name":"x","metadata":{META},"nodes":[{"id":"start","type":"start","position":{"x":0,"y":0}},
 {"id":"a","type":"ai-processor","config":{CONFIG}}],
 "edges":[{"from":"start","to":"a"}],"variables":[{"name":"topic","value":"bees"},VAR]}`

func refuse(meta, config, variable string) string {
	r := strings.NewReplacer("META", meta, "CONFIG", config, "VAR", variable)
	return r.Replace(refuseDoc)
}

// wantProblem parses doc and checks that it is refused with a problem at
// path whose message contains msg.
func wantProblem(t *testing.T, doc, path, msg string) {
	t.Helper()
	_, err := workflow.Parse([]byte(doc))
	if workflow.ErrorCode(err) != workflow.CodeInvalid {
		t.Fatalf("want invalid, got %v", err)
	}
	for _, p := range workflow.ErrorProblems(err) {
		if p.Path == path && strings.Contains(p.Message, msg) {
			return
		}
	}
	t.Fatalf("no problem at %s containing %q; got %q", path, msg, workflow.ErrorProblems(err))
}

func wantValid(t *testing.T, doc string) *workflow.Workflow {
	t.Helper()
	w, err := workflow.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("want valid, got %v", err)
	}
	return w
}

func TestShortSecretsAreRefused(t *testing.T) {
	for _, v := range []string{`"ab"`, `"x"`, `42`} {
		wantProblem(t, refuse(``, ``, `{"name":"key","value":`+v+`,"secret":true}`),
			"variables[1].value", "cannot be masked")
	}
	for _, v := range []string{`"abc"`, `""`, `null`, `"••••"`} {
		wantValid(t, refuse(``, ``, `{"name":"key","value":`+v+`,"secret":true}`))
	}
	// Not a secret: any length.
	wantValid(t, refuse(``, ``, `{"name":"key","value":"ab"}`))
}
