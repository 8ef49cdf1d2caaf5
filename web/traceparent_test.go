package web

import (
	"net/http/httptest"
	"testing"
)

func TestRemoteParent(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ header, trace, span string }{
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"},
		{"", "", ""},
		{"garbage", "", ""},
		{"00-00000000000000000000000000000000-b7ad6b7169203331-01", "", ""}, // an all-zero trace id is invalid
	} {
		r := httptest.NewRequest("POST", "/workflows/x/execute", nil)
		if c.header != "" {
			r.Header.Set("traceparent", c.header)
		}
		sc := remoteParent(r)
		if c.trace == "" {
			if sc.IsValid() {
				t.Errorf("traceparent %q gave %v, want none", c.header, sc)
			}
			continue
		}
		if sc.TraceID().String() != c.trace || sc.SpanID().String() != c.span || !sc.IsRemote() || !sc.IsSampled() {
			t.Errorf("traceparent %q gave trace %s span %s remote %v sampled %v", c.header, sc.TraceID(), sc.SpanID(), sc.IsRemote(), sc.IsSampled())
		}
	}
}
