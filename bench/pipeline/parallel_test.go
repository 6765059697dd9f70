package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// The splitter finds exactly the items json.Decoder finds, whatever the block size and
// however the body's reads are cut, with strings holding brackets, commas, quotes and
// backslashes.
func TestSplitterMatchesDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{`a`, `\"`, `\\`, `]`, `[`, `{`, `}`, `,`, ` `, `\u0041`, `é`, `\\\"`}
	var items []string
	for i := range 300 {
		var sb strings.Builder
		for range rng.IntN(12) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		var v any
		switch i % 6 {
		case 0:
			v = map[string]any{"id": i, "s": sb.String(), "n": []any{1, "x]", map[string]any{"k": "}"}}}
		case 1:
			v = sb.String()
		case 2:
			v = i * 1000
		case 3:
			v = []any{true, nil, sb.String()}
		case 4:
			v = -1.5e3
		default:
			v = nil
		}
		b, _ := json.Marshal(v)
		items = append(items, string(b))
	}
	for _, sep := range []string{",", " , ", ",\n\t"} {
		body := "[ " + strings.Join(items, sep) + " ]\n"
		for _, size := range []int{1, 7, 64, 4096} {
			got := splitAll(t, body, size)
			if len(got) != len(items) {
				t.Fatalf("block %d, separator %q: %d items, want %d", size, sep, len(got), len(items))
			}
			for i := range items {
				if got[i] != items[i] {
					t.Fatalf("block %d: item %d is %q, want %q", size, i, got[i], items[i])
				}
			}
		}
	}
	for _, bad := range []string{`{"a":1}`, `[1,2`, `[1] x`, `["abc]`} {
		if err := splitErr(bad, 8); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got := splitAll(t, "[]", 4); len(got) != 0 {
		t.Errorf("empty array: %q", got)
	}
}

// splitAll splits body with blocks of size bytes, reading it one byte at a time.
func splitAll(t *testing.T, body string, size int) []string {
	t.Helper()
	var out []string
	blocks := make(chan *block, 1)
	free := make(chan *block, 4)
	for range 4 {
		free <- &block{buf: make([]byte, size)}
	}
	done := make(chan error, 1)
	go func() {
		done <- splitBody(context.Background(), iotest.OneByteReader(strings.NewReader(body)), blocks, free)
		close(blocks)
	}()
	for b := range blocks {
		for _, it := range b.items {
			out = append(out, string(b.buf[it[0]:it[1]]))
		}
		free <- b
	}
	if err := <-done; err != nil {
		t.Fatalf("block %d: %v", size, err)
	}
	return out
}

func splitErr(body string, size int) error {
	blocks := make(chan *block, 100)
	free := make(chan *block, 100)
	for range 100 {
		free <- &block{buf: make([]byte, size)}
	}
	return splitBody(context.Background(), strings.NewReader(body), blocks, free)
}

// The parallel reader reads every event exactly once with every decoder, over a stream
// served in several responses, and reports a decode failure.
func TestParallelReader(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 64 << 10})
	const n = 20000
	u := fillTest(t, srv, n, 1000)
	for _, d := range decoders.All() {
		tl := newTally(n)
		if err := readParallel(context.Background(), u, tl, d); err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if err := tl.verdict(); err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
	}
	failing := decoders.Decoder{Name: "failing", Unmarshal: func(data []byte, v any) error {
		if bytes.Contains(data, []byte(`"id":777,`)) {
			return fmt.Errorf("refused")
		}
		return json.Unmarshal(data, v)
	}}
	if err := readParallel(context.Background(), u, newTally(n), failing); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("decode failure: %v", err)
	}
}
