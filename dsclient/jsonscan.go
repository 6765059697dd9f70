package dsclient

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// itemScanner splits a JSON array read from r into its elements without decoding them. It
// finds element boundaries with a structural scan: brackets must nest and match, strings
// must close, elements must be separated by commas; the full grammar (number syntax,
// escapes, control characters) is left to whoever decodes an element.
//
// Memory is one read buffer, grown only to hold the largest element, and never beyond the
// limit max plus one read: an element larger than max, or more than max bytes of whitespace
// between two elements, is a *tooLargeError however the body goes on.
type itemScanner struct {
	r     io.Reader
	buf   []byte
	pos   int   // first unconsumed byte
	end   int   // end of buffered data
	base  int64 // body position of buf[0]
	rerr  error // read error, reported once the buffered data is used up
	state scanState
	max   int    // largest element accepted
	stack []byte // open brackets of the element being scanned
	read  int64  // bytes read from r
	gap   int64  // body position where the whitespace before the next element began
}

// scanState is where the scanner stands in the array.
type scanState uint8

const (
	stStart     scanState = iota // expect '['
	stFirst                      // after '[': expect an element or ']'
	stAfterItem                  // expect ',' or ']'
	stNeedItem                   // after ',': expect an element
	stDone                       // after ']'
)

const scanBufSize = 64 << 10

// shortLen is how many bytes of a string shortString looks at.
const shortLen = 16

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
		if p, ok := scanBufs.Get().(*[scanBufSize]byte); ok {
			buf = p[:]
		} else {
			buf = make([]byte, scanBufSize)
		}
	}
	return &itemScanner{r: r, buf: buf[:cap(buf)], max: max}
}

// scanBufs holds the scan buffers of closed readers, so that a program that reads many short
// streams (a subscription worker) does not allocate and clear 64 KiB per read.
var scanBufs sync.Pool

// putScanBuf gives buf back to scanBufs, if it is a scan buffer of the usual size.
func putScanBuf(buf []byte) {
	if cap(buf) == scanBufSize {
		scanBufs.Put((*[scanBufSize]byte)(buf[:scanBufSize]))
	}
}

// reset makes the scanner read a new array from r, keeping its buffer (shrunk back if an
// element had grown it).
func (s *itemScanner) reset(r io.Reader) {
	if len(s.buf) > scanBufSize {
		s.buf = make([]byte, scanBufSize)
	}
	s.r, s.pos, s.end, s.base, s.rerr, s.state, s.read, s.gap = r, 0, 0, 0, nil, stStart, 0, 0
	s.stack = s.stack[:0]
}

// scanError is a malformed JSON array; reported with kind [ErrParse] and its position.
type scanError struct {
	msg string
	pos int64 // body position of the fault
}

func (e *scanError) Error() string { return "invalid JSON array: " + e.msg }

// tooLargeError is an element over the size limit; reported with kind [ErrTooLarge].
type tooLargeError struct{ max int }

func (e *tooLargeError) Error() string { return fmt.Sprintf("item larger than %d bytes", e.max) }

// syntax returns a scan error at buffer index i.
func (s *itemScanner) syntax(i int, format string, args ...any) error {
	return &scanError{msg: fmt.Sprintf(format, args...), pos: s.base + int64(i)}
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
		s.base += int64(keep)
		shift = keep
	}
	if s.end == len(s.buf) {
		if s.end-(keep-shift) > s.max {
			return shift, &tooLargeError{s.max}
		}
		// Grow to hold an element of up to max bytes and one more read, no further.
		nb := make([]byte, min(2*len(s.buf), s.max+scanBufSize))
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
			return &scanError{msg: "empty body", pos: 0}
		}
		return &scanError{msg: fmt.Sprintf("truncated after %d bytes", s.read), pos: s.read}
	}
	return s.rerr
}

// space skips whitespace, reading more as needed; it fails when the whitespace since the
// last element exceeds the limit.
func (s *itemScanner) space() error {
	for {
		for s.pos < s.end && isSpace(s.buf[s.pos]) {
			s.pos++
		}
		if s.pos < s.end {
			return nil
		}
		if s.base+int64(s.pos)-s.gap > int64(s.max) {
			return &tooLargeError{s.max}
		}
		if _, err := s.more(s.pos); err != nil {
			return err
		}
	}
}

// next returns the next element's bytes, valid until the next call, or io.EOF after the
// closing bracket (and nothing but whitespace after it).
func (s *itemScanner) next() ([]byte, error) {
	for {
		if err := s.space(); err != nil {
			if s.state == stDone && s.rerr != nil {
				// The array is complete: a body that ends (or breaks) after it lost nothing.
				return nil, io.EOF
			}
			return nil, err
		}
		c := s.buf[s.pos]
		switch s.state {
		case stStart:
			if c != '[' {
				return nil, s.syntax(s.pos, "expected '[' at the start, found %q", c)
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
			if len(item) > s.max {
				// Smaller than the scan buffer, so not caught as it grew: the bound is
				// the item's size, whatever the buffer's.
				return nil, &tooLargeError{s.max}
			}
			s.state = stAfterItem
			s.gap = s.base + int64(s.pos)
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
				return nil, s.syntax(s.pos, "expected ',' or ']' after an element, found %q", c)
			}
		case stDone:
			return nil, s.syntax(s.pos, "data after the closing ']'")
		}
	}
}

// position returns the body position of the next unconsumed byte.
func (s *itemScanner) position() int64 { return s.base + int64(s.pos) }

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
				return nil, err
			}
		}
		s.pos = i
		return s.buf[start:i], nil
	default:
		return nil, s.syntax(i, "unexpected %q at the start of an element", c)
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
			// Most keys and values are short strings without escapes: find their end here,
			// without a call.
			q, next := s.shortString(i + 1)
			if q >= 0 {
				i = q + 1
				continue
			}
			j, err := s.searchString(&start, next)
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
				return nil, s.syntax(i, "mismatched %q", c)
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
	q, next := s.shortString(i)
	if q >= 0 {
		return q + 1, nil
	}
	return s.searchString(start, next)
}

// searchString is skipString from i, where no quote lies between the string's start and i.
func (s *itemScanner) searchString(start *int, i int) (int, error) {
	for {
		q := bytes.IndexByte(s.buf[i:s.end], '"')
		if q < 0 {
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

// shortString looks at the first bytes of the string whose contents start at i, one by one:
// most strings are short and have no escape. It returns the index of the closing quote when
// it finds one with no backslash before it (which closes the string), else -1 and where the
// search for the closing quote is to go on (no quote lies before it).
func (s *itemScanner) shortString(i int) (q, next int) {
	e := min(i+shortLen, s.end)
	if i >= e {
		return -1, i
	}
	for k, c := range s.buf[i:e] {
		if c == '"' {
			return i + k, 0
		}
		if c == '\\' {
			return -1, i + k
		}
	}
	return -1, e
}
