package dsclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// OptionsError lists every invalid field of an options value ([RetryPolicy], [ReadOptions],
// [ConsumerOptions]) or every invalid [Option], each by its Go field path. It matches
// [ErrInvalidArgument] with [errors.Is]. It is the same type as pipeline.OptionsError.
type OptionsError = optcheck.Error

// FieldError is one problem of an [OptionsError]: the field's path and what is wrong.
type FieldError = optcheck.FieldError

// Sentinel errors. Every error returned by an operation of this package is an [*Error] that
// wraps exactly one of these kinds, so callers test the kind with [errors.Is] and read the
// details with [errors.As]:
//
//	var e *dsclient.Error
//	if errors.As(err, &e) && errors.Is(err, dsclient.ErrStaleEpoch) {
//		log.Printf("fenced: server epoch is %d", e.Epoch)
//	}
//
// HTTP statuses are mapped by the operation and the response headers, not by one table: a 409
// is [ErrConflict] when creating, [ErrStreamClosed] when the server says the stream is closed,
// [ErrSequenceConflict] for a Stream-Seq regression and [ErrSequenceGap] for an idempotent
// writer's gap; a 403 is [ErrStaleEpoch] when it carries a producer epoch, else
// [ErrForbidden].
var (
	// ErrNotFound: the stream does not exist (404), or has expired.
	ErrNotFound = errors.New("dsclient: stream not found")
	// ErrGone: the requested offset is before the earliest retained data, or the stream was
	// soft-deleted (410). [Error.EarliestOffset] holds the earliest offset when the server
	// gave one.
	ErrGone = errors.New("dsclient: gone")
	// ErrConflict: the stream exists with a different configuration, or the content type of
	// an append does not match the stream's (409).
	ErrConflict = errors.New("dsclient: conflict")
	// ErrSequenceConflict: a Stream-Seq value was not greater than the last one (409).
	ErrSequenceConflict = errors.New("dsclient: stream sequence conflict")
	// ErrStreamClosed: the stream is closed and accepts no more appends (409 with
	// Stream-Closed). [Error.NextOffset] holds the stream's final offset.
	ErrStreamClosed = errors.New("dsclient: stream closed")
	// ErrStaleEpoch: an idempotent writer's epoch is older than the server's (403).
	// [Error.Epoch] holds the server's current epoch.
	ErrStaleEpoch = errors.New("dsclient: stale writer epoch")
	// ErrSequenceGap: an idempotent writer's sequence skipped ahead (409).
	// [Error.ExpectedSeq] and [Error.ReceivedSeq] hold the server's view.
	ErrSequenceGap = errors.New("dsclient: writer sequence gap")
	// ErrBadRequest: the server rejected the request as malformed (400), for example an
	// invalid offset or invalid JSON.
	ErrBadRequest = errors.New("dsclient: bad request")
	// ErrUnauthorized: authentication is missing or invalid (401).
	ErrUnauthorized = errors.New("dsclient: unauthorized")
	// ErrForbidden: access is denied (403).
	ErrForbidden = errors.New("dsclient: forbidden")
	// ErrRateLimited: too many requests (429). [Error.RetryAfter] holds the server's
	// Retry-After when it sent one.
	ErrRateLimited = errors.New("dsclient: rate limited")
	// ErrPayloadTooLarge: the request body exceeds the server's limit (413).
	ErrPayloadTooLarge = errors.New("dsclient: payload too large")
	// ErrServerError: the server failed (5xx).
	ErrServerError = errors.New("dsclient: server error")
	// ErrUnexpectedStatus: the server answered with a status the operation does not expect.
	ErrUnexpectedStatus = errors.New("dsclient: unexpected status")
	// ErrNetwork: the request failed below HTTP (connection refused, reset, dropped).
	ErrNetwork = errors.New("dsclient: network error")
	// ErrTimeout: the server sent nothing for a read's idle timeout, or did not answer a
	// long-poll within the server's timeout plus a margin (see [ReadOptions.IdleTimeout]).
	// Reads retry it as a transient failure.
	ErrTimeout = errors.New("dsclient: timed out waiting for the server")
	// ErrParse: a response could not be parsed: malformed JSON, a malformed SSE event, bad
	// base64, or a missing protocol header. [Error.BytePos] says where, when known. A chunk
	// whose body is malformed cannot go on: its later reads return the same error (see
	// [ReadOptions.OnParseError] for retrying it instead).
	ErrParse = errors.New("dsclient: malformed response")
	// ErrDecode: a JSON item is well-formed but does not decode into the caller's type
	// ([Chunk.DecodeItem], [JSONItems]). The item is consumed; the chunk goes on with the
	// next one.
	ErrDecode = errors.New("dsclient: item does not decode")
	// ErrOffsetRegressed: the server answered a read with a Stream-Next-Offset lower than
	// the offset asked for, or equal to it while returning data (protocol section 8:
	// offsets only grow). The response is not followed and its data is not delivered;
	// reads retry it as a transient failure, asking again from the offset they hold.
	ErrOffsetRegressed = errors.New("dsclient: server offset went backwards or did not advance")
	// ErrTooLarge: a JSON item or an in-memory read exceeds the configured limit
	// ([ReadOptions.MaxBytes]).
	ErrTooLarge = errors.New("dsclient: response exceeds the size limit")
	// ErrInvalidArgument: the caller passed an invalid option or argument; nothing was sent.
	ErrInvalidArgument = errors.New("dsclient: invalid argument")
)

