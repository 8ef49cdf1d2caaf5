package workflow

import (
	"encoding/json"
	"reflect"
	"testing"
)

// A clone equals its original, and changing anything in it, however deep,
// leaves the original as it was.
func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	w, err := Parse([]byte(`{"name": "c", "metadata": {"communication_mode": "pubsub", "tags": ["a", {"k": "v"}]},
		"nodes": [{"id": "a", "type": "ai-processor", "position": {"x": 1}, "config": {"prompt": "p", "nested": {"list": [1, 2]}}},
			{"id": "b", "type": "end"}],
		"edges": [{"from": "a", "to": "b"}],
		"variables": [{"name": "v", "value": {"deep": ["x"]}, "secret": true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := Parse([]byte(mustJSON(t, w)))
	c := w.Clone()
	if !reflect.DeepEqual(c, w) {
		t.Fatalf("clone differs:\n%s\n%s", mustJSON(t, c), mustJSON(t, w))
	}
	c.Name = "changed"
	c.Metadata["tags"].([]any)[1].(map[string]any)["k"] = "changed"
	c.Nodes[0].Position["x"] = 2
	c.Nodes[0].Config["nested"].(map[string]any)["list"].([]any)[0] = "changed"
	c.Nodes = append(c.Nodes[:1], Node{ID: "z"})
	c.Edges[0].To = "z"
	c.Variables[0].Value.(map[string]any)["deep"].([]any)[0] = "changed"
	if got, want := mustJSON(t, w), mustJSON(t, orig); got != want {
		t.Fatalf("changing the clone changed the original:\n got %s\nwant %s", got, want)
	}
}

func mustJSON(t *testing.T, w *Workflow) string {
	t.Helper()
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
