package dsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sluice-go/sluice/internal/protocol"
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

// ReadOptions configures a read. The zero value reads from the beginning up to the tail.
type ReadOptions struct {
	// Offset to start from. Default: [Beginning].
	Offset Offset
	// Live selects what happens at the tail. Default: [LiveOff].
	Live LiveMode
	// Cursor is a cursor from an earlier read, echoed on live requests. Default: none.
	Cursor string
	// MaxBytes bounds what a read holds in memory at once: the largest JSON item, the data an
	// SSE connection delivers between two control events (beyond it the read falls back to a
	// plain request), and [Chunk.ReadAll]. Default: 64 MiB.
	MaxBytes int
}

const defaultMaxBytes = 64 << 20

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
// A ChunkReader is not safe for concurrent use. Make one with [Stream.Reader]; Close it.
type ChunkReader struct {
	s      *Stream
	ctx    context.Context
	cancel context.CancelFunc
	opts   ReadOptions
	offset Offset
	cursor string
	sse    bool // in the SSE phase
	live   bool // in the long-poll phase
	eof    bool
	cur    *Chunk
	conn   *sseConn
	bo     *Backoff
	buf    []byte // scan buffer, reused across chunks
	closed bool
	// contentType is the stream's content type, from the last response.
	contentType string
}

// Reader returns a chunk reader of the stream. It does no I/O: the first request is sent by
// [ChunkReader.Next]. ctx bounds the whole read — every request and every body read; cancel
// it (or call Close) to stop a live read at once.
func (s *Stream) Reader(ctx context.Context, opts ReadOptions) *ChunkReader {
	if opts.Offset == "" {
		opts.Offset = Beginning
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &ChunkReader{s: s, ctx: ctx, cancel: cancel, opts: opts, offset: opts.Offset, cursor: opts.Cursor, bo: s.cfg.retry.Backoff()}
	r.live = opts.Live == LiveLongPoll
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
	}
	if r.conn != nil {
		r.conn.close()
		r.conn = nil
	}
	r.cancel()
	return nil
}

// Next returns the next chunk, blocking until the server sends it (in a live mode, until
// data arrives, a long-poll times out, or an SSE keep-alive comes: such chunks have no items
// and carry fresh metadata). It returns io.EOF at the end of input: after a closed stream's
// last chunk in every mode, and after the first up-to-date chunk with [LiveOff].
//
// Next discards the unread rest of the previous chunk — unless reading its body failed, in
// which case the returned chunk continues it: same StartOffset, its first item the one after
// the last item (or byte) delivered, so that nothing is skipped or repeated. (An SSE chunk
// is held in memory; one whose data is malformed cannot be read again, and Next moves past
// it.) After any error other than io.EOF the reader may be used again: Next resumes from
// [ChunkReader.Offset].
func (r *ChunkReader) Next() (*Chunk, error) {
	if r.closed {
		return nil, &Error{Op: OpRead, URL: r.s.url, Kind: ErrInvalidArgument, Detail: "reader is closed"}
	}
	if c := r.cur; c != nil {
		r.cur = nil
		if c.state == chunkFailed && !c.mem {
			nc, err := r.continueChunk(c)
			if err != nil {
				r.cur = c // keep it, so that the next call continues it again
				return nil, err
			}
			r.cur = nc
			return nc, nil
		}
		c.release()
		r.offset = c.info.NextOffset
		if c.info.Closed || (r.opts.Live == LiveOff && c.info.UpToDate) {
			r.eof = true
		}
		if c.info.UpToDate && !c.info.Closed {
			switch r.opts.Live {
			case LiveAuto:
				r.live = true
			case LiveSSE:
				r.sse = true
			}
		}
	}
	if r.eof {
		return nil, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		return nil, &Error{Op: OpRead, URL: r.s.url, Kind: ErrNetwork, Offset: r.offset, Err: err}
	}
	var c *Chunk
	var err error
	if r.sse {
		c, err = r.nextSSE()
	} else {
		c, err = r.fetch(r.offset, r.live)
	}
	if err != nil {
		return nil, err
	}
	r.cur = c
	return c, nil
}

