package web

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
)

type settingsPage struct {
	Provider, BaseURL, Model string
	DataDir, Version         string
	Bus                      busInfoView
}

func (s *Server) uiSettings(c echo.Context) error {
	data := settingsPage{DataDir: s.cfg.DataDir, Version: s.cfg.Version}
	if m := asMap(s.cfg.Settings["llm"]); m != nil {
		get := func(k string) string { v, _ := m[k].(string); return v }
		data.Provider, data.BaseURL, data.Model = get("provider"), redactURL(get("base_url")), get("model")
	}
	if data.DataDir == "" {
		data.DataDir, _ = s.cfg.Settings["data_dir"].(string)
	}
	if m := asMap(s.cfg.Settings["bus"]); m != nil {
		data.Bus = busInfoView{Configured: true}
		data.Bus.Kind, _ = m["kind"].(string)
		data.Bus.Addr, _ = m["addr"].(string)
		u, _ := m["url"].(string)
		data.Bus.URL = redactURL(u)
	}
	return s.page(c, http.StatusOK, "settings", "Settings", "settings", data)
}

// asMap turns a struct or map into a map through JSON, so that the web
// package needs no import of the package that defined it.
func asMap(v any) map[string]any {
	if v == nil {
		return nil
	}
	if m, ok := v.(map[string]any); ok {
		return m
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}
