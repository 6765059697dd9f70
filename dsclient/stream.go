package dsclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// Stream is a handle to one durable stream: its URL plus the client's settings. It is cheap,
// does no I/O until an operation is called, and is safe for concurrent use. Make one with
// [Client.Stream] or [NewStream].
type Stream struct {
	url  string   // redacted: without user info, query or fragment; what errors and events show
	wire string   // without query or fragment, user info kept: what requests are sent to
	base *url.URL // parsed URL, with the handle's own query
	cfg  config
	err  error // deferred construction error
}

// URL returns the stream URL as it may be shown and stored: without user info (credentials),
// query parameters or fragment. Errors, observer events, and the keys and labels built from
// them use it too.
func (s *Stream) URL() string { return s.url }

// CreateOptions configures [Stream.Create]. The zero value creates an empty, open
// application/octet-stream stream (or of the handle's [WithContentType]) with no expiry.
type CreateOptions struct {
	// ContentType of the stream. Default: the handle's content type, else
	// application/octet-stream.
	ContentType string
	// TTL is a sliding time-to-live, in whole seconds. Default: none. Setting both TTL and
	// ExpiresAt is an error.
	TTL time.Duration
	// ExpiresAt is an absolute expiry time. Default: none.
	ExpiresAt time.Time
	// Closed creates the stream closed: Body, if any, is its whole content. Default: open.
	Closed bool
	// Body is the stream's initial content. Default: empty.
	Body []byte
}

// CreateResult describes the stream after [Stream.Create].
type CreateResult struct {
	// Created is true when this call created the stream (201), false when it already existed
	// with the same configuration (200).
	Created bool
	// NextOffset is the tail offset after any initial body.
	NextOffset Offset
	// Closed reports whether the stream is closed.
	Closed bool
}

// Create creates the stream (PUT). It is idempotent: when the stream exists with the same
// configuration it succeeds with Created false; with a different configuration it fails with
// [ErrConflict]. It blocks until the server answers, retrying transient failures; ctx bounds
// it.
func (s *Stream) Create(ctx context.Context, opts CreateOptions) (CreateResult, error) {
	r := &request{op: OpCreate, method: http.MethodPut, ctype: s.contentType(opts.ContentType), safety: idempotent}
	if opts.TTL != 0 && !opts.ExpiresAt.IsZero() {
		return CreateResult{}, invalidArg(OpCreate, s.url, "TTL and ExpiresAt are mutually exclusive")
	}
	if opts.TTL < 0 || opts.TTL%time.Second != 0 {
		return CreateResult{}, invalidArg(OpCreate, s.url, "TTL must be a non-negative whole number of seconds, got %s", opts.TTL)
	}
	if opts.TTL > 0 {
		r.header = append(r.header, kv{protocol.HeaderTTL, strconv.FormatInt(int64(opts.TTL/time.Second), 10)})
	}
	if !opts.ExpiresAt.IsZero() {
		r.header = append(r.header, kv{protocol.HeaderExpiresAt, opts.ExpiresAt.UTC().Format(time.RFC3339Nano)})
	}
	if opts.Closed {
		r.header = append(r.header, kv{protocol.HeaderClosed, "true"})
	}
	if len(opts.Body) > 0 {
		r.body = opts.Body
	}
	resp, err := s.do(ctx, r)
	if err != nil {
		return CreateResult{}, err
	}
	drain(resp)
	return CreateResult{
		Created:    resp.StatusCode == http.StatusCreated,
		NextOffset: Offset(resp.Header.Get(protocol.HeaderNextOffset)),
		Closed:     headerTrue(resp.Header, protocol.HeaderClosed),
	}, nil
}

// StreamInfo describes a stream, from [Stream.Head].
type StreamInfo struct {
	// ContentType is the stream's content type.
	ContentType string
	// NextOffset is the tail offset: where the next append will land.
	NextOffset Offset
	// TTL is the stream's sliding time-to-live, or 0.
	TTL time.Duration
	// ExpiresAt is the stream's absolute expiry, or the zero time.
	ExpiresAt time.Time
	// Closed reports whether the stream is closed.
	Closed bool
	// ETag is the response's entity tag, if any.
	ETag string
}