// fetch sends one catch-up or long-poll request and wraps its response in a chunk.
func (r *ChunkReader) fetch(offset Offset, longPoll bool) (*Chunk, error) {
	req := &request{op: OpRead, method: http.MethodGet, offset: offset, safety: idempotent,
		query: []kv{{"offset", string(offset)}}}
	if longPoll {
		req.query = append(req.query, kv{protocol.ParamLive, protocol.LiveLongPoll})
		if r.cursor != "" {
			req.query = append(req.query, kv{protocol.ParamCursor, r.cursor})
		}
	}
	resp, err := r.s.do(r.ctx, req)
	if err != nil {
		return nil, err
	}
	c := &Chunk{r: r, info: ChunkInfo{StartOffset: offset}}
	if err := c.attach(resp); err != nil {
		return nil, err
	}
	return c, nil
}

// nextSSE returns the next chunk from the SSE connection, connecting or reconnecting as
// needed.
func (r *ChunkReader) nextSSE() (*Chunk, error) {
	for {
		if r.conn == nil {
			if err := r.connectSSE(); err != nil {
				return nil, err
			}
		}
		data, ctl, err := r.conn.next()
		if err == nil {
			r.bo.Reset()
			c := &Chunk{r: r, mem: true, json: r.conn.json, info: ChunkInfo{
				StartOffset: r.offset, NextOffset: Offset(*ctl.NextOffset), Cursor: ctl.Cursor,
				UpToDate: ctl.UpToDate || ctl.Closed, Closed: ctl.Closed, ContentType: r.conn.ctype}}
			if ctl.Cursor != "" {
				r.cursor = ctl.Cursor
			}
			c.setMem(data)
			return c, nil
		}
		r.conn.close()
		r.conn = nil
		var pe *sseParseError
		switch {
		case r.ctx.Err() != nil:
			return nil, &Error{Op: OpRead, URL: r.s.url, Kind: ErrNetwork, Offset: r.offset, Err: r.ctx.Err()}
		case errors.As(err, &pe):
			return nil, &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: r.offset, Err: err}
		case errors.Is(err, errSSEOverflow):
			// Too much data at once for SSE: catch up with a plain, streamed request.
			r.sse = false
			c, err := r.fetch(r.offset, false)
			if err != nil {
				return nil, err
			}
			return c, nil
		}
		// The response ended or broke: reconnect from the last control event's offset.
		if err == io.EOF {
			err = nil
		}
		if r.bo.Attempts() >= r.s.cfg.retry.MaxRetries && err != nil {
			return nil, &Error{Op: OpRead, URL: r.s.url, Kind: ErrNetwork, Offset: r.offset, Err: err, Attempts: r.bo.Attempts() + 1}
		}
		d := r.bo.Next()
		if obs := r.s.cfg.observer; obs != nil {
			obs.Reconnect(ReconnectEvent{URL: r.s.url, Live: LiveSSE, Offset: r.offset, Err: err})
		}
		if err := sleep(r.ctx, d); err != nil {
			return nil, &Error{Op: OpRead, URL: r.s.url, Kind: ErrNetwork, Offset: r.offset, Err: err}
		}
	}
}

func (r *ChunkReader) connectSSE() error {
	req := &request{op: OpRead, method: http.MethodGet, offset: r.offset, safety: idempotent,
		query: []kv{{"offset", string(r.offset)}, {protocol.ParamLive, protocol.LiveSSE}}}
	if r.cursor != "" {
		req.query = append(req.query, kv{protocol.ParamCursor, r.cursor})
	}
	resp, err := r.s.do(r.ctx, req)
	if err != nil {
		return err
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), protocol.ContentTypeEventStream) {
		resp.Body.Close()
		return &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: r.offset, Status: resp.StatusCode,
			Detail: fmt.Sprintf("SSE response has content type %q, want text/event-stream", ct)}
	}
	streamCT := r.contentType
	b64 := strings.EqualFold(strings.TrimSpace(resp.Header.Get(protocol.HeaderSSEEncoding)), protocol.SSEEncodingBase64)
	r.conn = newSSEConn(resp.Body, streamCT, b64, r.opts.MaxBytes)
	return nil
}

