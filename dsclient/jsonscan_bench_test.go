package dsclient

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// BenchmarkScanner scans an array of 10,000 order events of about 100 bytes (the shape of
// the benchmark suites' events) read from memory in 64 KiB reads.
func BenchmarkScanner(b *testing.B) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 10_000 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"id":%d,"user":"u%d","type":"purchase","amount":%g,"currency":"EUR","ts":"2024-01-01T00:00:00Z"}`,
			i, i%1000, float64(i%1000)/4)
	}
	body.WriteByte(']')
	data := body.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var r bytes.Reader
	s := newItemScanner(&r, 1<<20, nil)
	for b.Loop() {
		r.Reset(data)
		s.reset(&r)
		for {
			if _, err := s.next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}
