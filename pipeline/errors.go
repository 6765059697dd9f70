package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"

	"github.com/sluice-go/sluice/ack"
)

var (
	// ErrEndOfInput is returned by a [Producer] when its input is exhausted: the pipeline
	// drains and completes the run.
	ErrEndOfInput = errors.New("pipeline: end of input")

	// ErrDraining is the cause of the context given to [Producer.Produce] once the pipeline
	// has started draining (see context.Cause).
	ErrDraining = errors.New("pipeline: draining")

	// ErrUnknownBatcher fails a message routed to a batcher the pipeline does not have.
	ErrUnknownBatcher = errors.New("pipeline: unknown batcher")

	// ErrFailed is the error of a message failed with [Message.Fail](nil).
	ErrFailed = errors.New("pipeline: message failed")

	// ErrRunning is returned by [Pipeline.Run] when the pipeline is running or has run: a
	// Pipeline runs once.
	ErrRunning = errors.New("pipeline: Run called twice")
)

// FieldError is one problem with an options value: the path of the field, as in Go source
// (Batchers["db"].BatchSize), and what is wrong with it. It is the project's one option
// vocabulary: dsclient.FieldError is the same type.
type FieldError = optcheck.FieldError

// OptionsError is returned by [New] (and [Options.Validate]) when options are invalid. It
// lists every problem found, in a stable order. Match it with errors.As. Every options type
// of the project reports its problems with this same type (dsclient.OptionsError is an alias
// of it).
type OptionsError = optcheck.Error

// PanicError is the error of a message (or of every message of a batch, or of a run) whose
// handler, producer or hook panicked: the value it panicked with and the goroutine's stack at
// that moment. When the value is an error, errors.Is and errors.As see through to it.
type PanicError struct {
	Value any
	Stack []byte
}

// Error returns the panic value followed by the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("pipeline: panic: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error, else nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Permanent reports true: a panic is a bug in the handler, the same on every attempt, so the
// pipeline treats the message as bad data rather than retry it (see [IsPermanent]).
func (e *PanicError) Permanent() bool { return true }

// HaltError is returned by [Pipeline.Run] when the pipeline halted because of a failed
// message: under the [HaltOnFailure] policy, or when the [FailureHandler] itself failed. It names
// the first such message; that message, and every other one reported with
// [ack.Failure.Halt], was acknowledged as failed with Halt set.
type HaltError struct {
	// Ref, Metadata and Attempt identify the message.
	Ref      ack.Ref
	Metadata Metadata
	Attempt  int
	// Err is why the message failed.
	Err error
	// HandlerErr is the failure handler's error when the halt is due to it, else nil.
	HandlerErr error
}

// Error names the message (stream, position, reference, attempt) and its error.
func (e *HaltError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline: halted on failed message (position %d of %q, ref %d, attempt %d): %v",
		e.Metadata.Position, e.Metadata.Stream, e.Ref.N, e.Attempt, e.Err)
	if e.HandlerErr != nil {
		fmt.Fprintf(&b, "; failure handler: %v", e.HandlerErr)
	}
	return b.String()
}

// Unwrap returns the message's error and the failure handler's, if any.
func (e *HaltError) Unwrap() []error {
	if e.HandlerErr != nil {
		return []error{e.Err, e.HandlerErr}
	}
	return []error{e.Err}
}

// ShutdownTimeoutError is returned by [Pipeline.Run] when draining took longer than
// [Options.ShutdownTimeout]. At that moment the pipeline cancelled its handlers' context and
// stopped delivering acknowledgements: Unfinished messages were fetched from the producer but
// never acknowledged, so an at-least-once source delivers them again after a restart (an
// offset-committing acknowledger never commits past them).
//
// Retrying counts those of them that had failed transiently and were waiting to be retried
// (a sink or service still down: see [RetryTransient]; a fanned-out message counts once per
// copy retried), and LastErr is the last such failure;
// Unwrap returns it, so errors.Is and errors.As on Run's error see the sink's error.
type ShutdownTimeoutError struct {
	Timeout    time.Duration
	Unfinished int
	Retrying   int
	LastErr    error
}

// Error says how long the timeout was, how many messages were left unfinished, and how many
// of them were failing, with the last failure.
func (e *ShutdownTimeoutError) Error() string {
	s := fmt.Sprintf("pipeline: shutdown timeout of %v passed with %d messages unfinished", e.Timeout, e.Unfinished)
	if e.Retrying > 0 {
		s += fmt.Sprintf(" (%d of them failing and waiting to be retried", e.Retrying)
		if e.LastErr != nil {
			s += ", last error: " + e.LastErr.Error()
		}
		s += ")"
	}
	return s
}

// Unwrap returns LastErr.
func (e *ShutdownTimeoutError) Unwrap() error { return e.LastErr }