// Head returns the stream's metadata (HEAD). A missing stream is [ErrNotFound]. It blocks
// until the server answers, retrying transient failures.
func (s *Stream) Head(ctx context.Context) (StreamInfo, error) {
	resp, err := s.do(ctx, &request{op: OpHead, method: http.MethodHead, safety: idempotent})
	if err != nil {
		return StreamInfo{}, err
	}
	drain(resp)
	h := resp.Header
	m := StreamInfo{
		ContentType: h.Get("Content-Type"),
		NextOffset:  Offset(h.Get(protocol.HeaderNextOffset)),
		Closed:      headerTrue(h, protocol.HeaderClosed),
		ETag:        h.Get("ETag"),
	}
	if n, ok := headerInt(h, protocol.HeaderTTL); ok && n > 0 {
		m.TTL = time.Duration(n) * time.Second
	}
	if v := h.Get(protocol.HeaderExpiresAt); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			m.ExpiresAt = t
		}
	}
	return m, nil
}

// Delete deletes the stream (DELETE). A missing stream is [ErrNotFound], except when an
// earlier attempt of this same call may have deleted it before its response was lost; then
// Delete succeeds. It blocks until the server answers, retrying transient failures.
func (s *Stream) Delete(ctx context.Context) error {
	r := &request{op: OpDelete, method: http.MethodDelete, safety: idempotent}
	resp, err := s.do(ctx, r)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrNotFound && e.Attempts > 1 {
			return nil
		}
		return err
	}
	drain(resp)
	return nil
}

// AppendOptions configures [Stream.Append].
type AppendOptions struct {
	// ContentType of the data; must match the stream's. Default: the handle's content type,
	// else application/octet-stream.
	ContentType string
	// Seq is sent as Stream-Seq: the server rejects a value not greater than the last one
	// with [ErrSequenceConflict]. Default: none.
	Seq string
	// Close closes the stream atomically with this append (with nil data: close only).
	Close bool
	// Idempotent, when set, sends the protocol's idempotent-append headers (Producer-Id,
	// Producer-Epoch, Producer-Seq); the server then deduplicates retries, so such an append
	// is retried on any transient failure. [Writer] sets it; most callers use a Writer
	// instead. Default: nil, a plain append.
	Idempotent *IdempotentHeaders
	// RetryAmbiguous retries a plain append (no Idempotent) on every transient failure,
	// including 5xx and connection failures after the request was sent, where the server may
	// have stored the data: the append becomes at-least-once and may be duplicated. Default:
	// false — a plain append is retried only when it provably did not reach the server, or
	// the server refused it without processing (429, 503).
	RetryAmbiguous bool
}

// IdempotentHeaders are the idempotent-append headers of one append (protocol section
// 5.2.1): the writer's id, its epoch and the batch's sequence number.
type IdempotentHeaders struct {
	// ID is sent as Producer-Id: the writer's identity across restarts.
	ID string
	// Epoch is sent as Producer-Epoch.
	Epoch int64
	// Seq is sent as Producer-Seq: the batch's number within the epoch.
	Seq int64
}

// AppendResult describes a successful append.
type AppendResult struct {
	// NextOffset is the tail offset after the append. It is empty for a duplicate.
	NextOffset Offset
	// Closed reports whether the stream is now closed.
	Closed bool
	// Duplicate is true when the server had already stored this writer batch (204 to an
	// idempotent append); nothing was stored again.
	Duplicate bool
	// ProducerEpoch and ProducerSeq echo the server's producer state (idempotent appends).
	ProducerEpoch, ProducerSeq int64
}

