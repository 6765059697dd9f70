package dsclient

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// BenchmarkScanner scans arrays of 10,000 items read from memory in 64 KiB reads: order
// events of about 100 bytes (the shape of the benchmark suites' events), and objects with
// longer strings, where the search for the closing quote does the work.
func BenchmarkScanner(b *testing.B) {
	b.Run("events", func(b *testing.B) {
		benchScan(b, func(body *bytes.Buffer, i int) {
			fmt.Fprintf(body, `{"id":%d,"user":"u%d","type":"purchase","amount":%g,"currency":"EUR","ts":"2024-01-01T00:00:00Z"}`,
				i, i%1000, float64(i%1000)/4)
		})
	})
	long := strings.Repeat("lorem ipsum ", 20)
	b.Run("long-strings", func(b *testing.B) {
		benchScan(b, func(body *bytes.Buffer, i int) {
			fmt.Fprintf(body, `{"id":%d,"text":"%s","note":"%s"}`, i, long[:100+i%100], long[:40+i%40])
		})
	})
}

func benchScan(b *testing.B, item func(*bytes.Buffer, int)) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 10_000 {
		if i > 0 {
			body.WriteByte(',')
		}
		item(&body, i)
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
