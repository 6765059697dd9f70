package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync"

	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/bench/internal/dsload"
)

// The hand-written parallel reader: the limit the pipeline is measured against (issue 15).
// One goroutine reads each response body in blocks and splits the blocks into items with a
// structural scanner; GOMAXPROCS goroutines decode the items of whole blocks with the
// decoder under test and add them to the tally. Memory is bounded: at most
// 2 x GOMAXPROCS + 2 blocks exist at once.

const (
	parallelBlock    = 256 << 10 // bytes read at a time
	parallelMaxBytes = 64 << 20  // the largest item (the library's default MaxBytes)
)

// block is a run of whole items of one response body, decoded by one worker.
type block struct {
	buf   []byte
	items [][2]int32 // [start, end) of each item in buf
}

// readParallel reads the stream from offset -1 to its tail like readBare (GETs following
// Stream-Next-Offset until Stream-Up-To-Date), decoding items with dec on GOMAXPROCS
// goroutines.
func readParallel(ctx context.Context, streamURL string, t *tally, dec decoders.Decoder) error {
	c := httpClient()
	defer c.CloseIdleConnections()
	workers := runtime.GOMAXPROCS(0)
	blocks := make(chan *block, workers)
	free := make(chan *block, 2*workers+2)
	for range cap(free) {
		free <- &block{buf: make([]byte, parallelBlock)}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var e dsload.Event
			type got struct {
				id     int64
				amount float64
			}
			seen := make([]got, 0, 4096)
			for b := range blocks {
				seen = seen[:0]
				for _, it := range b.items {
					e = dsload.Event{}
					if err := dec.Unmarshal(b.buf[it[0]:it[1]], &e); err != nil {
						cancel(fmt.Errorf("decode item %.40q: %w", b.buf[it[0]:it[1]], err))
						break
					}
					seen = append(seen, got{e.ID, e.Amount})
				}
				t.mu.Lock()
				for _, s := range seen {
					t.addLocked(s.id, s.amount)
				}
				t.mu.Unlock()
				free <- b
			}
		})
	}
	err := readBodies(ctx, c, streamURL, blocks, free)
	close(blocks)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// readBodies sends the GETs and splits each body into blocks of whole items.
func readBodies(ctx context.Context, c *http.Client, streamURL string, blocks chan<- *block, free chan *block) error {
	offset := "-1"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL+"?offset="+url.QueryEscape(offset), nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("GET offset %s: status %d", offset, resp.StatusCode)
		}
		err = splitBody(ctx, resp.Body, blocks, free)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET offset %s: %w", offset, err)
		}
		next := resp.Header.Get("Stream-Next-Offset")
		if resp.Header.Get("Stream-Up-To-Date") != "" {
			return nil
		}
		if next == "" || next == offset {
			return fmt.Errorf("GET offset %s: no progress (next %q)", offset, next)
		}
		offset = next
	}
}

// splitBody reads one JSON array body and hands its items to the workers, block by block.
// The unfinished item at the end of a block is carried to the start of the next one.
func splitBody(ctx context.Context, body io.Reader, blocks chan<- *block, free chan *block) error {
	var sp splitter
	var carry []byte // the unfinished item of the previous block
	for {
		var b *block
		select {
		case b = <-free:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if len(carry) > 0 && len(carry) >= len(b.buf)/2 { // a large item: grow this block
			if len(carry) >= parallelMaxBytes {
				return fmt.Errorf("item larger than %d bytes", parallelMaxBytes)
			}
			b.buf = make([]byte, max(2*len(carry), 2*len(b.buf)))
		}
		n := copy(b.buf, carry)
		m, rerr := io.ReadFull(body, b.buf[n:])
		n += m
		b.items = b.items[:0]
		rest, err := sp.split(b.buf[:n], &b.items)
		if err != nil {
			return err
		}
		carry = append(carry[:0], b.buf[rest:n]...)
		if len(b.items) > 0 {
			blocks <- b
		} else {
			free <- b
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			if !sp.done || len(bytes.TrimSpace(carry)) > 0 {
				return errors.New("body ended inside the array")
			}
			return nil
		case rerr != nil:
			return rerr
		}
	}
}

// splitter finds the items of a JSON array body: a structural scan (brackets, braces and
// strings with their escapes) that does not validate the items — the decoder does.
type splitter struct {
	started bool // the array's "[" was seen
	done    bool // its "]" was seen
}

// split appends the [start, end) of every complete item of buf to items and returns where
// the unfinished rest begins (len(buf) if none). buf starts at an item or between items.
func (s *splitter) split(buf []byte, items *[][2]int32) (rest int, err error) {
	i := 0
	for {
		// Between items: whitespace, the opening bracket, commas, the closing bracket.
		for i < len(buf) && (isSpace(buf[i]) || buf[i] == ',' && s.started) {
			i++
		}
		if i == len(buf) {
			return i, nil
		}
		switch {
		case s.done:
			return 0, fmt.Errorf("data after the array: %.20q", buf[i:])
		case !s.started:
			if buf[i] != '[' {
				return 0, fmt.Errorf("not a JSON array: %.20q", buf[i:])
			}
			s.started = true
			i++
			continue
		case buf[i] == ']':
			s.done = true
			i++
			continue
		}
		end, ok := valueEnd(buf, i)
		if !ok {
			return i, nil
		}
		*items = append(*items, [2]int32{int32(i), int32(end)})
		i = end
	}
}

// valueEnd returns the end of the JSON value starting at buf[i], or false if buf ends first.
func valueEnd(buf []byte, i int) (int, bool) {
	depth := 0
	for i < len(buf) {
		switch c := buf[i]; c {
		case '"':
			j, ok := stringEnd(buf, i+1)
			if !ok {
				return 0, false
			}
			i = j
			if depth == 0 {
				return i, true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
			if depth < 0 { // a scalar ended by the array's bracket
				return i, true
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i, true
			}
		}
		i++
	}
	return 0, false
}

// stringEnd returns the index after the closing quote of the string whose content starts
// at buf[i].
func stringEnd(buf []byte, i int) (int, bool) {
	for {
		k := bytes.IndexByte(buf[i:], '"')
		if k < 0 {
			return 0, false
		}
		q := i + k
		bs := 0
		for j := q - 1; j >= i && buf[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1, true
		}
		i = q + 1
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
