package tracingpolicy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotPolicy marks a YAML document that is not a TracingPolicy (another
// kind of object, or an empty document). Policy directories may hold other
// files, such as the agent's own configuration: callers skip these, logging
// at debug level.
var ErrNotPolicy = errors.New("not a TracingPolicy")

// FieldError is one problem in a policy file. Line and Column are 1-based; 0
// means unknown (an error about the whole file). Path is the field path
// (spec.kprobes[0].args[1].type), empty for errors not tied to a field.
type FieldError struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
}

func (e FieldError) location() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if e.Path != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Path)
	}
	return b.String()
}

func (e FieldError) Error() string {
	if loc := e.location(); loc != "" {
		return loc + ": " + e.Msg
	}
	return e.Msg
}

// ErrorList holds every error found in a file, in file order.
type ErrorList struct {
	Errors []FieldError
}

// maxReported bounds how many errors Error prints; the list keeps them all.
const maxReported = 50

func (l *ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l.Errors {
		if i == maxReported {
			fmt.Fprintf(&b, "\n... and %d more errors", len(l.Errors)-maxReported)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (l *ErrorList) Unwrap() []error {
	errs := make([]error, len(l.Errors))
	for i, e := range l.Errors {
		errs[i] = e
	}
	return errs
}

// err returns l as an error, or nil when it is empty.
func (l *ErrorList) err() error {
	if l == nil || len(l.Errors) == 0 {
		return nil
	}
	return l
}
