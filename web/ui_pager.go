package web

import (
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"
)

// pager links the pages of a list.
type pager struct {
	Page, Pages      int
	PrevURL, NextURL string
}

func newPager(base url.Values, path string, page, per, total int) pager {
	p := pager{Page: page, Pages: max((total+per-1)/per, 1)}
	link := func(n int) string {
		q := url.Values{}
		for k, v := range base {
			if len(v) > 0 && v[0] != "" {
				q.Set(k, v[0])
			}
		}
		if n > 1 {
			q.Set("page", strconv.Itoa(n))
		}
		if enc := q.Encode(); enc != "" {
			return path + "?" + enc
		}
		return path
	}
	if page > 1 {
		p.PrevURL = link(page - 1)
	}
	if page < p.Pages {
		p.NextURL = link(page + 1)
	}
	return p
}

// pageNumber reads ?page=, 1 when absent or empty; anything but a
// positive whole number is a 400.
func pageNumber(c echo.Context) (int, error) {
	v := c.QueryParam("page")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badParam("page", "must be a whole number, 1 or more")
	}
	return n, nil
}
