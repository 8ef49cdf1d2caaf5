package web

import "testing"

func TestFmtUSD(t *testing.T) {
	t.Parallel()
	v := func(f float64) *float64 { return &f }
	for _, tc := range []struct {
		in   *float64
		want string
	}{
		{nil, "—"},
		{v(0), "$0"},
		{v(0.00972), "$0.00972"},
		{v(0.002), "$0.002"},
		{v(0.0000001234567), "$0.0000001235"},
		{v(0.12345), "$0.1235"},
		{v(1), "$1.00"},
		{v(1234.5), "$1234.50"},
	} {
		if got := fmtUSD(tc.in); got != tc.want {
			t.Errorf("fmtUSD(%v) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
