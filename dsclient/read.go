package dsclient

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// LiveMode selects how a read behaves once it has caught up with the stream's tail.
type LiveMode int

const (
	// LiveOff reads up to the tail (the first up-to-date response) and stops.
	LiveOff LiveMode = iota
	// LiveAuto catches up with plain reads, then tails the stream with long-polls.
	LiveAuto
	// LiveLongPoll tails the stream with long-poll requests from the first request on.
	LiveLongPoll
	// LiveSSE catches up with plain reads, then tails the stream over Server-Sent Events,
	// reconnecting when the server ends the response.
	LiveSSE
)

// String returns the mode's name: "off", "auto", "long-poll" or "sse".
func (m LiveMode) String() string {
	switch m {
	case LiveOff:
		return "off"
	case LiveAuto:
		return "auto"
	case LiveLongPoll:
		return "long-poll"
	case LiveSSE:
		return "sse"
	}
	return fmt.Sprintf("LiveMode(%d)", int(m))
}

// ParsePolicy says what a read does with a malformed response body ([ErrParse]): a syntax
// error in a JSON array or item, a malformed SSE event.
type ParsePolicy uint8

const (
	// ParseFail returns the [ErrParse] error, once, to the caller; the chunk cannot go on,
	// and its later reads return the same error. [ChunkReader.Next] then asks for the chunk
	// again from its start (skipping what was delivered): a caller that wants to stop
	// stops. The default.
	ParseFail ParsePolicy = iota
	// ParseRetry treats a malformed body as a transient fault (a proxy that corrupts
	// bodies): the chunk is requested again from its start, with backoff, skipping what was
	// delivered, as the read's [RetryPolicy] allows.
	ParseRetry
)

// String returns "fail" or "retry".
func (p ParsePolicy) String() string {
	switch p {
	case ParseFail:
		return "fail"
	case ParseRetry:
		return "retry"
	}
	return fmt.Sprintf("ParsePolicy(%d)", int(p))
}

// ReadOptions configures a read. The zero value reads from the beginning up to the tail,
// with the defaults below.
type ReadOptions struct {
	// Offset to start from. Default: [Beginning].
	Offset Offset
	// Live selects what happens at the tail. Default: [LiveOff].
	Live LiveMode
	// Cursor is a cursor from an earlier read, echoed on live requests. Default: none.
	Cursor string
	// MaxBytes bounds what a read holds in memory at once, on every path (catch-up,
	// long-poll, SSE; items, typed decoding, bytes, text): the largest JSON item (and the
	// whitespace between two items), the data an SSE connection delivers between two
	// control events (beyond it the read falls back to a plain request, read as a stream),
	// and [Chunk.ReadAll]. More is an [ErrTooLarge] error. Must be >= 0. Default: 64 MiB.
	MaxBytes int
	// Retry changes fields of the handle's [RetryPolicy] for this read: its zero fields
	// keep the handle's. A long-running read sets MaxAttempts to [UnlimitedAttempts] to
	// retry for as long as its context lives. Default: the handle's policy.
	Retry RetryPolicy
	// IdleTimeout gives up a connection that sends nothing for this long, and resumes the
	// read from its offset: a catch-up request that gets no answer, a body that stops in
	// the middle, an SSE response without data or control events (servers send a
	// keep-alive control event when idle: 30s on the reference server). Must be >= 0.
	// Default: 60s.
	IdleTimeout time.Duration
	// LongPollTimeout is the server's long-poll timeout, if known: a long-poll request that
	// has not been answered after it plus a margin (half of it, at least 1s) is given up
	// and sent again. Must be >= 0. Default: learned — the duration of the longest
	// long-poll that ended without data; until one has, IdleTimeout.
	LongPollTimeout time.Duration
	// OnParseError says what to do with a malformed body. Default: [ParseFail].
	OnParseError ParsePolicy
	// JSON decodes the items of typed reads ([JSONItems], [Chunk.DecodeItem], [ReadJSON]).
	// An item it refuses is an [ErrDecode] error, and the chunk goes on. Default:
	// encoding/json ([StdJSON]), whose malformed items are [ErrParse] errors instead.
	JSON JSONDecoder
}

