package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"github.com/labstack/echo/v4"
)

// busInfoView is what the bus page shows of BusView.Info.
type busInfoView struct {
	Configured  bool
	Kind        string
	Addr        string
	URL         string
	Connected   bool
	Latency     string
	Error       string
	Agents      []string
	Watch       string
	Channels    string
	PendingAsks string
}

func (s *Server) busInfo(ctx context.Context) busInfoView {
	if s.cfg.Bus == nil {
		return busInfoView{}
	}
	info := s.cfg.Bus.Info(ctx)
	v := busInfoView{Configured: true}
	str := func(k string) string {
		if x, ok := info[k]; ok && x != nil {
			return fmt.Sprint(x)
		}
		return ""
	}
	v.Kind, v.Addr, v.Watch, v.Error = str("kind"), str("addr"), str("watch"), str("error")
	v.URL = redactURL(str("url"))
	v.Connected, _ = info["connected"].(bool)
	if f, ok := info["latency_ms"].(float64); ok {
		v.Latency = fmtMillis(f)
	}
	v.Channels, v.PendingAsks = str("channels"), str("pending_asks")
	switch a := info["agents"].(type) {
	case []string:
		v.Agents = append(v.Agents, a...)
	case []any:
		for _, x := range a {
			v.Agents = append(v.Agents, fmt.Sprint(x))
		}
	}
	sort.Strings(v.Agents)
	return v
}

// redactURL hides any password in a Redis URL, whatever the bus already did.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// busPage is what the Bus page shows.
type busPage struct {
	Info    busInfoView
	Workers workersView
}

func (s *Server) uiBus(c echo.Context) error {
	ctx := c.Request().Context()
	info := s.busInfo(ctx)
	return s.page(c, http.StatusOK, "bus", "Bus", "bus", busPage{Info: info, Workers: s.workersOf(ctx, &info)})
}

func (s *Server) uiBusInfo(c echo.Context) error {
	return s.fragment(c, http.StatusOK, "bus-info", s.busInfo(c.Request().Context()))
}
