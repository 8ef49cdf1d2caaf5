package web

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

// TestTimelineToolLane: tool calls are arrows from the calling agent to
// a lane of their own, after the agents', labelled with the tool (an MCP
// tool as server.tool) and its result or error; a log without tool calls
// has no such lane. The message list names the tool and shows the
// arguments.
func TestTimelineToolLane(t *testing.T) {
	t.Parallel()
	w := wf([]string{"a", "b"})
	for i := range w.Nodes {
		w.Nodes[i].Config["can_communicate"] = true
	}
	t0 := time.Now()
	log := []workflow.CommEntry{
		{Time: t0, From: "a", To: "b", Type: workflow.CommAsk, Content: "Weather?"},
		{Time: t0, From: "b", To: "b", Type: workflow.CommToolCall, Content: "sunny in Oslo", Metadata: map[string]any{
			"tool": "weather__lookup", "mcp_server": "weather", "mcp_tool": "lookup", "success": true, "latency_ms": 3.2,
			"arguments": map[string]any{"city": "Oslo"}}},
		{Time: t0, From: "a", To: "a", Type: workflow.CommToolCall, Metadata: map[string]any{
			"tool": "http_request", "success": false, "error": "host not allowed"}},
	}
	tl := layoutTimeline(w, log, t0)
	if len(tl.Lanes) != 3 || !tl.Lanes[2].Tools || tl.Lanes[2].Name != "Tools" {
		t.Fatalf("lanes %+v", tl.Lanes)
	}
	mcp, http := tl.Rows[1], tl.Rows[2]
	if mcp.X1 != tl.Lanes[1].X || mcp.X2 != tl.Lanes[2].X || mcp.Label != "weather.lookup (MCP): sunny in Oslo" || mcp.Meta != "3.2 ms" {
		t.Errorf("MCP tool row %+v", mcp)
	}
	if http.X1 != tl.Lanes[0].X || http.X2 != tl.Lanes[2].X || !http.Failed || http.Label != "http_request failed: host not allowed" {
		t.Errorf("http_request row %+v", http)
	}
	v := messageView(w, 1, log[1], t0)
	if v.KindLabel != "tool call" || v.ToName != "weather.lookup (MCP)" || v.To != "" || v.Arguments != `{"city":"Oslo"}` {
		t.Errorf("message view %+v", v)
	}
	if tl := layoutTimeline(w, log[:1], t0); len(tl.Lanes) != 2 {
		t.Errorf("without tool calls: lanes %+v", tl.Lanes)
	}
	u, err := newUI(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	html, err := u.render("", "timeline", tl)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, `class="lane lane-tools"`) || strings.Contains(html, "\x00") {
		t.Errorf("the tools lane is not drawn as one, or shows its id:\n%s", html)
	}
}

// TestTimelineCommToolCalls: a native ask_node call is drawn by its ask
// and answer, not again as an arrow to a Tools lane (which would say it
// went elsewhere); rows stay one under the other and keep their log index.
func TestTimelineCommToolCalls(t *testing.T) {
	t.Parallel()
	w := wf([]string{"a", "b"})
	for i := range w.Nodes {
		w.Nodes[i].Config["can_communicate"] = true
	}
	t0 := time.Now()
	log := []workflow.CommEntry{
		{Time: t0, From: "a", To: "b", Type: workflow.CommAsk, Content: "Why?"},
		{Time: t0, From: "b", To: "a", Type: workflow.CommResponse, Content: "Because."},
		{Time: t0, From: "a", To: "a", Type: workflow.CommToolCall, Content: "b answered: Because.", Metadata: map[string]any{
			"tool": workflow.CallAsk, "success": true, "arguments": map[string]any{"node_id": "b", "question": "Why?"}}},
		{Time: t0, From: "a", To: "*", Type: workflow.CommBroadcast, Content: "done"},
	}
	tl := layoutTimeline(w, log, t0)
	if len(tl.Lanes) != 2 {
		t.Fatalf("lanes %+v: a Tools lane for a communication call", tl.Lanes)
	}
	if len(tl.Rows) != 3 || tl.Rows[2].Index != 3 || tl.Rows[2].Y != tl.Rows[1].Y+tlRowH {
		t.Fatalf("rows %+v", tl.Rows)
	}
}
