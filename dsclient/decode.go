package dsclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DecodeItem decodes the next JSON item into v, as [json.Unmarshal] would. It returns io.EOF
// after the last item. Items are delimited by the same bounded scan as [Chunk.NextItem]
// (so [ReadOptions.MaxBytes] holds), then decoded.
//
// An item that is well-formed JSON but does not fit v is consumed and reported as an
// [ErrDecode] error, and the chunk goes on with the next item. Malformed JSON, in the array
// or inside an item, is an [ErrParse] error handled as [ReadOptions.OnParseError] says; like
// every error other than ErrDecode, it ends the chunk (see [Chunk.NextItem]). A chunk is
// read with DecodeItem or with NextItem, not both.
func (c *Chunk) DecodeItem(v any) error {
	if err := c.begin(modeDecode); err != nil {
		return err
	}
	for {
		item, err := c.sc.next()
		if err == io.EOF {
			c.finish()
			return io.EOF
		}
		if err == nil {
			at := c.sc.position() - int64(len(item))
			if jd := c.r.opts.JSON; jd != nil {
				// A decoder of the caller's: whatever it refuses is this item's failure (the
				// scan has found the item well delimited).
				if err = jd.DecodeJSON(item, v); err != nil {
					err = &decodeError{err}
				}
			} else {
				err = c.r.dec.decode(item, v)
			}
			if err == nil {
				c.items++
				c.r.rt.progress()
				return nil
			}
			var se *itemSyntaxError
			if de, ok := err.(*decodeError); ok {
				err = de.err
			}
			if !errors.As(err, &se) {
				c.items++
				c.r.rt.progress()
				return &Error{Op: OpRead, URL: c.r.s.url, Kind: ErrDecode, Offset: c.info.StartOffset, BytePos: -1,
					Detail: fmt.Sprintf("item %d", c.items-1), Err: err}
			}
			// Malformed inside the item: the body is, as for a fault in the array.
			if se.off < 0 || se.off >= int64(len(item)) {
				se.off = 0
			}
			err = &scanError{msg: fmt.Sprintf("item %d: %v", c.items, se.err), pos: at + se.off}
		}
		if err := c.recover(err); err != nil {
			return err
		}
	}
}

// itemDecoder decodes single JSON items. Small items go through one reused [json.Decoder]
// fed item by item, which saves the per-call setup of json.Unmarshal; large ones through
// json.Unmarshal, so that the decoder's buffer stays small.
type itemDecoder struct {
	feed itemFeed
	dec  *json.Decoder
}

// maxFedItem is the largest item decoded through the reused decoder.
const maxFedItem = 64 << 10

func (d *itemDecoder) decode(item []byte, v any) error {
	if len(item) > maxFedItem {
		err := json.Unmarshal(item, v)
		if err == nil {
			return nil
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &itemSyntaxError{err: se, off: se.Offset - 1}
		}
		return err
	}
	if d.dec == nil {
		d.dec = json.NewDecoder(&d.feed)
		d.feed.fed = 0
	}
	before := d.feed.fed
	d.feed.b, d.feed.space = item, true
	err := d.dec.Decode(v)
	if err == nil && len(d.feed.b) == 0 {
		return nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		d.dec = nil // a decoder keeps a syntax error for good
		return &itemSyntaxError{err: se, off: se.Offset - before - 1}
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		d.dec = nil
		return &itemSyntaxError{err: io.ErrUnexpectedEOF, off: int64(len(item))}
	case len(d.feed.b) > 0:
		// The decoder found a whole value before the item's end. The scanner's item
		// boundaries make this impossible for valid JSON: the item is malformed.
		d.dec = nil
		return &itemSyntaxError{err: errors.New("data after the value"), off: int64(len(item) - len(d.feed.b))}
	}
	return err
}

// itemSyntaxError is malformed JSON inside one item, off bytes into it.
type itemSyntaxError struct {
	err error
	off int64
}

func (e *itemSyntaxError) Error() string { return e.err.Error() }

// itemFeed hands the decoder one item followed by a space, which ends a top-level number
// without waiting for more input, then io.EOF.
type itemFeed struct {
	b     []byte
	space bool
	fed   int64 // bytes handed out since the decoder was made
}

func (f *itemFeed) Read(p []byte) (int, error) {
	n := copy(p, f.b)
	f.b = f.b[n:]
	if len(f.b) == 0 && f.space && n < len(p) {
		p[n] = ' '
		n++
		f.space = false
	}
	f.fed += int64(n)
	if len(f.b) == 0 && !f.space {
		return n, io.EOF
	}
	return n, nil
}

// decodeError is the error of a caller's JSONDecoder on one item.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }

// JSONDecoder decodes one JSON value — the bytes of one item of a JSON stream — into v, which
// is a non-nil pointer, with the semantics of [json.Unmarshal]. data is valid only during the
// call: a decoder must not keep it (or parts of it, such as strings that alias it). It must
// be safe for concurrent use.
//
// Typed reads ([JSONItems], [Chunk.DecodeItem], [ReadJSON]) use [ReadOptions.JSON], and the
// pipeline producers of package source/durablestreams their options' JSON, so that a faster
// decoder can replace encoding/json; package dsclient/segmentiojson adapts one. The default is
// [StdJSON]. Items are delimited and bounded (MaxBytes) before they are decoded, whatever the
// decoder.
type JSONDecoder interface {
	DecodeJSON(data []byte, v any) error
}

// JSONDecoderFunc adapts a function with the signature of json.Unmarshal to [JSONDecoder].
type JSONDecoderFunc func(data []byte, v any) error

// DecodeJSON calls f(data, v).
func (f JSONDecoderFunc) DecodeJSON(data []byte, v any) error { return f(data, v) }

// StdJSON is the default [JSONDecoder]: encoding/json, through decoders that are reused
// across calls (which saves json.Unmarshal's setup on small items). Safe for concurrent use.
var StdJSON JSONDecoder = stdJSON{}

type stdJSON struct{}

var itemDecoders = sync.Pool{New: func() any { return new(itemDecoder) }}

func (stdJSON) DecodeJSON(data []byte, v any) error {
	d := itemDecoders.Get().(*itemDecoder)
	err := d.decode(data, v)
	itemDecoders.Put(d)
	if se, ok := err.(*itemSyntaxError); ok {
		return se.err
	}
	return err
}
