package dsclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-go/sluice/internal/protocol"
)

// Kinds of the subscription operations (PROTOCOL.md sections 6 and 7). Like the other kinds,
// they are wrapped by an [*Error]; the server's error body is also there as a
// [*SubscriptionError], read with [errors.As]:
//
//	var se *dsclient.SubscriptionError
//	if errors.Is(err, dsclient.ErrAlreadyClaimed) && errors.As(err, &se) {
//		log.Printf("held by %s at generation %d", se.Holder, se.Generation)
//	}
//
// [ErrSubscriptionNotFound] also matches [ErrNotFound], and [ErrSubscriptionConflict] also
// matches [ErrConflict].
var (
	// ErrSubscriptionNotFound: the subscription does not exist, or was deleted (404
	// SUBSCRIPTION_NOT_FOUND). It matches [ErrNotFound] too.
	ErrSubscriptionNotFound error = &subKind{"dsclient: subscription not found", ErrNotFound}
	// ErrSubscriptionConflict: a subscription with this id exists with another configuration
	// (409 SUBSCRIPTION_ALREADY_EXISTS). It matches [ErrConflict] too.
	ErrSubscriptionConflict error = &subKind{"dsclient: subscription exists with another configuration", ErrConflict}
	// ErrAlreadyClaimed: another worker holds the subscription's lease (409 ALREADY_CLAIMED).
	// The [SubscriptionError] names the holder and the generation.
	ErrAlreadyClaimed = fmt.Errorf("dsclient: subscription already claimed")
	// ErrNoPendingWork: a claim found every linked stream acked up to its tail (409
	// NO_PENDING_WORK, from the reference server): there is nothing to claim until the next
	// wake.
	ErrNoPendingWork = fmt.Errorf("dsclient: subscription has no pending work")
	// ErrFenced: an ack, release or callback names a wake or generation that is no longer
	// current (409 FENCED): the lease expired and the subscription was woken again, or the
	// claim was already released or acked done. The caller no longer holds the
	// subscription: it must stop working on it and commit nothing more.
	ErrFenced = fmt.Errorf("dsclient: fenced: the wake or generation is no longer current")
	// ErrInvalidAck: an ack names a stream the subscription does not link, an offset before
	// the stream's acked offset, past its tail, or -1 (409 INVALID_OFFSET). None of the
	// request's acks was applied.
	ErrInvalidAck = fmt.Errorf("dsclient: ack rejected: invalid offset")
)

// subKind is a kind that also matches a more general one.
type subKind struct {
	msg    string
	parent error
}

func (k *subKind) Error() string { return k.msg }
func (k *subKind) Unwrap() error { return k.parent }

// SubscriptionError is the error body of a subscription operation ({"error": {...}}),
// reached with [errors.As] from the [*Error] an operation returns.
type SubscriptionError struct {
	// Code is the protocol's error code, such as "ALREADY_CLAIMED" or "FENCED".
	Code string
	// Message is the server's explanation, if any.
	Message string
	// Holder is the worker that holds the lease, for ALREADY_CLAIMED.
	Holder string
	// Generation is the subscription's current generation, for ALREADY_CLAIMED.
	Generation int64
}

// Error describes the server's answer: its code, the holder and generation when there is
// one, and its message.
func (e *SubscriptionError) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Holder != "" {
		fmt.Fprintf(&b, ": held by %s at generation %d", strconv.Quote(e.Holder), e.Generation)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// subscriptionKind returns the kind of a subscription error code, or nil for a code the
// status mapping already covers (INVALID_REQUEST, TOKEN_*, WEBHOOK_URL_REJECTED) or does not
// know.
func subscriptionKind(code string) error {
	switch code {
	case protocol.CodeSubscriptionNotFound:
		return ErrSubscriptionNotFound
	case protocol.CodeSubscriptionExists:
		return ErrSubscriptionConflict
	case protocol.CodeAlreadyClaimed:
		return ErrAlreadyClaimed
	case protocol.CodeNoPendingWork:
		return ErrNoPendingWork
	case protocol.CodeFenced:
		return ErrFenced
	case protocol.CodeInvalidOffset:
		return ErrInvalidAck
	}
	return nil
}

// parseSubscriptionError reads an error body; ok is false when body is not one.
func parseSubscriptionError(body []byte) (se *SubscriptionError, ok bool) {
	var env struct {
		Error *struct {
			Code          string          `json:"code"`
			Message       string          `json:"message"`
			CurrentHolder string          `json:"current_holder"`
			Generation    json.RawMessage `json:"generation"`
		} `json:"error"`
	}
	if json.Unmarshal(bytes.TrimSpace(body), &env) != nil || env.Error == nil || env.Error.Code == "" {
		return nil, false
	}
	se = &SubscriptionError{Code: env.Error.Code, Message: env.Error.Message, Holder: env.Error.CurrentHolder}
	if len(env.Error.Generation) > 0 {
		se.Generation, _ = strconv.ParseInt(string(env.Error.Generation), 10, 64)
	}
	return se, true
}

// classify refines an *Error of a subscription operation with the server's error body: the
// kind named by its code, and the body as a *SubscriptionError cause.
func classify(err error, body []byte) error {
	e, ok := err.(*Error)
	if !ok || e.Status == 0 || len(body) == 0 {
		return err
	}
	se, ok := parseSubscriptionError(body)
	if !ok {
		return err
	}
	if k := subscriptionKind(se.Code); k != nil {
		e.Kind = k
	}
	e.Detail = ""
	if e.Err == nil {
		e.Err = se
	}
	return e
}
