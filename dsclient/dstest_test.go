package dsclient_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// readAllEvents reads n events in every live mode until the stream's close, checking order.
func readEventsLive(t *testing.T, s *ds.Stream, mode ds.LiveMode, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	next := 0
	for it, err := range ds.JSONItems[event](ctx, s, ds.ReadOptions{Live: mode}) {
		if err != nil {
			t.Fatalf("%s: after %d items: %v", mode, next, err)
		}
		if it.Value.N != next {
			t.Fatalf("%s: got %d, want %d: skipped or repeated", mode, it.Value.N, next)
		}
		next++
	}
	if next != n {
		t.Fatalf("%s: read %d items, want %d", mode, next, n)
	}
}

func fillClosed(t *testing.T, s *ds.Stream, n, perAppend int) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Create(ctx, ds.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	batch := make([]event, 0, perAppend)
	for i := range n {
		batch = append(batch, event{N: i, S: "payload with \"quotes\", commas ] and } brackets"})
		if len(batch) == perAppend || i == n-1 {
			if _, err := ds.AppendJSONBatch(ctx, s, batch, ds.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := s.CloseStream(ctx); err != nil {
		t.Fatal(err)
	}
}

// Against the in-process server with small chunks and a body cut in the middle of several
// responses: every mode reads every item once, in order, and ends at the close. It runs in
// a synctest bubble: long-polls and backoffs take no real time.
func TestDstestDropsMidBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := dstest.NewHandler(dstest.Options{MaxChunkBytes: 4 << 10, LongPollTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s := inproc(h, "/v1/stream/drops")
		fillClosed(t, s, 3000, 100)
		for _, mode := range []ds.LiveMode{ds.LiveOff, ds.LiveAuto, ds.LiveLongPoll, ds.LiveSSE} {
			if err := h.InjectFault("/v1/stream/drops", dstest.Fault{Method: "GET", DropMidBody: true, Count: 3}); err != nil {
				t.Fatal(err)
			}
			readEventsLive(t, s, mode, 3000)
		}
	})
}

// SSE responses cut short, or ended by the server after a while, are reconnected from the
// last control event without loss or repeats, while a writer appends.
func TestDstestSSEReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := dstest.NewHandler(dstest.Options{MaxChunkBytes: 2 << 10, SSELifetime: 5 * time.Second, LongPollTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s := inproc(h, "/v1/stream/sse")
		ctx := context.Background()
		if _, err := s.Create(ctx, ds.CreateOptions{ContentType: "application/json"}); err != nil {
			t.Fatal(err)
		}
		m, _ := s.Head(ctx)
		if err := h.InjectFault("/v1/stream/sse", dstest.Fault{TruncateSSEAfter: 3, Count: 2}); err != nil {
			t.Fatal(err)
		}
		r := s.Reader(ctx, ds.ReadOptions{Offset: m.NextOffset, Live: ds.LiveSSE})
		defer r.Close()
		const n = 500
		go func() {
			for i := range n {
				s.AppendJSON(ctx, event{N: i}, ds.AppendOptions{})
				time.Sleep(100 * time.Millisecond) // 50s of appends: ten SSE lifetimes
			}
			s.CloseStream(ctx)
		}()
		got, err := readInts(r)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(ints(0, n)) {
			t.Fatalf("read %d items: %v", len(got), err)
		}
	})
}
