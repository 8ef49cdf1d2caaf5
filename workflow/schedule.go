package workflow

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Overlap policies of a schedule: what a tick does while the run the
// schedule started last is still going.
const (
	OverlapSkip  = "skip"  // the tick is skipped and logged (the default)
	OverlapAllow = "allow" // the tick starts another run
)

// cronParser reads the standard five fields (minute hour day-of-month month
// day-of-week), an optional leading seconds field (six fields), and the
// descriptors (@hourly, @daily, @every 90s…).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is a workflow's metadata.schedule, checked: when the server
// starts runs of the workflow on its own.
type Schedule struct {
	Cron     string
	Timezone string // the IANA name; "" is UTC
	Location *time.Location
	Overlap  string // OverlapSkip or OverlapAllow
	spec     cron.Schedule
}

// Next returns the first tick after t, in UTC. It returns the zero time
// when the schedule has no tick within five years (robfig/cron's bound),
// as for "0 0 30 2 *".
func (s *Schedule) Next(t time.Time) time.Time {
	n := s.spec.Next(t.In(s.Location))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// CronSchedule returns the schedule as robfig/cron runs it, ticks in the
// schedule's time zone.
func (s *Schedule) CronSchedule() cron.Schedule { return zoned{s} }

type zoned struct{ s *Schedule }

func (z zoned) Next(t time.Time) time.Time { return z.s.Next(t) }

// Schedule returns the workflow's metadata.schedule, or nil when it has
// none or it is not valid (Validate reports why).
func (w *Workflow) Schedule() *Schedule {
	v, ok := w.Metadata["schedule"]
	if !ok || v == nil {
		return nil
	}
	problems := 0
	s := scheduleOf(v, func(string, string, ...any) { problems++ })
	if problems > 0 {
		return nil
	}
	return s
}

// scheduleOf reads metadata.schedule, reporting what is wrong with it.
func scheduleOf(v any, add func(string, string, ...any)) *Schedule {
	const path = "metadata.schedule"
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		add(path, `must be an object like {"cron": "*/5 * * * *", "timezone": "Europe/Paris"}, not %s`, describe(v))
		return nil
	}
	s := &Schedule{Location: time.UTC, Overlap: OverlapSkip}
	for _, k := range sortedKeys(m) {
		switch k {
		case "cron", "timezone", "overlap":
		default:
			add(path+"."+k, "unknown key; a schedule has cron, timezone and overlap")
		}
	}
	switch c := m["cron"].(type) {
	case nil:
		add(path+".cron", `a schedule needs a cron expression, like "*/5 * * * *" (every five minutes)`)
	case string:
		s.Cron = strings.TrimSpace(c)
		if strings.HasPrefix(s.Cron, "TZ=") || strings.HasPrefix(s.Cron, "CRON_TZ=") {
			add(path+".cron", "give the time zone in metadata.schedule.timezone, not in the expression")
		} else if spec, err := cronParser.Parse(s.Cron); err != nil {
			add(path+".cron", "%q is not a cron expression (minute hour day-of-month month day-of-week, an optional seconds field first, or @hourly, @daily, @every 10m): %s", c, err.Error())
		} else if spec.Next(time.Now()).IsZero() {
			add(path+".cron", "%q never comes due (no such date in the next five years)", c)
		} else {
			s.spec = spec
		}
	default:
		add(path+".cron", "must be a string, not %s", describe(c))
	}
	switch tz := m["timezone"].(type) {
	case nil:
	case string:
		s.Timezone = tz
		// LoadLocation also accepts "Local" and reads files by relative
		// path; only IANA names are meant.
		if tz == "Local" || strings.Contains(tz, "..") || strings.HasPrefix(tz, "/") {
			add(path+".timezone", "%q is not an IANA time zone name like Europe/Paris or UTC", tz)
		} else if loc, err := time.LoadLocation(tz); err != nil {
			add(path+".timezone", "%q is not an IANA time zone name like Europe/Paris or UTC", tz)
		} else {
			s.Location = loc
		}
	default:
		add(path+".timezone", "must be a string, not %s", describe(tz))
	}
	switch o := m["overlap"].(type) {
	case nil:
	case string:
		if o != OverlapSkip && o != OverlapAllow {
			add(path+".overlap", "must be %q or %q, not %q", OverlapSkip, OverlapAllow, o)
		}
		s.Overlap = o
	default:
		add(path+".overlap", "must be %q or %q, not %s", OverlapSkip, OverlapAllow, describe(o))
	}
	if s.spec == nil {
		return nil
	}
	return s
}
