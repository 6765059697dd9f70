package dsclient

import (
	"context"
	"errors"
	"io"
	"iter"
)

// Item is one value read from a stream, with the metadata of the chunk it came in.
type Item[T any] struct {
	// Value is the item: a decoded JSON value, a JSON item's raw bytes, or a chunk's bytes or
	// text.
	Value T
	// Index is the item's position in its chunk (0 for byte and text chunks).
	Index int
	// Chunk is the metadata of the chunk the item came in. Chunk.NextOffset is where to
	// resume after the item's chunk is done.
	Chunk ChunkInfo
}

// Chunks returns an iterator over the stream's chunks, built on [Stream.Reader]. Each chunk
// is valid during its loop iteration only. A read error is yielded once, then the iteration
// ends; breaking out of the loop closes the reader.
func (s *Stream) Chunks(ctx context.Context, opts ReadOptions) iter.Seq2[*Chunk, error] {
	return func(yield func(*Chunk, error) bool) {
		r := s.Reader(ctx, opts)
		defer r.Close()
		for {
			c, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(c, nil) {
				return
			}
		}
	}
}

// RawItems returns an iterator over a JSON stream's items as raw bytes, valid during their
// loop iteration only (copy them to keep them). It is the fastest way to read items: they
// are delimited without being decoded. Chunks without items (long-poll timeouts,
// keep-alives) are skipped. A read error is yielded once, then the iteration ends.
func (s *Stream) RawItems(ctx context.Context, opts ReadOptions) iter.Seq2[Item[[]byte], error] {
	return func(yield func(Item[[]byte], error) bool) {
		r := s.Reader(ctx, opts)
		defer r.Close()
		for {
			c, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Item[[]byte]{}, err)
				return
			}
			for {
				idx := c.Index()
				b, err := c.NextItem()
				if err == io.EOF {
					break
				}
				if err != nil {
					yield(Item[[]byte]{Index: idx, Chunk: c.info}, err)
					return
				}
				if !yield(Item[[]byte]{Value: b, Index: idx, Chunk: c.info}, nil) {
					return
				}
			}
		}
	}
}

// JSONItems returns an iterator over a JSON stream's items decoded into T (through
// [Chunk.DecodeItem]). An item that does not decode into T is yielded with an [ErrDecode]
// error and the iteration goes on; any other error (a malformed body among them) is yielded
// once and ends the iteration.
func JSONItems[T any](ctx context.Context, s *Stream, opts ReadOptions) iter.Seq2[Item[T], error] {
	return func(yield func(Item[T], error) bool) {
		r := s.Reader(ctx, opts)
		defer r.Close()
		for {
			c, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Item[T]{}, err)
				return
			}
			// One value is reused (zeroed before each item) so that decoding allocates only
			// what the items themselves hold.
			v := new(T)
			var zero T
			for {
				idx := c.items
				*v = zero
				err := c.DecodeItem(v)
				if err == io.EOF {
					break
				}
				if !yield(Item[T]{Value: *v, Index: idx, Chunk: c.info}, err) || (err != nil && !errors.Is(err, ErrDecode)) {
					return
				}
			}
		}
	}
}

// Bytes returns an iterator over a stream's chunks as byte slices: each item is one whole
// chunk, read into memory (up to [ReadOptions.MaxBytes]; use [Stream.Reader] and
// [Chunk.Read] to stream larger ones). Empty chunks are skipped. The slice is valid during
// its loop iteration only. A read error is yielded once, then the iteration ends.
func (s *Stream) Bytes(ctx context.Context, opts ReadOptions) iter.Seq2[Item[[]byte], error] {
	return func(yield func(Item[[]byte], error) bool) {
		for c, err := range s.Chunks(ctx, opts) {
			if err != nil {
				yield(Item[[]byte]{}, err)
				return
			}
			b, err := c.ReadAll()
			if err != nil {
				yield(Item[[]byte]{Chunk: c.info}, err)
				return
			}
			if len(b) == 0 {
				continue
			}
			if !yield(Item[[]byte]{Value: b, Chunk: c.info}, nil) {
				return
			}
		}
	}
}

// Text returns an iterator over a text stream's chunks as strings, like [Stream.Bytes].
func (s *Stream) Text(ctx context.Context, opts ReadOptions) iter.Seq2[Item[string], error] {
	return func(yield func(Item[string], error) bool) {
		for b, err := range s.Bytes(ctx, opts) {
			if !yield(Item[string]{Value: string(b.Value), Index: b.Index, Chunk: b.Chunk}, err) || err != nil {
				return
			}
		}
	}
}

// ReadResult is the outcome of [Stream.ReadAll].
type ReadResult struct {
	// Data is the bytes read (for a JSON stream, see [ReadJSON]).
	Data []byte
	// Last is the metadata of the last chunk: NextOffset is where to resume.
	Last ChunkInfo
}

// ReadAll reads from opts.Offset up to the tail (live mode off) and returns the bytes in
// memory, at most [ReadOptions.MaxBytes] in all (more is an [ErrTooLarge] error). For a JSON
// stream the chunks' arrays are returned as they are; use [ReadJSON] for items.
func (s *Stream) ReadAll(ctx context.Context, opts ReadOptions) (ReadResult, error) {
	opts.Live = LiveOff
	var res ReadResult
	max := opts.MaxBytes
	if max <= 0 {
		max = DefaultMaxBytes
	}
	for c, err := range s.Chunks(ctx, opts) {
		if err != nil {
			return res, err
		}
		b, err := c.ReadAll()
		if err != nil {
			return res, err
		}
		if len(res.Data)+len(b) > max {
			return res, &Error{Op: OpRead, URL: s.url, Kind: ErrTooLarge, Offset: c.info.StartOffset, Err: &tooLargeError{max}, BytePos: -1}
		}
		res.Data = append(res.Data, b...)
		res.Last = c.info
	}
	return res, nil
}

// ReadJSON reads a JSON stream from opts.Offset up to the tail (live mode off) and returns
// its items decoded into T, with the last chunk's metadata. It holds every item in memory;
// use [JSONItems] to stream.
func ReadJSON[T any](ctx context.Context, s *Stream, opts ReadOptions) ([]T, ChunkInfo, error) {
	opts.Live = LiveOff
	var out []T
	var last ChunkInfo
	r := s.Reader(ctx, opts)
	defer r.Close()
	for {
		c, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, last, nil
		}
		if err != nil {
			return out, last, err
		}
		for {
			var v T
			err := c.DecodeItem(&v)
			if err == io.EOF {
				break
			}
			if err != nil {
				return out, last, err
			}
			out = append(out, v)
		}
		last = c.info
	}
}
