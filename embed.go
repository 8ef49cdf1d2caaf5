package main

import (
	"embed"
	"io/fs"
)

// assets holds the dashboard's templates and static files, compiled into the
// binary so it runs from any directory.
//
//go:embed web/templates web/static
var assets embed.FS

// webAssets returns the dashboard files rooted at web/, so that they are
// named templates/... and static/....
func webAssets() fs.FS {
	sub, err := fs.Sub(assets, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	return sub
}
