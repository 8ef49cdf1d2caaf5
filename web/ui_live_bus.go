package web

import (
	"context"
	"encoding/json"
	"html/template"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// busMessage is one message seen on the bus, for the traffic table.
type busMessage struct {
	Time     time.Time
	Clock    string // time of day, to the millisecond
	Channel  string
	Agent    string // the channel's agent, shortened for the table
	ID       string
	Type     string
	From, To string
	Subject  string
	Content  string
	Payload  string
}

func parseBusMessage(channel string, payload []byte) busMessage {
	now := time.Now().UTC()
	m := busMessage{Time: now, Clock: now.Format("15:04:05.000"), Channel: channel, Payload: string(payload),
		Agent: shortAgent(strings.TrimPrefix(channel, "agent:messages:"))}
	var raw map[string]any
	if json.Unmarshal(payload, &raw) == nil {
		get := func(k string) string { v, _ := raw[k].(string); return v }
		m.ID, m.Type, m.From, m.To, m.Subject = get("id"), get("type"), shortAgent(get("from_agent")), shortAgent(get("to_agent")), get("subject")
		switch v := raw["content"].(type) {
		case string:
			m.Content = v
		case nil:
		default:
			m.Content, _ = jsonText(v, "")
		}
		if p, err := jsonText(raw, "  "); err == nil {
			m.Payload = p
		}
	}
	return m
}

// agentID matches the agent ids of pubsub mode, node-{execution}-{node}.
var agentID = regexp.MustCompile(`^node-([0-9a-f]{8})[0-9a-f]{8,}-(.+)$`)

// shortAgent keeps what tells agents apart in a table: the start of the
// execution id and the node id.
func shortAgent(id string) string {
	if m := agentID.FindStringSubmatch(id); m != nil {
		return m[1] + "…/" + m[2]
	}
	return id
}

// uiBusLive streams the traffic of agent:messages:* as table rows, one
// monitor per open page, stopped when the page goes away.
func (s *Server) uiBusLive(c echo.Context) error {
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	out := startSSE(c)
	if s.cfg.Bus == nil {
		_ = out.send("bus-status", "No bus is configured in this server.")
		out.flush()
		<-ctx.Done()
		return nil
	}
	msgs := make(chan busMessage, 256)
	monErr := make(chan error, 1)
	go func() {
		monErr <- s.cfg.Bus.Monitor(ctx, "agent:messages:*", func(channel string, payload []byte) {
			select {
			case msgs <- parseBusMessage(channel, payload):
			default: // the page is behind; it misses a message rather than slowing the monitor
			}
		})
	}()
	_ = out.send("bus-status", "Watching agent:messages:* …")
	out.flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			<-monErr
			return nil
		case err := <-monErr:
			text := "The monitor stopped."
			if err != nil {
				text = "Cannot watch the bus: " + err.Error() + ". Retrying…"
			}
			_ = out.send("bus-status", template.HTMLEscapeString(text))
			out.flush()
			return nil
		case <-keepalive.C:
			if err := out.comment("keepalive"); err != nil {
				cancel()
				<-monErr
				return nil
			}
		case m := <-msgs:
			html, err := s.ui.render("", "bus-row", m)
			if err == nil {
				err = out.send("traffic", html)
			}
			out.flush()
			if err != nil {
				cancel()
				<-monErr
				return nil
			}
		}
	}
}
