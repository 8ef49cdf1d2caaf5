package web

import (
	"math"
	"strconv"
	"strings"
)

// fmtUSD shows an amount of US dollars in the dashboard: cents from a
// dollar up, and four significant digits below, since one model call
// often costs a small fraction of a cent ($0.00972). nil is a dash.
func fmtUSD(v *float64) string {
	if v == nil {
		return "—"
	}
	f := *v
	if f == 0 {
		return "$0"
	}
	if f >= 1 {
		return "$" + strconv.FormatFloat(f, 'f', 2, 64)
	}
	prec := min(int(-math.Floor(math.Log10(f)))+3, 12)
	s := strings.TrimRight(strconv.FormatFloat(f, 'f', prec, 64), "0")
	return "$" + strings.TrimSuffix(s, ".")
}