// Defaults of [ReadOptions]' zero fields.
const (
	DefaultMaxBytes    = 64 << 20
	DefaultIdleTimeout = 60 * time.Second
)

// Validate reports every invalid field at once, each by its path (ReadOptions.MaxBytes), in
// an [*OptionsError] that matches [ErrInvalidArgument].
func (o ReadOptions) Validate() error {
	c := optcheck.New("dsclient", ErrInvalidArgument)
	o.check(c, "ReadOptions.")
	return c.Err()
}

func (o ReadOptions) check(c *optcheck.Checker, prefix string) {
	if o.Live < LiveOff || o.Live > LiveSSE {
		c.Bad(prefix+"Live", "unknown live mode %d", int(o.Live))
	}
	if o.MaxBytes < 0 {
		c.Bad(prefix+"MaxBytes", "must be >= 0, got %d", o.MaxBytes)
	}
	if o.IdleTimeout < 0 {
		c.Bad(prefix+"IdleTimeout", "must be >= 0, got %s", o.IdleTimeout)
	}
	if o.LongPollTimeout < 0 {
		c.Bad(prefix+"LongPollTimeout", "must be >= 0, got %s", o.LongPollTimeout)
	}
	if o.OnParseError > ParseRetry {
		c.Bad(prefix+"OnParseError", "unknown policy %d", int(o.OnParseError))
	}
	o.Retry.check(c, prefix+"Retry.")
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.Offset == "" {
		o.Offset = Beginning
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	return o
}

// ChunkInfo is a chunk's metadata, known before any of its items is read.
type ChunkInfo struct {
	// StartOffset is the offset the chunk was read from.
	StartOffset Offset
	// NextOffset is the offset after the chunk: where the next read starts.
	NextOffset Offset
	// Cursor is the server's cursor, if it sent one.
	Cursor string
	// UpToDate reports that the chunk reaches the tail as it was when the server answered.
	// It does not mean end of input: more data may be appended.
	UpToDate bool
	// Closed reports that the stream is closed and the chunk reaches its final offset: end
	// of input.
	Closed bool
	// ContentType is the stream's content type.
	ContentType string
}

// ChunkReader reads a stream chunk by chunk: each HTTP response, or the data an SSE
// connection delivers up to a control event, is one [Chunk]. It pulls: nothing is read
// from the network until the caller asks, and a chunk's items are decoded from the response
// body only as the caller asks for them, so a caller that pauses holds one item and a
// bounded read buffer even when one response holds the whole stream.
//
// It retries by itself. [ChunkReader.Next] and the chunk's read methods retry transient
// failures — network errors, bodies cut short, timeouts, 5xx, 429 (after its Retry-After),
// the end of an SSE response, an offset the server sent backwards — as the read's
// [RetryPolicy] allows, resuming without a gap or a repeat. They return only the end of
// input (io.EOF), the end of the caller's context, and errors retrying cannot fix: 404, 410
// and other 4xx, malformed data under [ParseFail], an item over [ReadOptions.MaxBytes], and
// the last failure once a bounded policy is exhausted. After such an error the reader stays
// usable: Next resumes from [ChunkReader.Offset].
//
// A ChunkReader is not safe for concurrent use. Make one with [Stream.Reader]; Close it.
type ChunkReader struct {
	s      *Stream
	ctx    context.Context
	cancel context.CancelFunc
	opts   ReadOptions // defaults applied
	err    error       // invalid options, returned by every Next
	offset Offset      // where the next chunk starts
	cursor string
	phase  readPhase
	cur    *Chunk
	conn   *sseConn
	rt     *retrier
	buf    []byte // scan buffer, reused across chunks
	dec    itemDecoder
	closed bool
	// contentType is the stream's content type, from the last response.
	contentType string
	// learned is the server's long-poll timeout as observed: the longest long-poll that
	// ended without data.
	learned time.Duration
}

// Reader returns a chunk reader of the stream. It does no I/O: the first request is sent by
// [ChunkReader.Next]. ctx bounds the whole read — every request, body read and retry; cancel
// it (or call Close) to stop a live read at once. Invalid opts are reported by Next, as an
// [*OptionsError] inside an [*Error] of kind [ErrInvalidArgument].
func (s *Stream) Reader(ctx context.Context, opts ReadOptions) *ChunkReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &ChunkReader{s: s, ctx: ctx, cancel: cancel}
	if err := opts.Validate(); err != nil {
		r.err = &Error{Op: OpRead, URL: s.url, Kind: ErrInvalidArgument, Offset: opts.Offset, Err: err, BytePos: -1}
	}
	r.opts = opts.withDefaults()
	r.offset, r.cursor = r.opts.Offset, r.opts.Cursor
	r.rt = newRetrier(r.opts.Retry.over(s.cfg.retry.policy()), s.cfg.observer, s.url)
	if r.opts.Live == LiveLongPoll {
		r.phase = phaseLongPoll
	}
	return r
}

