package dsclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// itemScanner splits a JSON array read from r into its elements without decoding them. It
// finds element boundaries with a structural scan: brackets must nest and match, strings
// must close, elements must be separated by commas; the full grammar (number syntax,
// escapes, control characters) is left to whoever decodes an element. Memory is one read
// buffer, grown only to hold the largest element.
type itemScanner struct {
	r     io.Reader
	buf   []byte
	pos   int   // first unconsumed byte
	end   int   // end of buffered data
	rerr  error // read error, reported once the buffered data is used up
	state uint8
	max   int    // largest element accepted
	stack []byte // open brackets of the element being scanned
	read  int64  // bytes read from r
}

const (
	stStart     = iota // expect '['
	stFirst            // after '[': expect an element or ']'
	stAfterItem        // expect ',' or ']'
	stNeedItem         // after ',': expect an element
	stDone             // after ']'
)

const scanBufSize = 64 << 10

// special marks the bytes the structural scan stops at inside an object or array.
var special = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// delim marks the bytes that end a scalar.
var delim = [256]bool{',': true, ']': true, '}': true, ' ': true, '\t': true, '\n': true, '\r': true}

// newBytesScanner scans an array held in memory, without copying it.
func newBytesScanner(data []byte) *itemScanner {
	return &itemScanner{buf: data, end: len(data), rerr: io.EOF, read: int64(len(data)), max: len(data)}
}

func newItemScanner(r io.Reader, max int, buf []byte) *itemScanner {
	if cap(buf) < scanBufSize {
		buf = make([]byte, scanBufSize)
	}
	return &itemScanner{r: r, buf: buf[:cap(buf)], max: max}
}

// reset makes the scanner read a new array from r, keeping its buffer.
func (s *itemScanner) reset(r io.Reader) {
	s.r, s.pos, s.end, s.rerr, s.state, s.read = r, 0, 0, nil, stStart, 0
	s.stack = s.stack[:0]
}

// scanError is a malformed JSON array; reported with kind [ErrParse].
type scanError struct{ msg string }

func (e *scanError) Error() string { return "invalid JSON array: " + e.msg }

// tooLargeError is an element over the size limit; reported with kind [ErrTooLarge].
type tooLargeError struct{ max int }

func (e *tooLargeError) Error() string { return fmt.Sprintf("item larger than %d bytes", e.max) }

func jsonSyntax(format string, args ...any) error {
	return &scanError{msg: fmt.Sprintf(format, args...)}
}

