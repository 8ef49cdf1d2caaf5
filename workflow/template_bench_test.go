package workflow

import "testing"

func BenchmarkRender(b *testing.B) {
	sc := Scope{
		Vars:    map[string]any{"question_topic": "photosynthesis", "n": 3.0},
		Outputs: map[string]any{"student": "[demo model] Final answer from Student, using the results of my calls.", "data": map[string]any{"rows": []any{1.0, 2.0}}},
		Shared:  func(k string) (any, bool) { return "shared value", k == "topic" },
	}
	text := "You want to understand {{question_topic}}. Ask the teacher with CALL: ask_node('teacher', " +
		"'Can you explain {{question_topic}} in two sentences?'). Your student wrote: {{outputs.student}} " +
		"({{outputs.data.rows}}, topic {{shared.topic}}, n={{ n }}). Leave {\"json\": true} alone."
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(text, sc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCalls(b *testing.B) {
	text := "I will ask. CALL: ask_node('teacher', 'Can you explain photosynthesis in two sentences?')\n" +
		"CALL: broadcast_message(\"Session started\", ['ai-processor'])\n" +
		"CALL: set_shared_context('topic', 'photosynthesis')\nCALL: get_shared_context('topic')\nThen I will write it down."
	b.ReportAllocs()
	for b.Loop() {
		if calls := ParseCalls(text); len(calls) != 4 {
			b.Fatalf("%d calls", len(calls))
		}
	}
}
