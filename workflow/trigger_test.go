package workflow_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/workflow"
)

func scheduleDoc(schedule, prompt string) string {
	return `{"name":"x","metadata":{"schedule":` + schedule + `},"nodes":[{"id":"start","type":"start"},` +
		`{"id":"a","type":"ai-processor","config":{"prompt":` + prompt + `}}],"edges":[{"from":"start","to":"a"}]}`
}

// TestScheduleAndTriggerValidation checks what import says about
// metadata.schedule and {{trigger.…}} placeholders, by JSON path.
func TestScheduleAndTriggerValidation(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name, doc, path, contains string
	}{
		{"bad cron", scheduleDoc(`{"cron":"every five minutes"}`, `"hi"`), "metadata.schedule.cron", "is not a cron expression"},
		{"cron out of range", scheduleDoc(`{"cron":"61 * * * *"}`, `"hi"`), "metadata.schedule.cron", "is not a cron expression"},
		{"no cron", scheduleDoc(`{"timezone":"UTC"}`, `"hi"`), "metadata.schedule.cron", "needs a cron expression"},
		{"cron never due", scheduleDoc(`{"cron":"0 0 30 2 *"}`, `"hi"`), "metadata.schedule.cron", "never comes due"},
		{"tz in cron", scheduleDoc(`{"cron":"CRON_TZ=Europe/Paris * * * * *"}`, `"hi"`), "metadata.schedule.cron", "metadata.schedule.timezone"},
		{"unknown timezone", scheduleDoc(`{"cron":"*/5 * * * *","timezone":"Mars/Olympus"}`, `"hi"`), "metadata.schedule.timezone", "IANA"},
		{"Local timezone", scheduleDoc(`{"cron":"*/5 * * * *","timezone":"Local"}`, `"hi"`), "metadata.schedule.timezone", "IANA"},
		{"bad overlap", scheduleDoc(`{"cron":"*/5 * * * *","overlap":"queue"}`, `"hi"`), "metadata.schedule.overlap", `"skip" or "allow"`},
		{"unknown key", scheduleDoc(`{"cron":"*/5 * * * *","every":"5m"}`, `"hi"`), "metadata.schedule.every", "unknown key"},
		{"not an object", scheduleDoc(`"*/5 * * * *"`, `"hi"`), "metadata.schedule", "must be an object"},
		{"unknown trigger field", scheduleDoc(`null`, `"{{trigger.headers.x}}"`), "nodes[1].config.prompt", `a trigger has no "headers"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := workflow.Parse([]byte(tt.doc))
			if workflow.ErrorCode(err) != workflow.CodeInvalid {
				t.Fatalf("want invalid, got %v", err)
			}
			for _, p := range workflow.ErrorProblems(err) {
				if p.Path == tt.path && strings.Contains(p.Message, tt.contains) {
					return
				}
			}
			t.Errorf("no problem at %s containing %q; got %q", tt.path, tt.contains, workflow.ErrorProblems(err))
		})
	}
	good := []string{
		scheduleDoc(`{"cron":"*/5 * * * *","timezone":"Europe/Paris"}`, `"{{trigger.body.x}} {{trigger.query.q}} {{trigger.body}} {{trigger.kind}}"`),
		scheduleDoc(`{"cron":"*/2 * * * * *","overlap":"allow"}`, `"{{trigger.scheduled_at}}"`),
		scheduleDoc(`{"cron":"@daily"}`, `"hi"`),
	}
	for _, doc := range good {
		if _, err := workflow.Parse([]byte(doc)); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
}

// TestScheduleNextInItsTimeZone checks that ticks follow the schedule's
// zone: 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
func TestScheduleNextInItsTimeZone(t *testing.T) {
	t.Parallel()
	w, err := workflow.Parse([]byte(scheduleDoc(`{"cron":"0 9 * * *","timezone":"Europe/Paris"}`, `"hi"`)))
	if err != nil {
		t.Fatal(err)
	}
	s := w.Schedule()
	if s == nil || s.Overlap != workflow.OverlapSkip {
		t.Fatalf("schedule = %+v", s)
	}
	for from, want := range map[string]string{
		"2026-01-10T12:00:00Z": "2026-01-11T08:00:00Z",
		"2026-07-10T12:00:00Z": "2026-07-11T07:00:00Z",
	} {
		f, _ := time.Parse(time.RFC3339, from)
		if got := s.Next(f).Format(time.RFC3339); got != want {
			t.Errorf("Next(%s) = %s, want %s", from, got, want)
		}
	}
}

func TestRenderTrigger(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr := &workflow.Trigger{Kind: workflow.TriggerWebhook, Body: map[string]any{"user": map[string]any{"name": "Ada"}, "n": 2},
		Query: workflow.QueryValues(url.Values{"q": {"tea"}, "tag": {"a", "b"}}), ScheduledAt: &at}
	sc := workflow.Scope{Trigger: tr, Vars: map[string]any{"trigger": map[string]any{"body": "a variable"}}}
	got, err := workflow.Render("{{trigger.kind}}: {{trigger.body.user.name}} {{trigger.body.n}} {{trigger.query.q}} {{trigger.query.tag}} {{trigger.scheduled_at}}", sc)
	if err != nil {
		t.Fatal(err)
	}
	if want := `webhook: Ada 2 tea ["a","b"] 2026-03-01T10:00:00Z`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// No webhook body: the placeholder is an error, never a variable's
	// value nor a silent literal.
	if _, err := workflow.Render("{{trigger.body.user}}", workflow.Scope{Trigger: &workflow.Trigger{Kind: "api"}, Vars: sc.Vars}); err == nil {
		t.Error("{{trigger.body.user}} rendered without a body")
	}
}

// FuzzSchedule feeds metadata.schedule any cron text and time zone:
// import answers with problems or a schedule, never a panic (robfig/cron
// v3.0.1 panics on "TZ=x" without a space; the validator must not reach
// it).
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "TZ=Europe/Paris", "CRON_TZ=", "@every -1s", "@every", "0 0 30 2 *", "* * * * * *", "61 * * * *", " TZ=x"} {
		f.Add(s, "Europe/Paris")
	}
	f.Fuzz(func(t *testing.T, cron, tz string) {
		doc, err := json.Marshal(map[string]any{"name": "f", "metadata": map[string]any{"schedule": map[string]any{"cron": cron, "timezone": tz}},
			"nodes": []any{map[string]any{"id": "start", "type": "start"}}})
		if err != nil {
			t.Skip()
		}
		w, err := workflow.Parse(doc)
		if err != nil {
			return
		}
		s := w.Schedule()
		if s == nil {
			t.Fatalf("a valid document without its schedule: %q %q", cron, tz)
		}
		if s.Next(time.Now()).IsZero() {
			t.Fatalf("a schedule that never comes due was accepted: %q", cron)
		}
	})
}
