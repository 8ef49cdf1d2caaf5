package workflow_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/workflow"
)

// sharedDir returns ../shared/compat/original-examples, skipping when it is
// absent outside CI (a user's clone has no ../shared).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "compat", "original-examples")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: %v", dir, err)
		}
		t.Skipf("skipping: %s not present (it exists on the team's machines and in CI)", dir)
	}
	return dir
}

func TestParseOriginalExamples(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(sharedDir(t), "*.json"))
	if len(files) != 4 {
		t.Fatalf("want 4 original examples, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			w, err := workflow.Parse(data)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if w.Metadata["author"] != "ChasmX Team" {
				t.Errorf("metadata keys not kept: %v", w.Metadata)
			}
			if _, err := workflow.Order(w); err != nil {
				t.Errorf("order: %v", err)
			}
		})
	}
}

func TestParseProjectExamples(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	if len(files) < 4 {
		t.Fatalf("want at least 4 project examples, found %d", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := workflow.Parse(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

const validDoc = `{"name":"ok","nodes":[{"id":"start","type":"start"},{"id":"a","type":"ai-processor","config":{"prompt":"hi"}}],"edges":[{"from":"start","to":"a"}]}`

func TestValidationProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want []workflow.Problem // each must be present
	}{
		{"missing name", `{"nodes":[{"id":"a","type":"start"}]}`,
			[]workflow.Problem{{Path: "name", Message: "a workflow needs a name"}}},
		{"not an object", `[1,2]`,
			[]workflow.Problem{{Path: "", Message: "the document must be a JSON object, not an array"}}},
		{"nodes not array", `{"name":"x","nodes":{}}`,
			[]workflow.Problem{{Path: "nodes", Message: "must be an array, not an object"}}},
		{"duplicate id", `{"name":"x","nodes":[{"id":"a","type":"start"},{"id":"a","type":"end"}]}`,
			[]workflow.Problem{{Path: "nodes[1].id", Message: `duplicate node id "a" (also nodes[0])`}}},
		{"edge to missing node", `{"name":"x","nodes":[{"id":"a","type":"start"}],"edges":[{"from":"a","to":"ghost"}]}`,
			[]workflow.Problem{{Path: "edges[0].to", Message: `edge to "ghost": no node has that id`}}},
		{"cycle", `{"name":"x","nodes":[{"id":"s","type":"start"},{"id":"a","type":"end"},{"id":"b","type":"end"}],"edges":[{"from":"s","to":"a"},{"from":"a","to":"b"},{"from":"b","to":"a"}]}`,
			[]workflow.Problem{{Path: "edges", Message: "the edges form a cycle: a → b → a"}}},
		{"unknown type", `{"name":"x","nodes":[{"id":"a","type":"http-request"}]}`,
			[]workflow.Problem{{Path: "nodes[0].type", Message: `unknown node type "http-request"; this version runs start, end, ai-processor, human, http (or webhook), condition, filter, transformer, delay or email`}}},
		{"temperature not a number", `{"name":"x","nodes":[{"id":"a","type":"ai-processor","config":{"temperature":"hot"}}]}`,
			[]workflow.Problem{{Path: "nodes[0].config.temperature", Message: `must be a number, not "hot"`}}},
		{"max_tokens fraction", `{"name":"x","nodes":[{"id":"a","type":"ai-processor","config":{"max_tokens":1.5}}]}`,
			[]workflow.Problem{{Path: "nodes[0].config.max_tokens", Message: "must be a positive whole number, not 1.5"}}},
		{"can_communicate string", `{"name":"x","nodes":[{"id":"a","type":"ai-processor","config":{"can_communicate":"yes"}}]}`,
			[]workflow.Problem{{Path: "nodes[0].config.can_communicate", Message: `must be true or false, not "yes"`}}},
		{"ask target missing", `{"name":"x","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"CALL: ask_node('ghost', 'hi?')"}}]}`,
			[]workflow.Problem{{Path: "nodes[0].config.prompt", Message: `ask_node target "ghost" is not a node of this workflow`}}},
		{"ask target not ai", `{"name":"x","nodes":[{"id":"s","type":"start"},{"id":"a","type":"ai-processor","config":{"prompt":"see CALL: ask_node(\"s\", 'hi?') now"}}]}`,
			[]workflow.Problem{{Path: "nodes[1].config.prompt", Message: `ask_node target "s" is a start node; only ai-processor and human nodes can answer`}}},
		{"bad mode", `{"name":"x","metadata":{"communication_mode":"carrier-pigeon"},"nodes":[{"id":"a","type":"start"}]}`,
			[]workflow.Problem{{Path: "metadata.communication_mode", Message: `must be "simple" or "pubsub", not "carrier-pigeon"`}}},
		{"outputs of a later node", `{"name":"x","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"{{outputs.b}}"}},{"id":"b","type":"ai-processor"}]}`,
			[]workflow.Problem{{Path: "nodes[0].config.prompt", Message: `{{outputs.b}} needs node "b" to run before "a": add a path of edges from it`}}},
		{"unknown top-level field", `{"name":"x","edge":[],"nodes":[{"id":"a","type":"start"}]}`,
			[]workflow.Problem{{Path: "edge", Message: "unknown field; a workflow has name, status, metadata, nodes, edges and variables"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := workflow.Parse([]byte(tt.doc))
			if workflow.ErrorCode(err) != workflow.CodeInvalid {
				t.Fatalf("want invalid, got %v", err)
			}
			got := workflow.ErrorProblems(err)
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					if g == w {
						found = true
					}
				}
				if !found {
					t.Errorf("missing problem %q\n got: %q", w, got)
				}
			}
		})
	}
}

func TestValidationReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	doc := `{"nodes":[{"id":"a","type":"bogus"},{"id":"a","type":"ai-processor","config":{"temperature":"x"}}],"edges":[{"from":"a","to":"zz"}]}`
	_, err := workflow.Parse([]byte(doc))
	if n := len(workflow.ErrorProblems(err)); n < 5 {
		t.Fatalf("want at least 5 problems, got %d: %v", n, err)
	}
}