// continueChunk re-reads a failed chunk from its start, skipping what was delivered.
func (r *ChunkReader) continueChunk(c *Chunk) (*Chunk, error) {
	nc := &Chunk{r: r, info: c.info, items: c.items, skipItems: c.items, skipBytes: c.nbytes, nbytes: c.nbytes, mode: c.mode, resumed: c.resumed}
	if err := nc.reopen(); err != nil {
		return nil, err
	}
	return nc, nil
}

// chunk states
const (
	chunkOpen = iota
	chunkDone
	chunkFailed
)

// chunk read modes: a chunk is read either by items or by bytes.
const (
	modeNone = iota
	modeItems
	modeBytes
	modeDecode
)

// Chunk is one response (or one SSE batch) of a read. Its metadata ([Chunk.Info]) is known
// before any item is read; its items are decoded lazily, one per call, from the response
// body. A chunk is valid until the next call of [ChunkReader.Next] or Close; it is not safe
// for concurrent use.
//
// If the connection drops while a chunk's body is being read, the chunk resumes by itself:
// it requests the chunk's start offset again and skips the items (or bytes) already
// delivered — data at an offset never changes — so the caller sees neither a gap nor a
// repeat. The resumed response may reach further than the first (the stream grew): then
// Info's NextOffset, UpToDate and Closed change to the resumed response's. Info is final
// once the chunk is read to its end.
type Chunk struct {
	r         *ChunkReader
	info      ChunkInfo
	json      bool
	mem       bool // data in memory (SSE)
	body      io.ReadCloser
	sc        *itemScanner
	data      []byte // in-memory data, for byte reads
	dpos      int
	items     int   // items delivered
	nbytes    int64 // bytes delivered
	skipItems int
	skipBytes int64
	resumed   int
	state     int
	mode      int
	err       error
	reported  bool
	status    int
	dec       *json.Decoder // typed decoding (DecodeItem) streams through encoding/json
	trk       *trackReader
	trkSkip   int64 // bytes trk gives the decoder that the scanner already counted, "[" included
}

// iotestErrReader returns err on every read.
type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// trackReader remembers whether its source failed (as opposed to ending cleanly), so that a
// decoder's io.ErrUnexpectedEOF can be told apart: a cut connection resumes, a short body is
// malformed.
type trackReader struct {
	r   io.Reader
	err error
	n   int64 // bytes read
}

func (t *trackReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// attach makes resp the chunk's source, reading its metadata.
func (c *Chunk) attach(resp *http.Response) error {
	r := c.r
	h := resp.Header
	next := h.Get(protocol.HeaderNextOffset)
	if next == "" {
		resp.Body.Close()
		return &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: c.info.StartOffset, Status: resp.StatusCode,
			Detail: "response has no Stream-Next-Offset header"}
	}
	c.info.NextOffset = Offset(next)
	c.status = resp.StatusCode
	c.info.Cursor = h.Get(protocol.HeaderCursor)
	c.info.UpToDate = headerTrue(h, protocol.HeaderUpToDate)
	c.info.Closed = headerTrue(h, protocol.HeaderClosed)
	if c.info.Closed {
		c.info.UpToDate = true
	}
	if ct := h.Get("Content-Type"); ct != "" {
		c.info.ContentType = ct
		r.contentType = ct
	} else {
		c.info.ContentType = r.contentType
	}
	if c.info.Cursor != "" {
		r.cursor = c.info.Cursor
	}
	c.json = isJSONType(c.info.ContentType)
	if resp.StatusCode == http.StatusNoContent || resp.Request.Method == http.MethodHead {
		resp.Body.Close()
		c.setMem(nil)
		if c.json {
			c.sc = newBytesScanner([]byte("[]"))
		}
		return nil
	}
	c.body = resp.Body
	if c.json {
		if c.sc == nil {
			c.sc = newItemScanner(resp.Body, r.opts.MaxBytes, r.buf)
			r.buf = c.sc.buf
		} else {
			c.sc.reset(resp.Body)
		}
	}
	return nil
}

func (c *Chunk) setMem(data []byte) {
	c.mem = true
	c.data = data
	if c.json {
		c.sc = newBytesScanner(data)
	}
}

// Info returns the chunk's metadata.
func (c *Chunk) Info() ChunkInfo { return c.info }

// StartOffset returns the offset the chunk was read from.
func (c *Chunk) StartOffset() Offset { return c.info.StartOffset }

