package bus

import "time"

// The content and metadata of an ask's two messages, as the bus builds them (NewQuery with the
// executor's context, NewResponse, NewErrorResponse, Meta), are encoded through the structs
// below instead of the maps they are: the library writes a struct's fields in order, where a
// map makes it iterate the map, sort its keys and look up the type of every value. A map is
// encoded through a struct only when it holds exactly the struct's keys, with values of the
// struct's types, so the bytes are those the map would give: the fields are declared in the
// sorted order of their names.

// wireMeta is metadata holding execution_id and workflow_id, as [Meta] makes it.
type wireMeta struct {
	ExecutionID string `json:"execution_id"`
	WorkflowID  string `json:"workflow_id"`
}

// wireAnswer is the content of [NewResponse].
type wireAnswer struct {
	Response string `json:"response"`
	Success  bool   `json:"success"`
}

// wireFailure is the content of [NewErrorResponse].
type wireFailure struct {
	Error    string `json:"error"`
	Response string `json:"response"`
	Success  bool   `json:"success"`
}

// wireQuery is the content of [NewQuery] with the context an executor's ask carries.
type wireQuery struct {
	Context  wireAskContext `json:"context"`
	Question string         `json:"question"`
}

// wireAskContext is the context of an executor's ask: the chain of asking nodes (null when
// nil), the asker's and the target's node ids.
type wireAskContext struct {
	Chain    []string `json:"chain"`
	FromNode string   `json:"from_node"`
	ToNode   string   `json:"to_node"`
}

func metaShape(m map[string]any) (wireMeta, bool) {
	if len(m) != 2 {
		return wireMeta{}, false
	}
	e, ok := m[MetaExecutionID].(string)
	w, ok2 := m[MetaWorkflowID].(string)
	return wireMeta{ExecutionID: e, WorkflowID: w}, ok && ok2
}

func answerShape(c map[string]any) (wireAnswer, bool) {
	if len(c) != 2 {
		return wireAnswer{}, false
	}
	var a wireAnswer
	var ok, ok2 bool
	a.Response, ok = c["response"].(string)
	a.Success, ok2 = c["success"].(bool)
	return a, ok && ok2
}

func failureShape(c map[string]any) (wireFailure, bool) {
	if len(c) != 3 {
		return wireFailure{}, false
	}
	var f wireFailure
	var ok, ok2, ok3 bool
	f.Error, ok = c["error"].(string)
	f.Response, ok2 = c["response"].(string)
	f.Success, ok3 = c["success"].(bool)
	return f, ok && ok2 && ok3
}

func queryShape(c map[string]any) (wireQuery, bool) {
	if len(c) != 2 {
		return wireQuery{}, false
	}
	question, ok := c["question"].(string)
	ctx, ok2 := c["context"].(map[string]any)
	if !ok || !ok2 || len(ctx) != 3 {
		return wireQuery{}, false
	}
	chain, ok := ctx["chain"].([]string)
	from, ok2 := ctx["from_node"].(string)
	to, ok3 := ctx["to_node"].(string)
	if !ok || !ok2 || !ok3 {
		return wireQuery{}, false
	}
	return wireQuery{Context: wireAskContext{Chain: chain, FromNode: from, ToNode: to}, Question: question}, true
}

// appendQuotedTime appends t in UTC as a JSON string in the wire's layout (timeLayout). The
// layout is fixed, so the digits are written directly: time.Time.AppendFormat interprets the
// layout on every call, and a message carries up to two times. Years outside 0-9999 take
// AppendFormat.
func appendQuotedTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	dst = append(dst, '"')
	if year < 0 || year > 9999 {
		dst = t.AppendFormat(dst, timeLayout)
		return append(dst, '"')
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, t.Nanosecond()/1000, 6)
	return append(dst, 'Z', '"')
}

// appendDigits appends the width last decimal digits of v >= 0, with leading zeros.
func appendDigits(dst []byte, v, width int) []byte {
	n := len(dst) + width
	dst = append(dst, make([]byte, width)...)
	for i := n - 1; i >= n-width; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}