// more reads more data, keeping buf[keep:end]; it returns by how much indices shifted.
func (s *itemScanner) more(keep int) (int, error) {
	if s.rerr != nil {
		return 0, s.readErr()
	}
	shift := 0
	if keep > 0 && (keep == s.end || s.end > len(s.buf)/2) {
		copy(s.buf, s.buf[keep:s.end])
		s.end -= keep
		s.pos -= keep
		shift = keep
	}
	if s.end == len(s.buf) {
		if s.end-(keep-shift) > s.max {
			return shift, &tooLargeError{s.max}
		}
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for range 100 {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		s.read += int64(n)
		if err != nil {
			s.rerr = err
			if n > 0 {
				return shift, nil
			}
			return shift, s.readErr()
		}
		if n > 0 {
			return shift, nil
		}
	}
	return shift, io.ErrNoProgress
}

// readErr turns the sticky read error into what the scanner reports when it needs more data:
// a clean end of body inside the array is a parse error (the array is truncated); any other
// error (a connection cut) is returned as it is, for the caller to resume.
func (s *itemScanner) readErr() error {
	if s.rerr == io.EOF {
		if s.state == stStart && s.read == 0 {
			return jsonSyntax("empty body")
		}
		return jsonSyntax("truncated after %d bytes", s.read)
	}
	return s.rerr
}

// next returns the next element's bytes, valid until the next call, or io.EOF after the
// closing bracket (and nothing but whitespace after it).
func (s *itemScanner) next() ([]byte, error) {
	for {
		for s.pos < s.end && isSpace(s.buf[s.pos]) {
			s.pos++
		}
		if s.pos == s.end {
			if s.state == stDone {
				if s.rerr == io.EOF {
					return nil, io.EOF
				}
			}
			if _, err := s.more(s.pos); err != nil {
				var se *scanError
				if s.state == stDone && errors.As(err, &se) {
					return nil, io.EOF // clean end of body after the array
				}
				return nil, err
			}
			continue
		}
		c := s.buf[s.pos]
		switch s.state {
		case stStart:
			if c != '[' {
				return nil, jsonSyntax("expected '[' at the start, found %q", c)
			}
			s.pos++
			s.state = stFirst
		case stFirst, stNeedItem:
			if c == ']' && s.state == stFirst {
				s.pos++
				s.state = stDone
				continue
			}
			item, err := s.value()
			if err != nil {
				return nil, err
			}
			s.state = stAfterItem
			return item, nil
		case stAfterItem:
			switch c {
			case ',':
				s.pos++
				s.state = stNeedItem
			case ']':
				s.pos++
				s.state = stDone
			default:
				return nil, jsonSyntax("expected ',' or ']' after an element, found %q", c)
			}
		case stDone:
			return nil, jsonSyntax("data after the closing ']'")
		}
	}
}

// enter consumes the opening bracket (state stStart to stFirst).
func (s *itemScanner) enter() error {
	for {
		for s.pos < s.end && isSpace(s.buf[s.pos]) {
			s.pos++
		}
		if s.pos < s.end {
			break
		}
		if _, err := s.more(s.pos); err != nil {
			return err
		}
	}
	if c := s.buf[s.pos]; c != '[' {
		return jsonSyntax("expected '[' at the start, found %q", c)
	}
	s.pos++
	s.state = stFirst
	return nil
}

// separator consumes what follows an element: a comma (reporting more elements) or the
// closing bracket.
func (s *itemScanner) separator() (more bool, err error) {
	for {
		for s.pos < s.end && isSpace(s.buf[s.pos]) {
			s.pos++
		}
		if s.pos < s.end {
			break
		}
		if _, err := s.more(s.pos); err != nil {
			return false, err
		}
	}
	switch c := s.buf[s.pos]; c {
	case ',':
		s.pos++
		s.state = stNeedItem
		return true, nil
	case ']':
		s.pos++
		s.state = stDone
		return false, nil
	default:
		return false, jsonSyntax("expected ',' or ']' after an element, found %q", c)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// value scans one element starting at s.pos.
func (s *itemScanner) value() ([]byte, error) {
	start, i := s.pos, s.pos
	s.stack = s.stack[:0]
	c := s.buf[i]
	switch {
	case c == '"':
		j, err := s.skipString(&start, i+1)
		if err != nil {
			return nil, err
		}
		s.pos = j
		return s.buf[start:j], nil
	case c == '{' || c == '[':
	case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n':
		for {
			for i < s.end && !delim[s.buf[i]] {
				i++
			}
			if i < s.end {
				break
			}
			shift, err := s.more(start)
			start -= shift
			i -= shift
			if err != nil {
				if s.rerr == io.EOF && i > start {
					return nil, jsonSyntax("truncated after %d bytes", s.read)
				}
				return nil, err
			}
		}
		s.pos = i
		return s.buf[start:i], nil
	default:
		return nil, jsonSyntax("unexpected %q at the start of an element", c)
	}
	for {
		for i < s.end && !special[s.buf[i]] {
			i++
		}
		if i >= s.end {
			shift, err := s.more(start)
			start -= shift
			i -= shift
			if err != nil {
				return nil, err
			}
			continue
		}
		switch c := s.buf[i]; c {
		case '"':
			j, err := s.skipString(&start, i+1)
			if err != nil {
				return nil, err
			}
			i = j
			continue
		case '{', '[':
			s.stack = append(s.stack, c)
		default: // '}' or ']'
			n := len(s.stack)
			if n == 0 || (c == '}') != (s.stack[n-1] == '{') {
				return nil, jsonSyntax("mismatched %q", c)
			}
			s.stack = s.stack[:n-1]
			if n == 1 {
				i++
				s.pos = i
				return s.buf[start:i], nil
			}
		}
		i++
	}
}

// skipString returns the index just after the quote closing the string whose contents start
// at i. *start is the element start, shifted if the buffer moves.
func (s *itemScanner) skipString(start *int, i int) (int, error) {
	for {
		q := bytes.IndexByte(s.buf[i:s.end], '"')
		if q < 0 {
			// Keep the last byte: it may be a backslash escaping the next quote.
			i = s.end
			shift, err := s.more(*start)
			*start -= shift
			i -= shift
			if err != nil {
				return 0, err
			}
			continue
		}
		q += i
		// Count the backslashes before the quote: an odd number escapes it.
		b := q - 1
		for b > *start && s.buf[b] == '\\' {
			b--
		}
		if (q-1-b)%2 == 0 {
			return q + 1, nil
		}
		i = q + 1
	}
}