// NextOffset returns the offset after the chunk.
func (c *Chunk) NextOffset() Offset { return c.info.NextOffset }

// Cursor returns the server's cursor for the chunk, if any.
func (c *Chunk) Cursor() string { return c.info.Cursor }

// UpToDate reports whether the chunk reaches the tail (not end of input; see [ChunkInfo]).
func (c *Chunk) UpToDate() bool { return c.info.UpToDate }

// Closed reports whether the stream is closed and the chunk is its last: end of input.
func (c *Chunk) Closed() bool { return c.info.Closed }

// IsJSON reports whether the stream is a JSON stream, whose chunks are read by items.
func (c *Chunk) IsJSON() bool { return c.json }

// Index returns how many items of the chunk have been delivered (for a continued chunk,
// counting those delivered before the failure): the index of the next item.
func (c *Chunk) Index() int { return c.items }

// Status returns the HTTP status of the chunk's response: 200, or 204 for a long-poll that
// ended without data. SSE chunks report 200.
func (c *Chunk) Status() int {
	if c.status == 0 {
		return 200
	}
	return c.status
}

// Resumed returns how many times the chunk's body was cut and the read resumed.
func (c *Chunk) Resumed() int { return c.resumed }

// NextItem returns the next JSON item's bytes, exactly as the server sent them. The slice is
// valid until the next call. It returns io.EOF after the last item. Item boundaries are
// found by a structural scan that does not validate everything (number syntax, escapes):
// decode the item, or use [Chunk.DecodeItem], to validate it. For a non-JSON stream it
// returns an [ErrInvalidArgument] error.
func (c *Chunk) NextItem() ([]byte, error) {
	if err := c.begin(modeItems); err != nil {
		return nil, err
	}
	for {
		item, err := c.sc.next()
		if err == nil {
			c.items++
			return item, nil
		}
		if err == io.EOF {
			c.finish()
			return nil, io.EOF
		}
		if !c.resumable(err) {
			return nil, c.fail(err)
		}
		if err := c.resume(err); err != nil {
			return nil, c.fail(err)
		}
	}
}

// DecodeItem decodes the next JSON item into v, as [json.Unmarshal] would, streaming from the
// body through one [json.Decoder] (the fastest way to get typed items). It returns io.EOF
// after the last item. An item that does not fit v is consumed and reported as an [ErrParse]
// error, and the chunk goes on with the next item; malformed JSON fails the chunk. A chunk is
// read with DecodeItem or with NextItem, not both.
func (c *Chunk) DecodeItem(v any) error {
	if err := c.begin(modeDecode); err != nil {
		return err
	}
	for {
		if c.dec == nil {
			done, err := c.startDecoder()
			if err != nil {
				if c.resumable(err) {
					if err := c.resume(err); err != nil {
						return c.fail(err)
					}
					continue
				}
				return c.fail(err)
			}
			if done {
				c.finish()
				return io.EOF
			}
		}
		var err error
		if c.dec.More() {
			if err = c.dec.Decode(v); err == nil {
				c.items++
				return nil
			}
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				c.items++
				return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrParse, Offset: c.info.StartOffset,
					Detail: fmt.Sprintf("item %d", c.items-1), Err: err}
			}
		} else {
			var tok json.Token
			if tok, err = c.dec.Token(); err == nil {
				if tok != json.Delim(']') {
					return c.fail(jsonSyntax("unexpected %v in the array", tok))
				}
				if err := c.trailing(); err != nil {
					return c.fail(err)
				}
				c.finish()
				return io.EOF
			}
		}
		if c.trk.err == nil || !c.resumable(c.trk.err) {
			var se *json.SyntaxError
			if errors.As(err, &se) || err == io.ErrUnexpectedEOF || err == io.EOF {
				err = jsonSyntax("%v", err)
			}
			return c.fail(err)
		}
		c.dec = nil
		if err := c.resume(c.trk.err); err != nil {
			return c.fail(err)
		}
	}
}