// Append appends data (POST). data must not be empty unless opts.Close is set (the server
// rejects an empty append with [ErrBadRequest]). For a JSON
// stream, data must be a JSON value; an array is flattened one level into several messages
// (use [Stream.AppendJSON] to store a value as one message). It blocks until the server
// answers; retries follow opts (see [AppendOptions.RetryAmbiguous]).
func (s *Stream) Append(ctx context.Context, data []byte, opts AppendOptions) (AppendResult, error) {
	op := OpAppend
	if opts.Close && len(data) == 0 {
		op = OpClose
	}
	r := &request{op: op, method: http.MethodPost, safety: unsafe}
	if len(data) > 0 || !opts.Close {
		r.body = data
		if r.body == nil {
			r.body = []byte{}
		}
		r.ctype = s.contentType(opts.ContentType)
	}
	if opts.Seq != "" {
		r.header = append(r.header, kv{protocol.HeaderSeq, opts.Seq})
	}
	if opts.Close {
		r.header = append(r.header, kv{protocol.HeaderClosed, "true"})
		if len(data) == 0 {
			r.safety = idempotent // close-only is idempotent
		}
	}
	if p := opts.Idempotent; p != nil {
		if p.ID == "" || p.Epoch < 0 || p.Seq < 0 {
			return AppendResult{}, invalidArg(op, s.url, "idempotent headers need a non-empty id and non-negative epoch and sequence")
		}
		r.header = append(r.header,
			kv{protocol.HeaderProducerID, p.ID},
			kv{protocol.HeaderProducerEpoch, strconv.FormatInt(p.Epoch, 10)},
			kv{protocol.HeaderProducerSeq, strconv.FormatInt(p.Seq, 10)})
		r.safety = idempotent
	} else if opts.RetryAmbiguous {
		r.safety = unsafeAlways
	}
	resp, err := s.do(ctx, r)
	if err != nil {
		return AppendResult{}, err
	}
	drain(resp)
	h := resp.Header
	res := AppendResult{
		NextOffset: Offset(h.Get(protocol.HeaderNextOffset)),
		Closed:     headerTrue(h, protocol.HeaderClosed),
		Duplicate:  opts.Idempotent != nil && resp.StatusCode == http.StatusNoContent,
	}
	res.ProducerEpoch, _ = headerInt(h, protocol.HeaderProducerEpoch)
	res.ProducerSeq, _ = headerInt(h, protocol.HeaderProducerSeq)
	return res, nil
}

// AppendJSON appends v to a JSON stream as one message: it is encoded and wrapped in a
// one-element array, so that an array value is stored whole rather than flattened
// (protocol section 9.1). opts.ContentType defaults to application/json.
func (s *Stream) AppendJSON(ctx context.Context, v any, opts AppendOptions) (AppendResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return AppendResult{}, &Error{Op: OpAppend, URL: s.url, Kind: ErrInvalidArgument, Err: err}
	}
	body := make([]byte, 0, len(b)+2)
	body = append(append(append(body, '['), b...), ']')
	if opts.ContentType == "" {
		opts.ContentType = protocol.ContentTypeJSON
	}
	return s.Append(ctx, body, opts)
}

// AppendJSONBatch appends each of items as one message of a JSON stream, in one request:
// they share one offset. An empty batch is an error (the server rejects empty arrays).
func AppendJSONBatch[T any](ctx context.Context, s *Stream, items []T, opts AppendOptions) (AppendResult, error) {
	if len(items) == 0 {
		return AppendResult{}, invalidArg(OpAppend, s.url, "empty JSON batch")
	}
	body, err := json.Marshal(items)
	if err != nil {
		return AppendResult{}, &Error{Op: OpAppend, URL: s.url, Kind: ErrInvalidArgument, Err: err}
	}
	if opts.ContentType == "" {
		opts.ContentType = protocol.ContentTypeJSON
	}
	return s.Append(ctx, body, opts)
}

// CloseStream closes the stream (POST with Stream-Closed and no body): it accepts no more appends,
// and readers reach end of input after its last data. Closing a closed stream succeeds. To
// append a final message atomically with the close, use [Stream.Append] with
// [AppendOptions.Close]. The result's NextOffset is the stream's final offset.
func (s *Stream) CloseStream(ctx context.Context) (AppendResult, error) {
	return s.Append(ctx, nil, AppendOptions{Close: true})
}

func (s *Stream) contentType(ct string) string {
	switch {
	case ct != "":
		return ct
	case s.cfg.contentType != "":
		return s.cfg.contentType
	}
	return protocol.ContentTypeOctetStream
}

// drain reads a little of an unneeded body so that the connection can be reused, and closes
// it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// RetryPolicy returns the retry policy the handle's operations follow, as given to
// [WithRetry]: zero fields mean the defaults.
func (s *Stream) RetryPolicy() RetryPolicy { return s.cfg.retry.policy() }
