// Package optcheck is the one vocabulary of option validation across the project: every
// options type (the pipeline's, the producers', the client's, the in-process server's, the
// metrics') reports every bad field at once, each by its Go field path, in an [*Error].
// Packages re-export the types under their own names (pipeline.OptionsError,
// dsclient.OptionsError), so that errors.As matches any of them with either name.
package optcheck

import (
	"fmt"
	"strings"
)

// FieldError is one problem with an options value: the path of the field, as in Go source
// (Batchers["db"].BatchSize, WriterOptions.MaxBatchBytes), and what is wrong with it.
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "Field: Problem".
func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// Error lists every problem found with an options value, in a stable order.
type Error struct {
	Problems []FieldError

	pkg  string // the reporting package, for the message
	kind error  // a sentinel the error also matches, or nil
}

// Error lists every problem, separated by semicolons, after the reporting package's name.
func (e *Error) Error() string {
	var b strings.Builder
	if e.pkg != "" {
		b.WriteString(e.pkg)
		b.WriteString(": ")
	}
	b.WriteString("invalid options: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel the reporting package matches invalid options with, if any.
func (e *Error) Unwrap() error { return e.kind }

// Checker collects problems. The zero value is not usable; make one with [New].
type Checker struct {
	err Error
}

// New returns a checker for package pkg (the prefix of the message); kind, if not nil, is
// the sentinel the resulting error also matches with errors.Is.
func New(pkg string, kind error) *Checker {
	return &Checker{err: Error{pkg: pkg, kind: kind}}
}

// Bad records a problem with field, formatted as fmt.Sprintf(format, args...).
func (c *Checker) Bad(field, format string, args ...any) {
	c.err.Problems = append(c.err.Problems, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Add records problems found by another checker or an earlier validation (for nested
// options), each field prefixed with prefix (for example `Batchers["db"].`).
func (c *Checker) Add(prefix string, probs []FieldError) {
	for _, p := range probs {
		c.err.Problems = append(c.err.Problems, FieldError{Field: prefix + p.Field, Problem: p.Problem})
	}
}

// Err returns an [*Error] listing every problem recorded, or nil when there is none.
func (c *Checker) Err() error {
	if len(c.err.Problems) == 0 {
		return nil
	}
	e := c.err
	return &e
}

// Of returns an [*Error] of package pkg listing probs, or nil when probs is empty; kind is
// as for [New].
func Of(pkg string, kind error, probs []FieldError) error {
	if len(probs) == 0 {
		return nil
	}
	return &Error{Problems: probs, pkg: pkg, kind: kind}
}