// Op names an operation, for errors and observer events.
type Op string

// Operations.
const (
	OpCreate Op = "create"
	OpHead   Op = "head"
	OpDelete Op = "delete"
	OpAppend Op = "append"
	OpClose  Op = "close"
	OpRead   Op = "read"
)

// Error is the error returned by every operation. It wraps one of the sentinel kinds (Kind)
// and, when there is one, the underlying cause (Err). URL never carries credentials or query
// parameters: see [Stream.URL].
type Error struct {
	// Op is the operation that failed.
	Op Op
	// URL is the stream URL (without query parameters).
	URL string
	// Status is the HTTP status, or 0 when no response was received.
	Status int
	// Kind is the sentinel error this error wraps, such as [ErrNotFound].
	Kind error
	// Detail is the server's explanation (the start of the response body) or the client's.
	Detail string
	// Offset is the offset a read asked for, when the operation is a read.
	Offset Offset
	// BytePos is, for [ErrParse], the position in the response body where the malformed
	// data starts (for an SSE chunk's items, the position in the data its events carried);
	// -1 when unknown. Other kinds leave it unset.
	BytePos int64
	// ReturnedOffset is the Stream-Next-Offset (or SSE streamNextOffset) the server sent,
	// for [ErrOffsetRegressed].
	ReturnedOffset Offset
	// EarliestOffset is the earliest retained offset, for [ErrGone] when the server sent it.
	EarliestOffset Offset
	// NextOffset is the stream's final offset, for [ErrStreamClosed] when the server sent it.
	NextOffset Offset
	// RetryAfter is the server's Retry-After, for [ErrRateLimited] and 503s.
	RetryAfter time.Duration
	// Epoch is the server's current writer epoch, for [ErrStaleEpoch].
	Epoch int64
	// ExpectedSeq and ReceivedSeq are the server's view of a writer sequence gap, for
	// [ErrSequenceGap].
	ExpectedSeq, ReceivedSeq int64
	// Attempts is how many times the request was sent.
	Attempts int
	// Err is the underlying cause (a network or parse error), or nil.
	Err error
}

// Error describes the failure, naming the operation and the stream URL.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dsclient: ")
	b.WriteString(string(e.Op))
	b.WriteByte(' ')
	b.WriteString(e.URL)
	if e.Offset != "" {
		b.WriteString(" at offset ")
		b.WriteString(string(e.Offset))
	}
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "dsclient: "))
	} else {
		b.WriteString("error")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	switch {
	case e.Kind == ErrParse && e.BytePos >= 0:
		fmt.Fprintf(&b, " at byte %d", e.BytePos)
	case e.Kind == ErrOffsetRegressed && e.ReturnedOffset != "":
		fmt.Fprintf(&b, "; server returned %s", e.ReturnedOffset)
	case errors.Is(e.Kind, ErrStaleEpoch):
		fmt.Fprintf(&b, "; server epoch %d", e.Epoch)
	case errors.Is(e.Kind, ErrSequenceGap):
		fmt.Fprintf(&b, "; expected sequence %d, received %d", e.ExpectedSeq, e.ReceivedSeq)
	case errors.Is(e.Kind, ErrGone) && e.EarliestOffset != "":
		fmt.Fprintf(&b, "; earliest offset %s", e.EarliestOffset)
	case errors.Is(e.Kind, ErrRateLimited) && e.RetryAfter > 0:
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Unwrap returns the kind and the cause, for [errors.Is] and [errors.As].
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Temporary reports whether the failure is transient: a network error, a timeout, a 429, a
// 5xx or an offset the server sent backwards. The client has already retried such failures
// as its [RetryPolicy] allows. An error caused by the caller's context ending is not
// temporary.
func (e *Error) Temporary() bool {
	switch e.Kind {
	case ErrNetwork, ErrTimeout, ErrRateLimited, ErrServerError, ErrOffsetRegressed:
		return !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded)
	}
	return false
}

func invalidArg(op Op, url, format string, args ...any) *Error {
	return &Error{Op: op, URL: url, Kind: ErrInvalidArgument, Detail: fmt.Sprintf(format, args...), BytePos: -1}
}
