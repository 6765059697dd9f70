package dsclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sluice-go/sluice/internal/protocol"
)

// chunkState is where a chunk's reading stands.
type chunkState uint8

const (
	chunkOpen   chunkState = iota // items or bytes may follow
	chunkDone                     // read to its end
	chunkFailed                   // a read failed for good; Next continues the chunk
)

// readMode is how a chunk is read: by raw items, by decoded items, or by bytes. A chunk is
// read one way only.
type readMode uint8

const (
	modeNone   readMode = iota // not read yet
	modeItems                  // NextItem
	modeDecode                 // DecodeItem
	modeBytes                  // Read, ReadAll
)

func (m readMode) String() string {
	switch m {
	case modeItems:
		return "NextItem"
	case modeDecode:
		return "DecodeItem"
	case modeBytes:
		return "Read"
	}
	return "none"
}

// Chunk is one response (or one SSE batch) of a read. Its metadata ([Chunk.Info]) is known
// before any item is read; its items are decoded lazily, one per call, from the response
// body. A chunk is valid until the next call of [ChunkReader.Next] or Close; it is not safe
// for concurrent use.
//
// A chunk's read methods retry transient failures by themselves (see [ChunkReader]): when
// the connection drops, stalls or sends malformed data worth retrying, the chunk requests
// its start offset again and skips the items (or bytes) already delivered — data at an
// offset never changes — so the caller sees neither a gap nor a repeat. The new response
// may reach further than the first (the stream grew): then Info's NextOffset, UpToDate and
// Closed change to the new response's. Info is final once a read method returned io.EOF.
type Chunk struct {
	r      *ChunkReader
	info   ChunkInfo
	json   bool
	mem    bool          // the data is in memory (an SSE batch, a body-less response)
	body   io.ReadCloser // the response body, until finished or failed
	src    io.Reader     // what reads come from: the body, after any bytes peeked
	data   []byte        // in-memory data
	dpos   int
	sc     *itemScanner // JSON items
	items  int          // items delivered (or consumed as undecodable)
	nbytes int64        // bytes delivered
	status int
	state  chunkState
	mode   readMode
	err    error // the error of a failed chunk

	resumed  int
	reported bool
}

// attach makes resp the chunk's source, reading its metadata. It refuses a response without
// a next offset (ErrParse) or whose next offset cannot be followed (ErrOffsetRegressed),
// closing its body; the chunk keeps its earlier metadata then.
func (c *Chunk) attach(resp *http.Response) error {
	r := c.r
	h := resp.Header
	next := Offset(h.Get(protocol.HeaderNextOffset))
	if next == "" {
		resp.Body.Close()
		return &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: c.info.StartOffset, Status: resp.StatusCode, BytePos: -1,
			Detail: "response has no Stream-Next-Offset header"}
	}
	ctype := h.Get("Content-Type")
	if ctype == "" {
		ctype = r.contentType
	}
	isJSON := isJSONType(ctype)
	noBody := resp.StatusCode == http.StatusNoContent || resp.Request.Method == http.MethodHead
	var src io.Reader = resp.Body
	if next == c.info.StartOffset && !noBody && !next.IsSentinel() {
		// The same offset again is right for a read at the tail, wrong with data: look.
		var hasData bool
		var err error
		src, hasData, err = peekData(resp.Body, isJSON)
		if err != nil {
			resp.Body.Close()
			return c.wrap(err)
		}
		if e := r.checkOffset(c.info.StartOffset, next, hasData, r.live()); e != nil {
			resp.Body.Close()
			return e
		}
	} else if e := r.checkOffset(c.info.StartOffset, next, !noBody, r.live()); e != nil {
		resp.Body.Close()
		return e
	}
	c.info.NextOffset = next
	c.status = resp.StatusCode
	c.info.Cursor = h.Get(protocol.HeaderCursor)
	c.info.UpToDate = headerTrue(h, protocol.HeaderUpToDate)
	c.info.Closed = headerTrue(h, protocol.HeaderClosed)
	if c.info.Closed {
		c.info.UpToDate = true
	}
	c.info.ContentType = ctype
	r.contentType = ctype
	if c.info.Cursor != "" {
		r.cursor = c.info.Cursor
	}
	c.json = isJSON
	if noBody {
		resp.Body.Close()
		c.setMem(nil)
		r.rt.progress() // a complete answer, such as a long-poll that timed out
		return nil
	}
	c.mem, c.data, c.dpos = false, nil, 0
	c.body, c.src = resp.Body, src
	if c.json {
		if c.sc == nil || c.sc.r == nil {
			c.sc = newItemScanner(src, r.opts.MaxBytes, r.buf)
			r.buf = nil
		} else {
			c.sc.reset(src)
		}
	}
	return nil
}

