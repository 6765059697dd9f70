package pipeline_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluice-go/sluice/pipeline"
)

// rowRejected is another package's bad-data error, marked without importing pipeline.
type rowRejected struct{ row int }

func (e *rowRejected) Error() string   { return fmt.Sprintf("row %d rejected", e.row) }
func (e *rowRejected) Permanent() bool { return true }

// retryable says it is not permanent; what it wraps may still be.
type retryable struct{ err error }

func (e *retryable) Error() string   { return "retryable: " + e.err.Error() }
func (e *retryable) Unwrap() error   { return e.err }
func (e *retryable) Permanent() bool { return false }

func TestIsPermanent(t *testing.T) {
	plain := errors.New("connection refused")
	marked := pipeline.Permanent(plain)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", plain, false},
		{"marked", marked, true},
		{"wrapped marked", fmt.Errorf("insert: %w", marked), true},
		{"own method", &rowRejected{3}, true},
		{"own method, wrapped", fmt.Errorf("copy: %w", &rowRejected{3}), true},
		{"joined with a plain one", errors.Join(plain, &rowRejected{3}), true},
		{"joined plain ones", errors.Join(plain, errors.New("timeout")), false},
		{"panic", &pipeline.PanicError{Value: "bug"}, true},
		{"Permanent() false", &retryable{plain}, false},
		{"Permanent() false around a permanent one", &retryable{&rowRejected{1}}, true},
	} {
		if got := pipeline.IsPermanent(tc.err); got != tc.want {
			t.Errorf("%s: IsPermanent(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
	if marked.Error() != plain.Error() || !errors.Is(marked, plain) {
		t.Errorf("Permanent(err) = %q, want err's text and errors.Is to match err", marked)
	}
	var rr *rowRejected
	if !errors.As(pipeline.Permanent(fmt.Errorf("x: %w", &rowRejected{5})), &rr) || rr.row != 5 {
		t.Error("errors.As does not see through Permanent")
	}
	if pipeline.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if again := pipeline.Permanent(marked); again != marked {
		t.Error("Permanent of a permanent error wraps it again")
	}
}
