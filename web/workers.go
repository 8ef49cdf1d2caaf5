package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Worker is a worker process as the bus's registry describes it: the web
// side's copy of bus.Worker (web does not import bus), with the same JSON
// names, so GET /workers answers the registry's own fields.
type Worker struct {
	Name          string    `json:"name"`
	Host          string    `json:"host"`
	PID           int       `json:"pid"`
	Capacity      int       `json:"capacity"` // nodes it runs at once
	InUse         int       `json:"in_use"`   // nodes running now
	StartedAt     time.Time `json:"started_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"` // the worker's clock at its last renewal
	Agents        []string  `json:"agents"`         // agent ids hosted now
	Instance      string    `json:"instance"`       // random per registration
}

// workersBody is the answer of GET /workers.
type workersBody struct {
	Workers []Worker `json:"workers"`
}

// listWorkers answers the workers registered on the bus; none when the
// server has no bus, 503 when Redis cannot be reached.
func (s *Server) listWorkers(c echo.Context) error {
	out := workersBody{Workers: []Worker{}}
	if s.cfg.Bus == nil {
		return c.JSON(http.StatusOK, out)
	}
	ws, err := s.cfg.Bus.Workers(c.Request().Context())
	if err != nil {
		return err
	}
	for _, w := range ws {
		if w.Agents == nil {
			w.Agents = []string{}
		}
		out.Workers = append(out.Workers, w)
	}
	return c.JSON(http.StatusOK, out)
}