// peekData reads the start of a body to tell whether it carries data: for a JSON stream,
// whether its array has an element (looking at most 4 KiB in); otherwise whether it has a
// byte. It returns a reader that replays what it read.
func peekData(body io.Reader, isJSON bool) (io.Reader, bool, error) {
	var buf []byte
	var tmp [512]byte
	for len(buf) < 4<<10 {
		n, err := body.Read(tmp[:])
		buf = append(buf, tmp[:n]...)
		if !isJSON && len(buf) > 0 {
			break
		}
		if isJSON {
			if d := bytes.TrimLeft(buf, " \t\r\n"); len(d) > 0 {
				if d[0] != '[' {
					break // malformed: let the scan report it
				}
				if d = bytes.TrimLeft(d[1:], " \t\r\n"); len(d) > 0 {
					return io.MultiReader(bytes.NewReader(buf), body), d[0] != ']', nil
				}
			}
		}
		if err == io.EOF {
			return bytes.NewReader(buf), false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	return io.MultiReader(bytes.NewReader(buf), body), len(buf) > 0, nil
}

// live returns the live mode of the request being made, for events.
func (r *ChunkReader) live() LiveMode {
	switch r.phase {
	case phaseLongPoll:
		return LiveLongPoll
	case phaseSSE:
		return LiveSSE
	}
	return LiveOff
}

// setMem makes data (possibly empty) the chunk's content.
func (c *Chunk) setMem(data []byte) {
	c.mem, c.data, c.dpos = true, data, 0
	c.body, c.src = nil, nil
	if c.json {
		if len(data) == 0 {
			data = emptyArray
		}
		c.sc = newBytesScanner(data)
	}
}

var emptyArray = []byte("[]")

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

// Index returns how many items of the chunk have been delivered (counting those before a
// failure the chunk was continued after, and items [Chunk.DecodeItem] reported as
// undecodable): the index of the next item.
func (c *Chunk) Index() int { return c.items }

// Status returns the HTTP status of the chunk's response: 200, or 204 for a long-poll that
// ended without data. SSE chunks report 200.
func (c *Chunk) Status() int {
	if c.status == 0 {
		return http.StatusOK
	}
	return c.status
}

// Resumed returns how many times the chunk was asked for again after a failure.
func (c *Chunk) Resumed() int { return c.resumed }

// NextItem returns the next JSON item's bytes, exactly as the server sent them. The slice is
// valid until the next call (or the reader's Close, which recycles its buffer). It returns
// io.EOF after the last item. Item boundaries are found by a structural scan that does not
// validate everything (number syntax, escapes):
// decode the item, or use [Chunk.DecodeItem], to validate it. For a non-JSON stream it
// returns an [ErrInvalidArgument] error. Transient failures are retried inside (see
// [Chunk]); an error it returns ends the chunk: later calls return it again, and
// [ChunkReader.Next] continues the chunk.
func (c *Chunk) NextItem() ([]byte, error) {
	if err := c.begin(modeItems); err != nil {
		return nil, err
	}
	for {
		item, err := c.sc.next()
		if err == nil {
			c.items++
			c.r.rt.progress()
			return item, nil
		}
		if err == io.EOF {
			c.finish()
			return nil, io.EOF
		}
		if err := c.recover(err); err != nil {
			return nil, err
		}
	}
}

// Read reads the chunk's body bytes (for a JSON stream: the JSON array text), for byte and
// text streams. It returns io.EOF at the end of the chunk. A chunk is read either with Read
// or with NextItem, not both. Failures are handled as by [Chunk.NextItem].
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
			n, err = c.src.Read(p)
		}
		if n > 0 {
			c.nbytes += int64(n)
			c.r.rt.progress()
		}
		if err == nil || (n > 0 && err != io.EOF) {
			return n, nil
		}
		if err == io.EOF {
			c.finish()
			return n, io.EOF
		}
		if err := c.recover(err); err != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// ReadAll reads the rest of the chunk's bytes into memory. Beyond [ReadOptions.MaxBytes] it
// fails with [ErrTooLarge], having held no more than that.
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
			if cap(buf) > max+1 {
				buf = buf[: len(buf) : max+1]
			}
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return nil, c.fail(&Error{Op: OpRead, URL: c.r.s.url, Kind: ErrTooLarge, Offset: c.info.StartOffset, Err: &tooLargeError{max}, BytePos: -1})
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// begin checks that the chunk may be read in mode.
func (c *Chunk) begin(mode readMode) error {
	switch c.state {
	case chunkDone:
		return io.EOF
	case chunkFailed:
		return c.err
	}
	if c.r.closed {
		return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrInvalidArgument, Detail: "reader is closed", BytePos: -1}
	}
	if (mode == modeItems || mode == modeDecode) && !c.json {
		return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrInvalidArgument, BytePos: -1,
			Detail: fmt.Sprintf("%v on a %q stream; use Read", mode, c.info.ContentType)}
	}
	if c.mode != modeNone && c.mode != mode {
		return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrInvalidArgument, BytePos: -1,
			Detail: fmt.Sprintf("a chunk is read by one of NextItem, DecodeItem or Read; this one by %v", c.mode)}
	}
	c.mode = mode
	return nil
}