// Offset returns where the read stands: the start of the current chunk while it is being
// read, else the offset after the last chunk. After an error, this is where [ChunkReader.Next]
// resumes. Save it to resume later from a new reader.
func (r *ChunkReader) Offset() Offset {
	if r.cur != nil && r.cur.state != chunkDone {
		return r.cur.info.StartOffset
	}
	return r.offset
}

// Cursor returns the last cursor the server sent.
func (r *ChunkReader) Cursor() string { return r.cursor }

// Close stops the read and releases its connection. It is safe to call more than once.
func (r *ChunkReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.cur != nil {
		r.cur.release()
		if r.cur.sc != nil && r.buf != nil && &r.cur.sc.buf[0] == &r.buf[0] {
			r.cur.sc = nil // the chunk's reads fail from now on: the buffer goes back to the pool
		}
	}
	if r.conn != nil {
		r.conn.close()
		r.conn = nil
	}
	putScanBuf(r.buf)
	r.buf = nil
	r.cancel()
	return nil
}

// Next returns the next chunk, blocking until the server sends it (in a live mode, until
// data arrives, a long-poll times out, or an SSE keep-alive comes: such chunks have no items
// and carry fresh metadata). It returns io.EOF at the end of input: after a closed stream's
// last chunk in every mode, and after the first up-to-date chunk with [LiveOff].
//
// Next discards the unread rest of the previous chunk — unless a read of that chunk failed
// (see [ChunkReader]), in which case Next continues it: it returns the same *Chunk, asked
// for again from its StartOffset, whose next item is the one after the last item (or byte)
// delivered, so that nothing is skipped or repeated. After any error other than io.EOF the
// reader may be used again: Next resumes from [ChunkReader.Offset].
func (r *ChunkReader) Next() (*Chunk, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.closed {
		return nil, &Error{Op: OpRead, URL: r.s.url, Kind: ErrInvalidArgument, Detail: "reader is closed", BytePos: -1}
	}
	if r.rt.b.Exhausted() {
		r.rt.progress() // the caller goes on after the policy gave up: a fresh round
	}
	if c := r.cur; c != nil {
		if c.state == chunkFailed {
			if err := c.continueRead(); err != nil {
				return nil, err
			}
			return c, nil
		}
		r.cur = nil
		c.release()
		r.advance(c.info)
	}
	if r.phase == phaseEnd {
		return nil, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		return nil, r.ctxError(r.offset)
	}
	var c *Chunk
	var err error
	switch r.phase {
	case phaseSSE:
		c, err = r.nextSSE()
	default:
		c, err = r.fetch(r.phase == phaseLongPoll)
	}
	if err != nil {
		return nil, err
	}
	r.cur = c
	return c, nil
}

// ctxError is the error of a read whose context ended.
func (r *ChunkReader) ctxError(at Offset) *Error {
	return &Error{Op: OpRead, URL: r.s.url, Kind: ErrNetwork, Offset: at, Err: r.ctx.Err(), BytePos: -1}
}
