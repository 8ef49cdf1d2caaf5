package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportArrows enforces the layout of design.md: arrows point down
// toward workflow, and bus and llm import no internal package. Test files
// may import more.
func TestImportArrows(t *testing.T) {
	t.Parallel()
	const module = "github.com/switchboard-dev/switchboard/"
	allowed := map[string][]string{
		"workflow":    {},
		"llm":         {},
		"llm/llmtest": {},
		"bus":         {},
		"bus/bustest": {"bus", "internal/redisserver"},
		"examples":    {},
		"store":       {"workflow"},
		"executor":    {"workflow", "llm", "bus", "tools", "metrics"},
		"tools":       {"workflow"},
		"pricing":     {},
		"schedule":    {"workflow", "executor"},
		"metrics":     {},
		"tracing":     {},

		// tracing/tracetest is an OTLP receiver for tests.
		"tracing/tracetest": {},
		"web":               {"workflow", "executor", "store"},

		// internal/redisserver starts redis-server for bustest and the bench.
		"internal/redisserver": {},
	}
	seen := 0
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." || strings.HasPrefix(pkg, "bench") {
			return nil // main sees everything
		}
		ok, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in the layout; add it to this test with its allowed imports", pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		seen++
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, module) {
				continue
			}
			target := strings.TrimPrefix(p, module)
			permitted := false
			for _, a := range ok {
				if a == target {
					permitted = true
				}
			}
			if !permitted {
				t.Errorf("%s imports %s; %s may import only %v", path, target, pkg, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 10 {
		t.Fatalf("checked only %d files", seen)
	}
}