// finish marks the chunk read to its end: the read made progress.
func (c *Chunk) finish() {
	c.state = chunkDone
	c.closeBody()
	c.r.rt.progress()
	c.report()
}

// fail marks the chunk failed with err, returning the wrapped error.
func (c *Chunk) fail(err error) error {
	c.err = c.wrap(err)
	c.state = chunkFailed
	c.closeBody()
	return c.err
}

func (c *Chunk) closeBody() {
	if c.body != nil {
		c.body.Close()
		c.body, c.src = nil, nil
	}
	if c.sc != nil && !c.mem && cap(c.sc.buf) == scanBufSize {
		c.r.buf = c.sc.buf // for the reader's next chunk
	}
}

// wrap turns a failure into an *Error of the right kind.
func (c *Chunk) wrap(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e = &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrNetwork, Offset: c.info.StartOffset, Err: err, BytePos: -1}
	var se *scanError
	var pe *sseParseError
	var tl *tooLargeError
	switch {
	case c.r.ctx.Err() != nil:
		e.Err = c.r.ctx.Err()
	case errors.As(err, &se):
		e.Kind, e.BytePos = ErrParse, se.pos
		if c.mem {
			e.Detail = "in the data of the chunk's SSE events"
		}
	case errors.As(err, &pe):
		e.Kind, e.BytePos = ErrParse, pe.pos
	case errors.As(err, &tl):
		e.Kind = ErrTooLarge
	case errors.Is(err, errIdle):
		e.Kind, e.Err = ErrTimeout, fmt.Errorf("no data within %s", c.r.opts.IdleTimeout)
	}
	return e
}

// release closes the body of a chunk the caller is done with. An SSE batch, held whole in
// memory, was a complete answer: progress.
func (c *Chunk) release() {
	c.closeBody()
	if c.mem && c.state != chunkFailed {
		c.r.rt.progress()
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
		if (c.mode == modeItems || c.mode == modeDecode) && c.sc != nil {
			n = c.sc.read
		}
		obs.Chunk(ChunkEvent{URL: c.r.s.url, Info: c.info, Items: c.items, Bytes: n, Resumed: c.resumed})
	}
}
