package dsclient

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-go/sluice/internal/protocol"
)

// sseEvent is the type of a Server-Sent Event, as far as the protocol cares.
type sseEvent uint8

const (
	sseMessage sseEvent = iota // no event field
	sseData                    // event: data
	sseControl                 // event: control
	sseOther                   // any other type, ignored (forward compatibility)
)

// sseParser reads Server-Sent Events: LF or CRLF line ends, comments, multi-line data, and
// the event, data, id and retry fields. It holds one read buffer: an event's data goes
// straight into the caller's buffer, whatever the length of its lines.
type sseParser struct {
	br    *bufio.Reader
	pos   int64 // bytes consumed from the response body
	start int64 // body position of the event being read
}

const sseBufSize = 32 << 10

func newSSEParser(r io.Reader) *sseParser {
	return &sseParser{br: bufio.NewReaderSize(r, sseBufSize)}
}

// errSSETooLarge reports event data over the limit.
var errSSETooLarge = errors.New("SSE event too large")

// sseParseError is a malformed event; reported with kind [ErrParse] and its position.
type sseParseError struct {
	msg string
	pos int64 // body position of the event
}

func (e *sseParseError) Error() string { return "invalid SSE " + e.msg }

// line reads the next piece of a line: a whole line without its line end (full), or, for a
// line longer than the read buffer, its next piece (not full). The piece is valid until the
// next call.
func (p *sseParser) line() (piece []byte, full bool, err error) {
	b, err := p.br.ReadSlice('\n')
	p.pos += int64(len(b))
	switch err {
	case nil:
		b = b[:len(b)-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
		return b, true, nil
	case bufio.ErrBufferFull:
		return b, false, nil
	case io.EOF:
		if len(b) > 0 {
			return nil, false, io.ErrUnexpectedEOF // a partial line: the connection ended mid-event
		}
	}
	return nil, false, err
}

// next reads the next event. Its data lines, joined with "\n", are appended to dst, which must
// not grow beyond max bytes (errSSETooLarge); the grown dst is returned. An event is
// dispatched when a blank line follows at least one data line, even an empty one (so that an
// empty control event is reported, not dropped). io.EOF means the response ended between
// events.
func (p *sseParser) next(dst []byte, max int) (sseEvent, []byte, error) {
	typ, hasData, begun := sseMessage, false, false
	p.start = p.pos
	for {
		piece, full, err := p.line()
		if err != nil {
			if err == io.EOF && begun {
				err = io.ErrUnexpectedEOF
			}
			return typ, dst, err
		}
		if full && len(piece) == 0 {
			if hasData {
				return typ, dst, nil
			}
			typ, begun = sseMessage, false
			p.start = p.pos
			continue
		}
		begun = true
		field, value := piece, []byte(nil)
		if i := bytes.IndexByte(piece, ':'); i >= 0 {
			field, value = piece[:i], piece[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch {
		case len(field) == 0: // a comment
		case string(field) == "data":
			if hasData {
				dst = append(dst, '\n')
			}
			hasData = true
			dst = append(dst, value...)
			for !full {
				if len(dst) > max {
					return typ, dst, errSSETooLarge
				}
				if piece, full, err = p.line(); err != nil {
					return typ, dst, unexpected(err)
				}
				dst = append(dst, piece...)
				if full && len(piece) == 0 && len(dst) > 0 && dst[len(dst)-1] == '\r' {
					dst = dst[:len(dst)-1] // a CRLF split across two pieces
				}
			}
			if len(dst) > max {
				return typ, dst, errSSETooLarge
			}
		case string(field) == "event" && full:
			switch string(value) {
			case protocol.SSEEventData:
				typ = sseData
			case protocol.SSEEventControl:
				typ = sseControl
			default:
				typ = sseOther
			}
		case string(field) == "event":
			typ = sseOther // a type longer than a read buffer is none of ours
		}
		// Skip the rest of a long line of a field that is not data.
		for !full {
			if piece, full, err = p.line(); err != nil {
				return typ, dst, unexpected(err)
			}
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// sseControlEvent is the payload of a control event.
type sseControlEvent struct {
	NextOffset *string `json:"streamNextOffset"`
	Cursor     string  `json:"streamCursor"`
	UpToDate   bool    `json:"upToDate"`
	Closed     bool    `json:"streamClosed"`
}

// sseConn turns an SSE response into chunks: the data events up to each control event make
// one chunk, whose metadata is the control event's. The chunk's data is built in one buffer,
// which never grows beyond the read's MaxBytes (more is errSSEOverflow).
type sseConn struct {
	body   io.ReadCloser
	p      *sseParser
	base64 bool
	json   bool
	ctype  string
	max    int
	buf    []byte // the pending chunk's data
	items  int    // JSON: elements appended to buf
}

// errSSEOverflow means the data before the next control event exceeds the limit; the reader
// falls back to a catch-up request, which it reads as a stream.
var errSSEOverflow = errors.New("SSE data between control events exceeds the limit")

func newSSEConn(body io.ReadCloser, ctype string, b64 bool, max int) *sseConn {
	return &sseConn{body: body, p: newSSEParser(body), base64: b64, json: isJSONType(ctype), ctype: ctype, max: max}
}

func (c *sseConn) close() { c.body.Close() }

// hasData reports whether the chunk returned last carries data.
func (c *sseConn) hasData(data []byte) bool {
	if c.json {
		return c.items > 0
	}
	return len(data) > 0
}

// next reads events until a control event, and returns the chunk's data (a JSON array for a
// JSON stream), valid until the next call, and the control event.
func (c *sseConn) next() ([]byte, sseControlEvent, error) {
	c.buf = c.buf[:0]
	c.items = 0
	if c.json {
		c.buf = append(c.buf, '[')
	}
	for {
		mark := len(c.buf)
		if c.json && c.items > 0 {
			c.buf = append(c.buf, ',')
		}
		start := len(c.buf)
		typ, buf, err := c.p.next(c.buf, c.max)
		c.buf = buf
		if err != nil {
			c.buf = c.buf[:mark]
			if err == errSSETooLarge {
				return nil, sseControlEvent{}, errSSEOverflow
			}
			return nil, sseControlEvent{}, err
		}
		switch typ {
		case sseData:
			if err := c.addData(mark, start); err != nil {
				return nil, sseControlEvent{}, err
			}
		case sseControl:
			var ctl sseControlEvent
			raw := c.buf[start:]
			if err := json.Unmarshal(raw, &ctl); err != nil {
				return nil, ctl, &sseParseError{fmt.Sprintf("control event %q: %v", truncate(raw, 80), err), c.p.start}
			}
			if ctl.NextOffset == nil || *ctl.NextOffset == "" {
				return nil, ctl, &sseParseError{fmt.Sprintf("control event without streamNextOffset: %q", truncate(raw, 80)), c.p.start}
			}
			c.buf = c.buf[:mark]
			if c.json {
				c.buf = append(c.buf, ']')
			}
			return c.buf, ctl, nil
		default:
			c.buf = c.buf[:mark]
		}
	}
}

// addData turns the payload of one data event, appended at c.buf[start:] (after a comma, at
// mark, for a JSON stream's later elements), into chunk data in place.
func (c *sseConn) addData(mark, start int) error {
	switch {
	case c.base64:
		n, err := decodeBase64InPlace(c.buf[start:])
		if err != nil {
			return &sseParseError{fmt.Sprintf("base64 data event: %v", err), c.p.start}
		}
		c.buf = c.buf[:start+n]
	case c.json:
		// A JSON data event carries an array of messages (or, from other servers, one
		// value): merge the elements into the chunk's single array.
		d := bytes.TrimSpace(c.buf[start:])
		if len(d) > 0 && d[0] == '[' && d[len(d)-1] == ']' {
			d = bytes.TrimSpace(d[1 : len(d)-1])
		}
		if len(d) == 0 {
			c.buf = c.buf[:mark]
			return nil
		}
		n := copy(c.buf[start:], d)
		c.buf = c.buf[:start+n]
		c.items++
	}
	if len(c.buf) > c.max {
		return errSSEOverflow
	}
	return nil
}

// decodeBase64InPlace decodes standard base64 text (line breaks ignored) held in b into the
// start of b, returning the decoded length. It needs no second buffer: the text is decoded
// block by block, and the output never overtakes the input.
func decodeBase64InPlace(b []byte) (int, error) {
	// Drop line breaks first: the protocol lets servers split the text across data lines.
	w := 0
	for _, ch := range b {
		if ch != '\r' && ch != '\n' {
			b[w] = ch
			w++
		}
	}
	b = b[:w]
	const block = 4 << 10 // a multiple of 4
	var out [block / 4 * 3]byte
	n := 0
	for i := 0; i < len(b); i += block {
		m, err := base64.StdEncoding.Decode(out[:], b[i:min(i+block, len(b))])
		if err != nil {
			return 0, err
		}
		n += copy(b[n:], out[:m])
	}
	return n, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
