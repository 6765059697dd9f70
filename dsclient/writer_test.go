package dsclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/optcheck"
)

func jsonStream(t *testing.T, base string) *ds.Stream {
	t.Helper()
	s := ds.NewStream(base, ds.WithContentType("application/json"))
	if _, err := s.Create(context.Background(), ds.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func readEvents(t *testing.T, s *ds.Stream) []event {
	t.Helper()
	evs, _, err := ds.ReadJSON[event](context.Background(), s, ds.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestWriterOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		o      ds.WriterOptions
		fields []string // every field the error must name; none: valid
	}{
		{"zero value but ID", ds.WriterOptions{ID: "w"}, nil},
		{"defaults", ds.DefaultWriterOptions("w"), nil},
		{"negative linger means none", ds.WriterOptions{ID: "w", Linger: -1}, nil},
		{"fixed epoch", ds.WriterOptions{ID: "w", Epoch: 7, EpochPolicy: ds.EpochFixed}, nil},
		{"largest epoch", ds.WriterOptions{ID: "w", Epoch: 1<<53 - 1}, nil},
		{"no ID", ds.WriterOptions{}, []string{"WriterOptions.ID"}},
		{"ID not a header value", ds.WriterOptions{ID: "a\nb"}, []string{"WriterOptions.ID"}},
		{"epoch beyond 2^53-1", ds.WriterOptions{ID: "w", Epoch: 1 << 53}, []string{"WriterOptions.Epoch"}},
		{"unknown policy", ds.WriterOptions{ID: "w", EpochPolicy: 9}, []string{"WriterOptions.EpochPolicy"}},
		{"every bad field at once", ds.WriterOptions{Epoch: -1, MaxBatchBytes: -1, MaxBatchItems: -1, MaxInFlight: -1, MaxBufferedBytes: -1},
			[]string{"WriterOptions.ID", "WriterOptions.Epoch", "WriterOptions.MaxBatchBytes", "WriterOptions.MaxBatchItems",
				"WriterOptions.MaxInFlight", "WriterOptions.MaxBufferedBytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ds.NewWriter(ds.NewStream("http://127.0.0.1:1/s"), tc.o); err != nil {
					t.Fatalf("NewWriter: %v", err)
				}
				return
			}
			var oe *optcheck.Error
			if !errors.Is(err, ds.ErrInvalidArgument) || !errors.As(err, &oe) {
				t.Fatalf("error %v (%T) is not an invalid-argument options error", err, err)
			}
			var got []string
			for _, p := range oe.Problems {
				got = append(got, p.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v (%v)", got, tc.fields, err)
			}
			if _, err2 := ds.NewWriter(ds.NewStream("http://127.0.0.1:1/s"), tc.o); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("NewWriter: %v, want %v", err2, err)
			}
		})
	}
}

