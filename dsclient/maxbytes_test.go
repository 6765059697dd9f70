package dsclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

// oversized serves a body that is prefix, then filler bytes up to total bytes, then suffix,
// generated as it is sent (nothing of it is held): an item far over the read's limit.
type oversized struct {
	ctype          string
	prefix, suffix string
	filler         byte
	total          int64
	sent           atomic.Int64 // bytes sent by the last response
}

func (o *oversized) write(w io.Writer) {
	o.sent.Store(0)
	block := bytes.Repeat([]byte{o.filler}, 64<<10)
	n, _ := io.WriteString(w, o.prefix)
	o.sent.Add(int64(n))
	for left := o.total; left > 0; {
		b := block[:min(int64(len(block)), left)]
		n, err := w.Write(b)
		o.sent.Add(int64(n))
		if err != nil {
			return // the client gave up
		}
		left -= int64(n)
	}
	io.WriteString(w, o.suffix)
}

func (o *oversized) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("live") == "sse" {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: data\ndata:")
		o.write(w)
		return
	}
	protoHeaders(w, o.ctype, "0_1", true, true)
	o.write(w)
}

// peakHeap runs f and returns how far the heap grew above what it held before, sampling
// the heap's size every half millisecond.
func peakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(500 * time.Microsecond):
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// 11.3: MaxBytes holds on every read path — catch-up, long-poll and SSE; raw items, typed
// decoding, bytes and text — against a 500 MB item, an unterminated string, and endless
// whitespace after a comma: ErrTooLarge, with the heap growing by a few times MaxBytes at
// most, and the server's body given up soon after the limit.
func TestMaxBytesEveryPath(t *testing.T) {
	if testing.Short() {
		t.Skip("streams hundreds of megabytes")
	}
	const max = 2 << 20
	const big = 500 << 20
	bodies := map[string]*oversized{
		"500MB item":           {ctype: "application/json", prefix: `[{"n":0},{"s":"`, filler: 'x', total: big, suffix: `"}]`},
		"unterminated string":  {ctype: "application/json", prefix: `["`, filler: 'y', total: big},
		"whitespace after ','": {ctype: "application/json", prefix: `[{"n":0},`, filler: ' ', total: big, suffix: `{"n":1}]`},
		"500MB text":           {ctype: "text/plain", filler: 'z', total: big},
	}
	type reading struct {
		name string
		live ds.LiveMode
		read func(s *ds.Stream, opts ds.ReadOptions) error
	}
	readings := []reading{
		{"raw items", ds.LiveOff, func(s *ds.Stream, o ds.ReadOptions) error {
			for _, err := range s.RawItems(bg(), o) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"typed items", ds.LiveOff, func(s *ds.Stream, o ds.ReadOptions) error {
			for _, err := range ds.JSONItems[map[string]any](bg(), s, o) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"long-poll typed", ds.LiveLongPoll, func(s *ds.Stream, o ds.ReadOptions) error {
			_, _, err := ds.ReadJSON[event](bg(), s, o)
			return err
		}},
		{"SSE typed", ds.LiveSSE, func(s *ds.Stream, o ds.ReadOptions) error {
			r := s.Reader(bg(), o)
			defer r.Close()
			_, err := readInts(r)
			return err
		}},
		{"bytes", ds.LiveOff, func(s *ds.Stream, o ds.ReadOptions) error {
			for _, err := range s.Bytes(bg(), o) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"text", ds.LiveSSE, func(s *ds.Stream, o ds.ReadOptions) error {
			for _, err := range s.Text(bg(), o) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for name, body := range bodies {
		for _, rd := range readings {
			if (body.ctype == "text/plain") != (rd.name == "bytes" || rd.name == "text") {
				continue
			}
			t.Run(name+"/"+rd.name, func(t *testing.T) {
				s := inproc(body, "/s", exactRetry(1))
				var err error
				grew := peakHeap(func() {
					err = rd.read(s, ds.ReadOptions{Live: rd.live, MaxBytes: max, Offset: "0_0"})
				})
				if !errors.Is(err, ds.ErrTooLarge) {
					t.Fatalf("error %v, want ErrTooLarge", err)
				}
				if grew > 4*max {
					t.Fatalf("heap grew by %d MiB for a %d MiB limit", grew>>20, max>>20)
				}
				if sent := body.sent.Load(); sent > 2*max+1<<20 {
					t.Fatalf("the server sent %d MiB before the read gave up", sent>>20)
				}
				t.Logf("heap grew by %.1f MiB", float64(grew)/(1<<20))
			})
		}
	}
}

// The Consumer's batches stay within MaxBytes too: a JSON chunk larger than the limit is
// handed over in several batches.
func TestConsumerBatchesWithinMaxBytes(t *testing.T) {
	f := &fakeStream{n: 1000, per: 1000, closed: true, rec: newRecorder()}
	var batches []int
	var sizes []int
	c, err := ds.NewConsumer(inproc(f, "/s"), ds.ConsumerOptions{Read: ds.ReadOptions{MaxBytes: 1000}, Handler: func(_ context.Context, b ds.ConsumerBatch) error {
		batches = append(batches, len(b.Items))
		n := 0
		for _, it := range b.Items {
			n += len(it)
		}
		sizes = append(sizes, n)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(bg()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, n := range batches {
		total += n
		if sizes[i] > 1000+20 {
			t.Fatalf("batch %d holds %d bytes", i, sizes[i])
		}
	}
	if total != 1000 || len(batches) < 8 {
		t.Fatalf("%d items in %d batches", total, len(batches))
	}
}

// MaxBytes below the scanner's buffer size still bounds each item: a 4 KiB item under a
// 1 KiB bound is refused, with the items before it delivered.
func TestMaxBytesBelowBufferSize(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Stream-Next-Offset", "0000000000000000_0000000000000100")
		w.Header().Set("Stream-Up-To-Date", "true")
		fmt.Fprintf(w, `[{"n":1},{"s":"%s"}]`, strings.Repeat("x", 4096))
	}))
	defer hs.Close()
	s := ds.NewStream(hs.URL+"/v1/stream/s", fastRetry())
	var got int
	for _, err := range ds.JSONItems[map[string]any](context.Background(), s, ds.ReadOptions{MaxBytes: 1024}) {
		if err != nil {
			if !errors.Is(err, ds.ErrTooLarge) || got != 1 {
				t.Fatalf("after %d items: %v, want ErrTooLarge after 1", got, err)
			}
			return
		}
		got++
	}
	t.Fatalf("read %d items and no error", got)
}
