package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/examples"
	"github.com/switchboard-dev/switchboard/tracing/tracetest"
)

// TestTraceparentOnExecute runs the pubsub Q&A example through the API with
// tracing on (OTEL_EXPORTER_OTLP_ENDPOINT) and a W3C traceparent on the
// execute request: the execution's span is the child of the request's, and
// the ask's QUERY over Redis carries the trace to the answering agent. The
// spans reach the receiver when the program stops (shutdown flushes).
func TestTraceparentOnExecute(t *testing.T) {
	t.Parallel()
	recv := tracetest.NewReceiver(t)
	const token = "traces-test-token-0123456789"
	base, _, stop := startServerOut(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": recv.Base(),
		"OTEL_SERVICE_NAME":           "switchboard-test",
	}, nil, "--token", token)
	doc, err := examples.FS.ReadFile("04_pubsub_qa.json")
	if err != nil {
		t.Fatal(err)
	}
	code, wf := authedPost(t, base+"/workflows/", token, string(doc))
	if code != http.StatusCreated {
		t.Fatalf("import: %d %v", code, wf)
	}
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/workflows/"+wf["id"].(string)+"/execute",
		strings.NewReader(`{"placement": "local"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("execute: %d", resp.StatusCode)
	}
	stop()

	exec := recv.WaitFor(t, 10*time.Second, "execution", func(s tracetest.Span) bool {
		return strings.HasPrefix(s.Name, "execution ")
	})
	if exec.Service != "switchboard-test" || exec.TraceID != traceID || exec.ParentSpanID != parentID ||
		exec.Attrs["switchboard.mode"] != "pubsub" || exec.Attrs["switchboard.execution.status"] != "success" {
		t.Fatalf("execution span %+v, want service switchboard-test, trace %s, parent %s, pubsub, success", exec, traceID, parentID)
	}
	child := func(name string, of tracetest.Span) tracetest.Span {
		t.Helper()
		return recv.WaitFor(t, 10*time.Second, name+" under "+of.Name, func(s tracetest.Span) bool {
			return s.Name == name && s.ParentSpanID == of.SpanID && s.TraceID == traceID
		})
	}
	node := child("node student", exec)
	chat := child("chat demo", node)
	if chat.Attrs["gen_ai.request.model"] != "demo" || chat.Attrs["gen_ai.provider.name"] != "demo" || chat.Attrs["gen_ai.usage.input_tokens"] == nil {
		t.Errorf("model call span attributes %v", chat.Attrs)
	}
	ask := child("ask teacher", child("execute_tool ask_node", node))
	if id, _ := ask.Attrs["switchboard.query_id"].(string); !strings.HasPrefix(id, "query:student:teacher:") {
		t.Errorf("ask span's query id %q", id)
	}
	child("chat demo", child("answer teacher", ask))
}
