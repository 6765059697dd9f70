package dsclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/refserver"
)

// brokenOffsets serves items 0-9 from the start with next offset B = 0_00010, then, asked at
// B, answers its first `broken` requests with a next offset that cannot be followed: back to
// A = 0_00000 with items 0-9 again (a server looping B→A→B), or B itself with items 10-19
// (a server repeating one offset with data). Then it serves items 10-19 up to the close.
type brokenOffsets struct {
	mode   ds.LiveMode
	stuck  bool // repeat B with data, rather than go back to A
	broken int
	rec    *recorder
	atB    atomic.Int32 // the handlers of successive requests may overlap
}

func (b *brokenOffsets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.rec.add(r)
	f := &fakeStream{n: 20, per: 10}
	q := r.URL.Query()
	live := q.Get("live")
	if q.Get("offset") == "-1" {
		// Up to date for the live modes that switch at the tail; LiveOff goes on to B.
		protoHeaders(w, "application/json", "0_00010", b.mode != ds.LiveOff, false)
		w.Write(f.items(0, 10))
		return
	}
	atB := int(b.atB.Add(1))
	body, next := f.items(10, 20), "0_00020"
	if atB <= b.broken {
		if body, next = f.items(0, 10), "0_00000"; b.stuck {
			body, next = f.items(10, 20), "0_00010"
		}
	}
	if live == "sse" {
		w.Header().Set("Content-Type", "text/event-stream")
		sseWrite(w, string(body), next, true, next == "0_00020")
		if next != "0_00020" {
			<-r.Context().Done()
		}
		return
	}
	protoHeaders(w, "application/json", next, true, next == "0_00020")
	w.Write(body)
}

// 11.4: a response whose next offset goes backwards, or repeats the offset asked for while
// carrying data, is never followed, in any live mode: its data is not delivered, the read
// reports it (ErrOffsetRegressed to the observer) and asks again from the offset it holds,
// backing off exponentially. Nothing is delivered twice, and the read goes on once the
// server mends.
func TestOffsetRegressionNotFollowed(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		for _, mode := range []ds.LiveMode{ds.LiveOff, ds.LiveLongPoll, ds.LiveAuto, ds.LiveSSE} {
			name := fmt.Sprintf("%s/backwards", mode)
			if stuck {
				name = fmt.Sprintf("%s/stuck", mode)
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := &brokenOffsets{mode: mode, stuck: stuck, broken: 3, rec: newRecorder()}
					obs := &events{}
					r := inproc(srv, "/s", exactRetry(0), ds.WithObserver(obs)).Reader(bg(), ds.ReadOptions{Live: mode})
					defer r.Close()
					got, err := readInts(r)
					if err != nil || fmt.Sprint(got) != fmt.Sprint(ints(0, 20)) {
						t.Fatalf("read %v: %v", got, err)
					}
					if n := obs.count("rejected"); n != 3 {
						t.Fatalf("%d rejections reported, want 3:\n%s", n, obs.text())
					}
					reqs := srv.rec.all()
					var gaps []time.Duration
					for i := 2; i < len(reqs); i++ {
						gaps = append(gaps, reqs[i].at-reqs[i-1].at)
					}
					if fmt.Sprint(gaps) != "[100ms 200ms 400ms]" {
						t.Fatalf("requests at B %d apart, want exponential backoff", gaps)
					}
				})
			})
		}
	}
}

// A server that never mends: a bounded policy returns ErrOffsetRegressed, naming both
// offsets, and the reader still stands at the offset it holds.
func TestOffsetRegressionBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &brokenOffsets{mode: ds.LiveOff, broken: 1 << 30, rec: newRecorder()}
		r := inproc(srv, "/s", exactRetry(4)).Reader(bg(), ds.ReadOptions{})
		defer r.Close()
		got, err := readInts(r)
		var e *ds.Error
		if fmt.Sprint(got) != fmt.Sprint(ints(0, 10)) || !errors.Is(err, ds.ErrOffsetRegressed) || !errors.As(err, &e) ||
			e.Offset != "0_00010" || e.ReturnedOffset != "0_00000" || e.Attempts != 4 || r.Offset() != "0_00010" {
			t.Fatalf("read %v: %v at %q", got, err, r.Offset())
		}
		if len(srv.rec.all()) != 5 {
			t.Fatalf("%d requests, want 1 + 4", len(srv.rec.all()))
		}
	})
}

// Sentinels are never compared: any real offset answers -1 or now, and an empty answer at
// the tail (the offset asked for, no data) is the normal end of a catch-up.
func TestOffsetSentinelsAndTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Query().Get("offset") {
			case "now":
				protoHeaders(w, "application/json", "0_00005", true, false)
				w.Write([]byte("[]"))
			case "0_00005":
				protoHeaders(w, "application/json", "0_00005", true, false)
				w.Write([]byte(" [ ] "))
			}
		})
		s := inproc(h, "/s", exactRetry(1))
		for _, from := range []ds.Offset{ds.Now, "0_00005"} {
			res, err := s.ReadAll(bg(), ds.ReadOptions{Offset: from})
			if err != nil || res.Last.NextOffset != "0_00005" {
				t.Fatalf("from %s: %v", from, err)
			}
		}
	})
}

// Against the reference server, in memory and file-backed: asked for an offset beyond the
// tail (a checkpoint of a stream that lost data, say, in a crash or by being recreated
// shorter), it answers at once with its tail as the next offset, lower than the one asked
// for, in every mode. The read never follows it backwards: nothing is delivered, each
// refusal is reported, and a bounded policy ends with ErrOffsetRegressed, the reader still at
// the offset it holds.
func TestRefOffsetBeyondTail(t *testing.T) {
	mem := ref(t)
	file := refserver.ForTest(t, refserver.Options{LongPollTimeout: 500 * time.Millisecond, DataDir: t.TempDir()})
	for _, srv := range []*refserver.Server{mem, file} {
		ctx := context.Background()
		s := ds.NewStream(srv.StreamURL(name(t)), ds.WithContentType("application/json"))
		if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := ds.AppendJSONBatch(ctx, s, []event{{N: 0}, {N: 1}}, ds.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		beyond := ds.Offset(strings.Repeat("0", 16) + "_" + strings.Repeat("9", 16))
		for _, mode := range []ds.LiveMode{ds.LiveOff, ds.LiveLongPoll, ds.LiveSSE} {
			obs := &events{}
			h := ds.NewStream(s.URL(), ds.WithObserver(obs),
				ds.WithRetry(ds.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}))
			r := h.Reader(ctx, ds.ReadOptions{Offset: beyond, Live: mode})
			got, err := readInts(r)
			r.Close()
			var e *ds.Error
			if len(got) != 0 || !errors.As(err, &e) || !errors.Is(err, ds.ErrOffsetRegressed) ||
				e.Offset != beyond || e.ReturnedOffset != res.NextOffset || r.Offset() != beyond {
				t.Fatalf("%s: read %v: %v", mode, got, err)
			}
			if n := obs.count("rejected"); n != 3 {
				t.Fatalf("%s: %d refusals reported, want 3", mode, n)
			}
		}
	}
}