func TestMalformedJSON(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{``, `{`, `{"name": }`, `{"name":"x"} trailing`} {
		_, err := workflow.Parse([]byte(doc))
		if workflow.ErrorCode(err) != workflow.CodeMalformed {
			t.Errorf("%q: want malformed, got %v", doc, err)
		}
	}
	_, err := workflow.Parse([]byte("{\n  \"name\": ,\n}"))
	if !strings.Contains(err.Error(), "line 2") {
		t.Errorf("want line number in %q", err)
	}
}

func TestValidDoc(t *testing.T) {
	t.Parallel()
	w, err := workflow.Parse([]byte(validDoc))
	if err != nil {
		t.Fatal(err)
	}
	if w.Mode() != workflow.ModeSimple {
		t.Errorf("default mode: %q", w.Mode())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(validDoc))
	f.Add([]byte(`{"name":"x","nodes":[{"id":"a","type":"ai-processor","config":{"prompt":"{{outputs.a.b}} CALL: ask_node('a','b')"}}],"edges":[{"from":"a","to":"a"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := workflow.Parse(data)
		if err == nil {
			if _, err := workflow.Order(w); err != nil {
				t.Fatalf("valid workflow failed to order: %v", err)
			}
			// Every node of a valid workflow is ordered after its parents.
			g := w.Graph()
			at := make([]int, len(w.Nodes))
			for k, i := range g.Order {
				at[i] = k
			}
			if len(g.Order) != len(w.Nodes) {
				t.Fatalf("order %v of %d nodes", g.Order, len(w.Nodes))
			}
			for i, ps := range g.Parents {
				for _, p := range ps {
					if at[p] >= at[i] {
						t.Fatalf("node %d ordered before its parent %d", i, p)
					}
				}
			}
		}
	})
}
