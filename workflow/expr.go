package workflow

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// ExprEnv is what the expression of a condition, filter or transformer
// node can read: inputs (the workflow's variables overridden by the run's
// inputs), outputs (of the nodes that finished, by id), shared (the shared
// context), input (what flows into the node: its parent's output, or a map
// of its parents' outputs by id), execution_id and workflow_id. An output
// or shared value that is a string holding a JSON object or array is
// decoded first, as templates do, so outputs.x.score reads a model's JSON
// answer.
type ExprEnv struct {
	Inputs      map[string]any `expr:"inputs"`
	Outputs     map[string]any `expr:"outputs"`
	Shared      map[string]any `expr:"shared"`
	Input       any            `expr:"input"`
	ExecutionID string         `expr:"execution_id"`
	WorkflowID  string         `expr:"workflow_id"`
}

// CompileExpression compiles an expression of the expr language
// (github.com/expr-lang/expr) over an ExprEnv. A name the environment does
// not have is an error here, as is a result that cannot be a boolean when
// asBool is set. The error says where in src it is.
func CompileExpression(src string, asBool bool) (*vm.Program, error) {
	opts := []expr.Option{expr.Env(ExprEnv{})}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		msg := firstLine(err.Error())
		if strings.HasPrefix(msg, "unknown name") {
			msg += "; an expression reads inputs, outputs, shared, input, execution_id and workflow_id, like inputs.NAME"
		}
		return nil, fmt.Errorf("the expression does not compile: %s", msg)
	}
	return p, nil
}

// RunExpression runs a compiled expression in env.
func RunExpression(p *vm.Program, env ExprEnv) (any, error) {
	env.Inputs = plainValues(env.Inputs, false)
	env.Outputs = plainValues(env.Outputs, true)
	env.Shared = plainValues(env.Shared, true)
	env.Input = plain(decodedJSON(env.Input))
	v, err := expr.Run(p, env)
	if err != nil {
		return nil, fmt.Errorf("the expression failed: %s", firstLine(err.Error()))
	}
	return v, nil
}

// firstLine is the first line of expr's error: the message and its place
// (line:column); the lines after it repeat the source with a caret, which a
// problem or a log entry on one line cannot show.
func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(first)
}

// plainValues is m with its values as plain returns them, strings holding
// JSON decoded first when decode is set.
func plainValues(m map[string]any, decode bool) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if decode {
			v = decodedJSON(v)
		}
		out[k] = plain(v)
	}
	return out
}

// plain converts the json.Number values of v (documents are decoded
// keeping numbers exact) to int or float64, the numbers expressions
// compute with; whole numbers become int, so 2 + 1 is the label "3".
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

func decodedJSON(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	t := strings.TrimSpace(s)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return v
	}
	var decoded any
	if json.Unmarshal([]byte(t), &decoded) != nil {
		return v
	}
	return decoded
}