// startDecoder positions the scanner inside the array, before the next element, and makes a
// decoder reading from there; done reports that no element is left.
func (c *Chunk) startDecoder() (done bool, err error) {
	sc := c.sc
	switch sc.state {
	case stStart:
		if err := sc.enter(); err != nil {
			return false, err
		}
	case stAfterItem:
		more, err := sc.separator()
		if err != nil {
			return false, err
		}
		if !more {
			return true, c.scanTrailing()
		}
	case stDone:
		return true, nil
	}
	// The decoder sees "[" + the rest: it reads the elements as an array.
	rest := sc.buf[sc.pos:sc.end]
	sc.pos = sc.end
	var src io.Reader = bytes.NewReader(rest)
	switch {
	case sc.rerr != nil && sc.rerr != io.EOF:
		src = io.MultiReader(src, iotestErrReader{sc.rerr})
	case c.body != nil && sc.rerr == nil:
		src = io.MultiReader(src, c.body)
	}
	c.trk = &trackReader{r: io.MultiReader(strings.NewReader("["), src)}
	c.trkSkip = 1 + int64(len(rest))
	c.dec = json.NewDecoder(c.trk)
	if _, err := c.dec.Token(); err != nil {
		return false, err
	}
	return false, nil
}

// scanTrailing checks, through the scanner, that nothing but whitespace follows the array.
func (c *Chunk) scanTrailing() error {
	_, err := c.sc.next()
	if err == io.EOF {
		return nil
	}
	return err
}

// trailing checks, through the decoder, that nothing but whitespace follows the array.
func (c *Chunk) trailing() error {
	var buf [512]byte
	for _, r := range []io.Reader{c.dec.Buffered(), c.trk} {
		for {
			n, err := r.Read(buf[:])
			for _, b := range buf[:n] {
				if !isSpace(b) {
					return jsonSyntax("data after the closing ']'")
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Read reads the chunk's body bytes (for a JSON stream: the JSON array text), for byte and
// text streams. It returns io.EOF at the end of the chunk. A chunk is read either with Read
// or with NextItem, not both.
func (c *Chunk) Read(p []byte) (int, error) {
	if err := c.begin(modeBytes); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		var n int
		var err error
		if c.mem {
			n = copy(p, c.data[c.dpos:])
			c.dpos += n
			if c.dpos == len(c.data) {
				err = io.EOF
			}
		} else {
			n, err = c.body.Read(p)
		}
		c.nbytes += int64(n)
		if err == nil || (n > 0 && err != io.EOF) {
			return n, nil
		}
		if err == io.EOF {
			c.finish()
			return n, io.EOF
		}
		if !c.resumable(err) {
			return 0, c.fail(err)
		}
		if err := c.resume(err); err != nil {
			return 0, c.fail(err)
		}
	}
}

// ReadAll reads the rest of the chunk's bytes into memory. Beyond [ReadOptions.MaxBytes] it
// fails with [ErrTooLarge].
func (c *Chunk) ReadAll() ([]byte, error) {
	if c.mem && c.mode == modeNone {
		if err := c.begin(modeBytes); err != nil {
			return nil, err
		}
		b := c.data[c.dpos:]
		c.dpos = len(c.data)
		c.nbytes += int64(len(b))
		c.finish()
		return b, nil
	}
	max := c.r.opts.MaxBytes
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return nil, c.fail(&tooLargeError{max})
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (c *Chunk) begin(mode int) error {
	switch c.state {
	case chunkDone:
		return io.EOF
	case chunkFailed:
		return c.err
	}
	if c.r.closed {
		return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrInvalidArgument, Detail: "reader is closed"}
	}
	if mode == modeItems && !c.json {
		return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrInvalidArgument,
			Detail: fmt.Sprintf("NextItem on a %q stream; use Read", c.info.ContentType)}
	}
	if mode == modeDecode && !c.json {
		return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrInvalidArgument,
			Detail: fmt.Sprintf("DecodeItem on a %q stream; use Read", c.info.ContentType)}
	}
	if c.mode != modeNone && c.mode != mode {
		return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrInvalidArgument, Detail: "a chunk is read by one of NextItem, DecodeItem or Read"}
	}
	c.mode = mode
	return nil
}

// resumable reports whether a body read error is a dropped connection worth resuming.
func (c *Chunk) resumable(err error) bool {
	if c.mem || c.r.ctx.Err() != nil {
		return false
	}
	var se *scanError
	var tl *tooLargeError
	return !errors.As(err, &se) && !errors.As(err, &tl)
}

// resume re-requests the chunk from its start offset after a dropped connection and skips
// what was delivered.
func (c *Chunk) resume(cause error) error {
	r := c.r
	pol := r.s.cfg.retry
	bo := pol.Backoff()
	for {
		if c.body != nil {
			c.body.Close()
			c.body = nil
		}
		if bo.Attempts() >= pol.MaxRetries {
			return cause
		}
		c.resumed++
		if obs := r.s.cfg.observer; obs != nil {
			obs.Reconnect(ReconnectEvent{URL: r.s.url, Live: r.opts.Live, Offset: c.info.StartOffset, Err: cause})
		}
		if err := sleep(r.ctx, bo.Next()); err != nil {
			return err
		}
		c.skipItems, c.skipBytes = c.items, c.nbytes
		err := c.reopen()
		if err == nil {
			return nil
		}
		var e *Error
		if errors.As(err, &e) && !e.Temporary() {
			return err
		}
		cause = err
	}
}

// reopen requests the chunk's start offset again and skips skipItems items or skipBytes
// bytes.
func (c *Chunk) reopen() error {
	r := c.r
	req := &request{op: OpRead, method: http.MethodGet, offset: c.info.StartOffset, safety: idempotent,
		query: []kv{{"offset", string(c.info.StartOffset)}}}
	resp, err := r.s.do(r.ctx, req)
	if err != nil {
		return err
	}
	c.state = chunkOpen
	c.err = nil
	if err := c.attach(resp); err != nil {
		return err
	}
	if c.mode == modeBytes || (!c.json && c.skipBytes > 0) {
		if c.mem {
			if int64(len(c.data)) < c.skipBytes {
				return &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: c.info.StartOffset, Detail: "resumed response is shorter than what was read"}
			}
			c.dpos = int(c.skipBytes)
			return nil
		}
		n, err := io.CopyN(io.Discard, c.body, c.skipBytes)
		if err != nil {
			if n < c.skipBytes && err == io.EOF {
				return &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: c.info.StartOffset, Detail: "resumed response is shorter than what was read"}
			}
			return &Error{Op: OpRead, URL: r.s.url, Kind: ErrNetwork, Offset: c.info.StartOffset, Err: err}
		}
		return nil
	}
	for range c.skipItems {
		if _, err := c.sc.next(); err != nil {
			if err == io.EOF {
				return &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: c.info.StartOffset, Detail: "resumed response has fewer items than were read"}
			}
			return c.wrap(err)
		}
	}
	return nil
}