// Concurrent appenders through a pipelining writer: every item stored exactly once, each
// goroutine's items in order.
func TestRefWriterConcurrent(t *testing.T) {
	srv := ref(t)
	ctx := context.Background()
	s := jsonStream(t, srv.StreamURL(name(t)))
	o := ds.DefaultWriterOptions("w1")
	o.MaxBatchItems, o.Linger = 7, -1
	w, err := ds.NewWriter(s, o)
	if err != nil {
		t.Fatal(err)
	}
	const g, n = 4, 250
	var wg sync.WaitGroup
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				if err := w.AppendJSON(ctx, event{N: j, S: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ctx, []byte("1")); !errors.Is(err, ds.ErrWriterClosed) {
		t.Fatalf("append after close: %v", err)
	}
	next := map[string]int{}
	for _, e := range readEvents(t, s) {
		if e.N != next[e.S] {
			t.Fatalf("goroutine %s: got %d want %d", e.S, e.N, next[e.S])
		}
		next[e.S]++
	}
	for i := range g {
		if next[fmt.Sprint(i)] != n {
			t.Fatalf("goroutine %d: %d items stored", i, next[fmt.Sprint(i)])
		}
	}
	if st := w.Stats(); st.Items != g*n || st.Duplicates != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Batches that race on separate connections reach the server out of order: seq 1 is held
// back until seq 2 has been refused with a gap. The writer sends the early ones again after
// their predecessors, and the stream holds every item once, in order. Deterministic: the
// hold is a channel, not a sleep. On the in-process server and, through a proxy in the test
// process, on the reference server.
func TestWriterSequenceGapRace(t *testing.T) {
	for _, server := range []string{"dstest", "ref"} {
		t.Run(server, func(t *testing.T) {
			var (
				mu       sync.Mutex
				gaps     int
				released = make(chan struct{})
				once     sync.Once
			)
			tr := &handlerTransport{}
			tr.before = func(r *http.Request) (*http.Response, error, bool) {
				if r.Method == http.MethodPost && r.Header.Get("Producer-Seq") == "1" {
					mu.Lock()
					first := gaps == 0
					mu.Unlock()
					if first {
						<-released // seq 2.. overtake seq 1
					}
				}
				return nil, nil, false
			}
			tr.after = func(r *http.Request, resp *http.Response) (*http.Response, error) {
				if resp.StatusCode == http.StatusConflict && r.Header.Get("Producer-Seq") == "2" {
					mu.Lock()
					gaps++
					mu.Unlock()
					once.Do(func() { close(released) })
				}
				return resp, nil
			}
			var s *ds.Stream
			if server == "dstest" {
				_, s = inProcess(t, tr, "race")
			} else {
				s = viaRef(t, tr, name(t))
			}
			ctx := t.Context()
			w, err := ds.NewWriter(s, ds.WriterOptions{ID: "racer", MaxBatchBytes: 1, Linger: -1, MaxInFlight: 4})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 12 {
				if err := w.AppendJSON(ctx, event{N: i}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if gaps == 0 {
				t.Fatal("no sequence gap happened: the race was not exercised")
			}
			checkEvents(t, s, 12)
			if st := w.Stats(); st.Items != 12 || st.Batches != 12 || st.Duplicates != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// The protocol's epoch flow with EpochFixed, against the reference server: a writer that
// resends a stored batch of its own is told it is a duplicate (and counts it once); a zombie
// with an older epoch is fenced; AutoClaim takes the ID over; Restart starts a new epoch;
// CloseStream closes the stream as the writer's last batch and is not a duplicate.
func TestRefWriterEpochs(t *testing.T) {
	srv := ref(t)
	ctx := context.Background()
	s := jsonStream(t, srv.StreamURL(name(t)))
	newW := func(epoch int64, claim bool) *ds.Writer {
		w, err := ds.NewWriter(s, ds.WriterOptions{ID: "p", Epoch: epoch, EpochPolicy: ds.EpochFixed, AutoClaim: claim, Linger: -1})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w0 := newW(0, false)
	w0.AppendJSON(ctx, event{N: 0})
	if err := w0.Close(ctx); err != nil || w0.Stats().Items != 1 {
		t.Fatalf("%v %+v", err, w0.Stats())
	}
	// The same epoch again from a new writer: the server's state is another lifetime's, and
	// the fixed-epoch writer says so instead of counting the item as stored.
	again := newW(0, false)
	again.AppendJSON(ctx, event{N: 99})
	var e *ds.Error
	if err := again.Close(ctx); !errors.Is(err, ds.ErrEpochInUse) || !errors.As(err, &e) ||
		!strings.Contains(err.Error(), `"p"`) || !strings.Contains(err.Error(), "epoch 0") {
		t.Fatalf("same epoch, new lifetime: %v", err)
	}
	if st := again.Stats(); st.Items != 0 || st.Batches != 0 || st.Duplicates != 0 {
		t.Fatalf("another lifetime's batch counted: %+v", st)
	}
	w2 := newW(2, false)
	w2.AppendJSON(ctx, event{N: 1})
	if err := w2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A zombie with an older epoch is fenced.
	z := newW(1, false)
	z.AppendJSON(ctx, event{N: 99})
	if err := z.Close(ctx); !errors.Is(err, ds.ErrStaleEpoch) || !errors.As(err, &e) || e.Epoch != 2 {
		t.Fatalf("zombie: %v", err)
	}
	// Auto-claim takes over with epoch 3.
	c := newW(0, true)
	c.AppendJSON(ctx, event{N: 2})
	if err := c.Flush(ctx); err != nil || c.Epoch() != 3 {
		t.Fatalf("claim: %v epoch %d", err, c.Epoch())
	}
	if err := c.Restart(ctx); err != nil || c.Epoch() != 4 || c.NextSeq() != 0 {
		t.Fatalf("restart: %v %d %d", err, c.Epoch(), c.NextSeq())
	}
	c.AppendJSON(ctx, event{N: 3})
	res, err := c.CloseStream(ctx, []byte(`{"n":4}`))
	if err != nil || !res.Closed || res.NextOffset == "" || res.Duplicate {
		t.Fatalf("close stream: %+v %v", res, err)
	}
	if again, err := c.CloseStream(ctx, nil); err != nil || again != res {
		t.Fatalf("second close: %+v %v", again, err)
	}
	if st := c.Stats(); st.Items != 3 || st.Duplicates != 0 {
		t.Fatalf("claimer stats %+v", st)
	}
	w2.Close(ctx)
	var got []int
	for _, e := range readEvents(t, s) {
		got = append(got, e.N)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("stored %v", got)
	}
	if m, _ := s.Head(ctx); !m.Closed {
		t.Fatal("stream not closed")
	}
}

// Append blocks when MaxBufferedBytes are waiting, and honours its context.
func TestWriterBackpressure(t *testing.T) {
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Stream-Next-Offset", "1")
		w.WriteHeader(200)
	}))
	defer hs.Close()
	defer close(release)
	w, _ := ds.NewWriter(ds.NewStream(hs.URL+"/s"), ds.WriterOptions{ID: "bp", MaxBufferedBytes: 10, Linger: -1})
	ctx := context.Background()
	if err := w.Append(ctx, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := w.Append(tctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append over the buffer: %v", err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if err := w.Close(cctx); err == nil {
		t.Fatal("close with a cancelled context succeeded")
	}
}
