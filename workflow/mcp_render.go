package workflow

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// VarNames returns the names the placeholders in the values of
// s's headers and env use, each once: the run variables s needs.
func (s MCPServer) VarNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range []map[string]string{s.Headers, s.Env} {
		for _, v := range m {
			for _, n := range Placeholders(v) {
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// Rendered returns s with the placeholders in the values of its headers
// and env, {{name}}, replaced by the run's variable of that name (from
// vars: the run's inputs over the workflow's variables), so that a token
// is a secret variable, masked wherever it shows, instead of text in the
// workflow: {"Authorization": "Bearer {{api_key}}"}. Secrets are the
// values to mask (Workflow.Secrets); those that end up in a header or an
// env value are set in the result's Secrets. A placeholder that names no
// variable is an error naming the server and the key. The command and the
// url are left as they are.
func (s MCPServer) Rendered(vars map[string]any, secrets []string) (MCPServer, error) {
	out := s
	var problems []string
	render := func(kind string, m map[string]string) map[string]string {
		if len(m) == 0 {
			return m
		}
		r := make(map[string]string, len(m))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := m[k]
			var missing []string
			for _, n := range Placeholders(v) {
				if _, ok := vars[n]; !ok {
					missing = append(missing, "{{"+n+"}}")
				}
			}
			if len(missing) > 0 {
				problems = append(problems, fmt.Sprintf("%s.%s uses %s, which names no variable or input of the run", kind, k, strings.Join(missing, ", ")))
				continue
			}
			rv, err := Render(v, Scope{Vars: vars})
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s.%s: %v", kind, k, err))
				continue
			}
			r[k] = rv
			if rv != v {
				for _, sec := range secrets {
					if sec != "" && strings.Contains(rv, sec) && !slices.Contains(out.Secrets, sec) {
						out.Secrets = append(out.Secrets, sec)
					}
				}
			}
		}
		return r
	}
	out.Secrets = nil
	out.Headers = render("headers", s.Headers)
	out.Env = render("env", s.Env)
	if len(problems) > 0 {
		return s, fmt.Errorf("MCP server %q: %s", s.Name, strings.Join(problems, "; "))
	}
	return out, nil
}
