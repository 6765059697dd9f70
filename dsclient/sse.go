package dsclient

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// sseParser reads Server-Sent Events: LF or CRLF line ends, comments, multi-line data, and
// the event, data, id and retry fields. Events of any type are returned; the caller ignores
// types it does not know.
type sseParser struct {
	br   *bufio.Reader
	max  int
	data []byte
	line []byte
}

func newSSEParser(r io.Reader, max int) *sseParser {
	return &sseParser{br: bufio.NewReaderSize(r, 32<<10), max: max}
}

// errSSETooLarge reports an event over the size limit.
var errSSETooLarge = errors.New("SSE event too large")

// sseParseError is a malformed event; reported with kind [ErrParse].
type sseParseError struct{ msg string }

func (e *sseParseError) Error() string { return "invalid SSE " + e.msg }

// readLine returns the next line without its line end, valid until the next call.
func (p *sseParser) readLine() ([]byte, error) {
	line, err := p.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		p.line = append(p.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(p.line) > p.max {
				return nil, errSSETooLarge
			}
			line, err = p.br.ReadSlice('\n')
			p.line = append(p.line, line...)
		}
		line = p.line
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF // a partial line: the connection ended mid-event
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// next returns the next event's type and data (data lines joined with "\n"), valid until the
// next call. An event is dispatched when a blank line follows at least one data line, even
// an empty one (so that an empty control event is reported, not dropped). io.EOF means the
// response ended between events.
func (p *sseParser) next() (typ string, data []byte, err error) {
	p.data = p.data[:0]
	hasData := false
	for {
		line, err := p.readLine()
		if err != nil {
			if err == io.EOF && (hasData || typ != "") {
				err = io.ErrUnexpectedEOF
			}
			return "", nil, err
		}
		if len(line) == 0 {
			if hasData {
				if typ == "" {
					typ = "message"
				}
				return typ, p.data, nil
			}
			typ = ""
			continue
		}
		if line[0] == ':' {
			continue // comment
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			typ = string(value)
		case "data":
			if hasData {
				p.data = append(p.data, '\n')
			}
			p.data = append(p.data, value...)
			hasData = true
			if len(p.data) > p.max {
				return "", nil, errSSETooLarge
			}
		}
	}
}

// sseControl is the payload of a control event.
type sseControl struct {
	NextOffset *string `json:"streamNextOffset"`
	Cursor     string  `json:"streamCursor"`
	UpToDate   bool    `json:"upToDate"`
	Closed     bool    `json:"streamClosed"`
}

// sseConn turns an SSE response into chunks: the data events up to each control event make
// one chunk, whose metadata is the control event's.
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
// falls back to a catch-up request.
var errSSEOverflow = errors.New("SSE data between control events exceeds the limit")

func newSSEConn(body io.ReadCloser, ctype string, b64 bool, max int) *sseConn {
	return &sseConn{body: body, p: newSSEParser(body, max), base64: b64, json: isJSONType(ctype), ctype: ctype, max: max}
}

func (c *sseConn) close() { c.body.Close() }

// next reads events until a control event, and returns the chunk's data (a JSON array for a
// JSON stream) and the control event.
func (c *sseConn) next() ([]byte, sseControl, error) {
	c.buf = c.buf[:0]
	c.items = 0
	if c.json {
		c.buf = append(c.buf, '[')
	}
	for {
		typ, data, err := c.p.next()
		if err != nil {
			if err == errSSETooLarge {
				return nil, sseControl{}, errSSEOverflow
			}
			return nil, sseControl{}, err
		}
		switch typ {
		case "data":
			if err := c.addData(data); err != nil {
				return nil, sseControl{}, err
			}
			if len(c.buf) > c.max {
				return nil, sseControl{}, errSSEOverflow
			}
		case "control":
			var ctl sseControl
			if err := json.Unmarshal(data, &ctl); err != nil {
				return nil, sseControl{}, &sseParseError{fmt.Sprintf("control event %q: %v", truncate(data, 80), err)}
			}
			if ctl.NextOffset == nil || *ctl.NextOffset == "" {
				return nil, sseControl{}, &sseParseError{fmt.Sprintf("control event without streamNextOffset: %q", truncate(data, 80))}
			}
			if c.json {
				c.buf = append(c.buf, ']')
			}
			return c.buf, ctl, nil
		}
		// Other event types are ignored (forward compatibility).
	}
}

// addData appends one data event's payload to the pending chunk.
func (c *sseConn) addData(data []byte) error {
	if c.base64 {
		clean := data[:0:0]
		if bytes.ContainsAny(data, "\r\n") {
			clean = make([]byte, 0, len(data))
			for _, b := range data {
				if b != '\r' && b != '\n' {
					clean = append(clean, b)
				}
			}
		} else {
			clean = data
		}
		n := base64.StdEncoding.DecodedLen(len(clean))
		start := len(c.buf)
		c.buf = append(c.buf, make([]byte, n)...)
		m, err := base64.StdEncoding.Decode(c.buf[start:], clean)
		if err != nil {
			return &sseParseError{fmt.Sprintf("base64 data event: %v", err)}
		}
		c.buf = c.buf[:start+m]
		return nil
	}
	if !c.json {
		c.buf = append(c.buf, data...)
		return nil
	}
	// A JSON data event carries an array of messages (or, from other servers, one value):
	// merge the elements into the chunk's single array.
	d := bytes.TrimSpace(data)
	if len(d) == 0 {
		return nil
	}
	if d[0] == '[' && d[len(d)-1] == ']' {
		d = bytes.TrimSpace(d[1 : len(d)-1])
		if len(d) == 0 {
			return nil
		}
	}
	if c.items > 0 {
		c.buf = append(c.buf, ',')
	}
	c.buf = append(c.buf, d...)
	c.items++
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
