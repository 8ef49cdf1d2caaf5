package workflow_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

const graphDoc = `{"name":"g","nodes":[
 {"id":"end","type":"end","config":{}},
 {"id":"b","type":"ai-processor","config":{"prompt":"{{outputs.a}}","temperature":0.5,"max_tokens":300,"timeout_seconds":2.5,"can_communicate":true,"x-custom":{"keep":[1,"me"]}}},
 {"id":"a","type":"ai-processor","config":{"name":"Alpha","system_prompt":"You are A.","model":"m1"}},
 {"id":"start","type":"start","position":{"x":1,"y":2,"z":"kept"},"config":{}}],
 "edges":[{"from":"start","to":"a"},{"from":"a","to":"b"},{"from":"b","to":"end"},{"from":"start","to":"end"}]}`

func TestGraphIsBuiltOnceAtParse(t *testing.T) {
	t.Parallel()
	w, err := workflow.Parse([]byte(graphDoc))
	if err != nil {
		t.Fatal(err)
	}
	g := w.Graph()
	if g != w.Graph() {
		t.Fatal("Graph built again for an unchanged parsed workflow")
	}
	if want := []int{3, 2, 1, 0}; !reflect.DeepEqual(g.Order, want) {
		t.Errorf("order %v, want %v", g.Order, want)
	}
	if !reflect.DeepEqual(g.Parents, [][]int{{1, 3}, {2}, {3}, nil}) {
		t.Errorf("parents %v", g.Parents)
	}
	if !reflect.DeepEqual(g.Children, [][]int{nil, {0}, {1}, {2, 0}}) {
		t.Errorf("children %v", g.Children)
	}
	if g.Index["a"] != 2 || len(g.Dangling) != 0 || g.Err() != nil {
		t.Errorf("index %v dangling %v err %v", g.Index, g.Dangling, g.Err())
	}
	b, a := g.AI[1], g.AI[2]
	if b.Name != "b" || b.Prompt != "{{outputs.a}}" || *b.Temperature != 0.5 || b.MaxTokens != 300 ||
		b.Timeout != 2500*time.Millisecond || !b.CanCommunicate {
		t.Errorf("b's typed config %+v", b)
	}
	if a.Name != "Alpha" || a.SystemPrompt != "You are A." || a.Model != "m1" || a.CanCommunicate {
		t.Errorf("a's typed config %+v", a)
	}

	// A clone shares the graph; a changed node list gets a new one.
	c := w.Clone()
	if cg := c.Graph(); cg == g || !reflect.DeepEqual(cg.Order, g.Order) || cg.AI[1].Prompt != b.Prompt {
		t.Errorf("the clone's graph %+v", cg)
	}
	c.Nodes = append(c.Nodes, workflow.Node{ID: "z", Type: workflow.NodeEnd})
	if cg := c.Graph(); len(cg.AI) != 5 || cg.Index["z"] != 4 {
		t.Errorf("graph of a grown clone: %+v", cg)
	}
}

// TestTypedConfigKeepsTheDocument: typing the configs changes nothing in
// the document, so it is written back as it was read, unknown keys too.
func TestTypedConfigKeepsTheDocument(t *testing.T) {
	t.Parallel()
	w, err := workflow.Parse([]byte(graphDoc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var in, back map[string]any
	if err := json.Unmarshal([]byte(graphDoc), &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in["nodes"], back["nodes"]) || !reflect.DeepEqual(in["edges"], back["edges"]) {
		t.Fatalf("nodes or edges changed:\n in %v\nout %v", in["nodes"], back["nodes"])
	}
}

func TestGraphOfInvalidWorkflows(t *testing.T) {
	t.Parallel()
	w := wf([]string{"s", "a", "a"}, [2]string{"s", "a"}, [2]string{"s", "a"}, [2]string{"s", "ghost"})
	g := w.Graph()
	if !reflect.DeepEqual(g.Parents, [][]int{nil, {0}, nil}) || !reflect.DeepEqual(g.Dangling, []int{2}) {
		t.Errorf("parents %v dangling %v", g.Parents, g.Dangling)
	}
	if !reflect.DeepEqual(g.Order, []int{0, 1}) || g.Err() != nil {
		t.Errorf("order %v err %v", g.Order, g.Err())
	}
}
