package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-dev/switchboard/workflow"
)

// TestRunOutcomesAreNotServerErrors: an error that is how a run ended
// (cancelled, past its deadline, over its token budget) gets a status that
// says so, and is not logged as a server error; an internal error still is.
func TestRunOutcomesAreNotServerErrors(t *testing.T) {
	t.Parallel()
	logs := NewLogCapture()
	s, err := New(Config{}, nil, nil, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	s.echo.GET("/fail/:code", func(c echo.Context) error {
		return &workflow.Error{Code: workflow.Code(c.Param("code")), Message: "the run ended: " + c.Param("code")}
	})
	ts := httptest.NewServer(s)
	defer ts.Close()
	tests := []struct {
		code       workflow.Code
		wantStatus int
		logged     bool
	}{
		{workflow.CodeCancelled, http.StatusConflict, false},
		{workflow.CodeTimeout, http.StatusGatewayTimeout, false},
		{workflow.CodeBudget, http.StatusConflict, false},
		{workflow.CodeInternal, http.StatusInternalServerError, true},
	}
	for _, tt := range tests {
		resp, err := http.Get(ts.URL + "/fail/" + string(tt.code))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), `"code":"`+string(tt.code)+`"`) {
			t.Errorf("%s: %d %s, want %d", tt.code, resp.StatusCode, body, tt.wantStatus)
		}
	}
	// The internal error's record comes last; once it is there, the others
	// would be too.
	logs.Wait(t, 5*time.Second, "ERROR", "/fail/internal")
	for _, line := range logs.Lines() {
		if strings.HasPrefix(line, "ERROR") && !strings.Contains(line, "/fail/internal") {
			t.Errorf("a run outcome logged as a server error: %s", line)
		}
	}
}
