// Package examples holds Switchboard's own example workflows, loaded into an
// empty database on first start.
package examples

import "embed"

// FS holds the example workflow documents, one *.json file each, named so
// that they sort in the order they should be listed.
//
//go:embed *.json
var FS embed.FS