// finish marks the chunk read to its end.
func (c *Chunk) finish() {
	c.state = chunkDone
	if c.body != nil {
		c.body.Close()
		c.body = nil
	}
	c.report()
}

// fail marks the chunk failed with err, returning the wrapped error.
func (c *Chunk) fail(err error) error {
	c.err = c.wrap(err)
	c.state = chunkFailed
	if c.body != nil {
		c.body.Close()
		c.body = nil
	}
	return c.err
}

func (c *Chunk) wrap(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var se *scanError
	var pe *sseParseError
	var tl *tooLargeError
	kind := ErrNetwork
	switch {
	case errors.As(err, &se), errors.As(err, &pe):
		kind = ErrParse
	case errors.As(err, &tl):
		kind = ErrTooLarge
	}
	return &Error{Op: OpRead, URL: c.r.s.url, Kind: kind, Offset: c.info.StartOffset, Err: err}
}

// release closes the body of a chunk the caller is done with.
func (c *Chunk) release() {
	if c.body != nil {
		c.body.Close()
		c.body = nil
	}
	c.report()
}

func (c *Chunk) report() {
	if c.reported {
		return
	}
	c.reported = true
	if obs := c.r.s.cfg.observer; obs != nil {
		n := c.nbytes
		switch {
		case c.mode == modeItems && c.sc != nil:
			n = c.sc.read
		case c.mode == modeDecode && c.sc != nil:
			// The scanner read the start of the body; the decoder read the rest through trk.
			n = c.sc.read
			if c.trk != nil && c.trk.n > c.trkSkip {
				n += c.trk.n - c.trkSkip
			}
		}
		obs.Chunk(ChunkEvent{URL: c.r.s.url, Info: c.info, Items: c.items, Bytes: n, Resumed: c.resumed})
	}
}
