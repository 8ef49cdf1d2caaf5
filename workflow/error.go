// Package workflow holds Switchboard's domain: workflow documents, their
// validation, ordering and templates, CALL statements, executions and the
// events an execution emits. It imports no other package of the project.
package workflow

import (
	"errors"
	"fmt"
	"strings"
)

// Code says what kind of failure an [Error] is. Each maps to one HTTP status in
// the web package.
type Code string

// Error codes.
const (
	CodeInvalid      Code = "invalid"      // the input is malformed or fails validation (400/422)
	CodeNotFound     Code = "not_found"    // no such workflow or execution (404)
	CodeConflict     Code = "conflict"     // the request conflicts with the current state (409)
	CodeUnauthorized Code = "unauthorized" // missing or wrong credentials (401)
	CodeUnavailable  Code = "unavailable"  // a dependency (LLM, Redis) cannot serve now; retryable (503)
	CodeTooLarge     Code = "too_large"    // a body or document over a configured limit (413)
	CodeInternal     Code = "internal"     // a bug or an unexpected failure (500)
	CodeMalformed    Code = "malformed"    // the body is not JSON at all (400)
	CodeCancelled    Code = "cancelled"    // the work was cancelled
	CodeTimeout      Code = "timeout"      // a deadline passed
	CodeBudget       Code = "budget_exceeded"
	CodeRateLimited  Code = "rate_limited" // too many calls; retry after a while (429)
)

// Problem is one thing wrong with a document, located by a JSON path such as
// nodes[2].config.temperature.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error is the one error type of the domain. Code says what kind of failure it
// is, Message is safe to show to a client, Problems lists validation problems
// and Err is the underlying cause, which is never shown to clients.
type Error struct {
	Code     Code
	Message  string
	Problems []Problem
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	for i, p := range e.Problems {
		if i == 0 && e.Message != "" {
			b.WriteString(": ")
		} else if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	if e.Err != nil {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message that is safe
// to show to a client.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, or a generic sentence for any other error, so internal details never
// reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}

// ErrorProblems returns the validation problems carried by err, if any.
func ErrorProblems(err error) []Problem {
	var e *Error
	if errors.As(err, &e) {
		return e.Problems
	}
	return nil
}
