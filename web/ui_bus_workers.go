package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/workflow"
)

// workersView is the Bus page's list of workers.
type workersView struct {
	Configured bool
	Error      string       // why the list could not be read
	Workers    []workerView // sorted by name
	Start      string       // the command that starts a worker on this bus
	Embedded   bool         // the bus is this process's embedded Redis
}

// workerView is one worker's row.
type workerView struct {
	Name, Host  string
	PID         int
	Capacity    int
	InUse       int
	Percent     int // InUse of Capacity, 0 to 100, for the bar
	Heartbeat   string
	HeartbeatAt time.Time
	StartedAt   time.Time
	Agents      []agentView
}

// agentView is one agent a worker hosts, with its execution when the id
// names one.
type agentView struct {
	ID     string
	ExecID string // "" when the id is not node-{execution}-{node}
	Node   string
}

// agentParts splits the agent ids of pubsub mode, node-{execution}-{node}.
// Execution ids are hex (workflow.NewID), so the first dash after them
// ends the execution id, and node ids may hold dashes of their own.
var agentParts = regexp.MustCompile(`^node-([0-9a-f]{16,})-(.+)$`)

func agentViewOf(id string) agentView {
	if m := agentParts.FindStringSubmatch(id); m != nil {
		return agentView{ID: id, ExecID: m[1], Node: m[2]}
	}
	return agentView{ID: id}
}

// ago says how long before now t was, for people: "just now", "4 s ago",
// "3 min ago". A time ahead of now (another machine's clock) is "just now".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return "never"
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// workersOf reads the registry for the Bus page. A registry that cannot be
// read is said in Error rather than failing the page. info, when not nil,
// is the bus's description the page already has.
func (s *Server) workersOf(ctx context.Context, info *busInfoView) workersView {
	if s.cfg.Bus == nil {
		return workersView{}
	}
	v := workersView{Configured: true}
	ws, err := s.cfg.Bus.Workers(ctx)
	if err != nil {
		v.Error = workflow.ErrorMessage(err)
	}
	now := time.Now()
	for _, w := range ws {
		wv := workerView{Name: w.Name, Host: w.Host, PID: w.PID, Capacity: w.Capacity, InUse: w.InUse,
			Heartbeat: ago(w.LastHeartbeat, now), HeartbeatAt: w.LastHeartbeat, StartedAt: w.StartedAt}
		if w.Capacity > 0 {
			wv.Percent = min(100, max(0, w.InUse*100/w.Capacity))
		}
		for _, a := range w.Agents {
			wv.Agents = append(wv.Agents, agentViewOf(a))
		}
		v.Workers = append(v.Workers, wv)
	}
	if len(v.Workers) == 0 && v.Error == "" {
		// Only the empty state needs the address, and Info pings Redis.
		if info == nil {
			bi := s.busInfo(ctx)
			info = &bi
		}
		v.Embedded = info.Kind == "embedded"
		switch {
		case v.Embedded && info.Addr != "":
			v.Start = "switchboard worker --redis-url redis://" + info.Addr
		case info.URL != "":
			v.Start = "switchboard worker --redis-url " + info.URL
		default:
			v.Start = "switchboard worker --redis-url redis://HOST:PORT"
		}
	}
	return v
}

func (s *Server) uiBusWorkers(c echo.Context) error {
	return s.fragment(c, http.StatusOK, "bus-workers", s.workersOf(c.Request().Context(), nil))
}
