package workflow

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Trigger kinds: what started an execution.
const (
	TriggerAPI       = "api"       // POST /workflows/{id}/execute
	TriggerDashboard = "dashboard" // the run form of the workflow's page
	TriggerWebhook   = "webhook"   // POST /hooks/{workflow_id}/{token}
	TriggerSchedule  = "schedule"  // metadata.schedule
	TriggerResume    = "resume"    // a resume of an interrupted or failed execution
	TriggerCLI       = "cli"       // switchboard run FILE
)

// Trigger says what started an execution. Kind is always set; the other
// fields belong to some kinds only. A webhook's Body and Query are what
// prompts read as {{trigger.body}} and {{trigger.query}}; a resume carries
// over those of the execution it resumes, so that its nodes render the
// same prompts.
type Trigger struct {
	Kind string `json:"kind"`
	// RemoteAddr is the address a webhook request came from (the
	// connection's peer, not a forwarded header anyone could set).
	RemoteAddr string `json:"remote_addr,omitempty"`
	// ScheduledAt is the tick of the schedule that started the run, in UTC;
	// CatchUp says the tick fell while the server was down and the run
	// started when it came back.
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	CatchUp     bool       `json:"catch_up,omitempty"`
	// Execution is the execution a resume continues.
	Execution string `json:"execution_id,omitempty"`
	// Body is a webhook request's JSON body (nil when it had none), and
	// Query its query parameters: a string for a parameter given once, a
	// list of strings for one given several times.
	Body  any            `json:"body,omitempty"`
	Query map[string]any `json:"query,omitempty"`
}

// triggerFields are the names {{trigger.NAME}} may use.
var triggerFields = []string{"kind", "body", "query", "remote_addr", "scheduled_at", "execution_id"}

// QueryValues turns URL query parameters into Trigger.Query's shape.
func QueryValues(q url.Values) map[string]any {
	if len(q) == 0 {
		return nil
	}
	out := make(map[string]any, len(q))
	for k, vs := range q {
		if len(vs) == 1 {
			out[k] = vs[0]
			continue
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		out[k] = list
	}
	return out
}

// lookupTrigger finds {{trigger.NAME...}}; rest is what follows "trigger.".
func lookupTrigger(t *Trigger, rest string) (any, bool) {
	if t == nil {
		return nil, false
	}
	field, path, more := strings.Cut(rest, ".")
	var v any
	switch field {
	case "kind":
		v = t.Kind
	case "body":
		if t.Body == nil {
			return nil, false
		}
		v = t.Body
	case "query":
		if t.Query == nil {
			v = map[string]any{}
		} else {
			v = t.Query
		}
	case "remote_addr":
		if t.RemoteAddr == "" {
			return nil, false
		}
		v = t.RemoteAddr
	case "scheduled_at":
		if t.ScheduledAt == nil {
			return nil, false
		}
		v = t.ScheduledAt.UTC().Format(time.RFC3339)
	case "execution_id":
		if t.Execution == "" {
			return nil, false
		}
		v = t.Execution
	default:
		return nil, false
	}
	return dig(v, path, more)
}

// checkTriggerPlaceholder reports a {{trigger.NAME}} whose NAME no trigger
// has; ph is the placeholder's name.
func checkTriggerPlaceholder(ph string) error {
	rest, ok := strings.CutPrefix(ph, "trigger.")
	if !ok {
		return nil
	}
	field, _, _ := strings.Cut(rest, ".")
	for _, f := range triggerFields {
		if f == field {
			return nil
		}
	}
	return fmt.Errorf("{{%s}}: a trigger has no %q; use one of trigger.%s", ph, field, strings.Join(triggerFields, ", trigger."))
}
