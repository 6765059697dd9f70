package dsclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
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
	o := ds.WriterOptions{Epoch: -1}
	err := o.Validate()
	for _, f := range []string{"ID", "epoch", "maxBatchBytes", "maxBatchItems", "maxInFlight", "maxBufferedBytes"} {
		if !strings.Contains(fmt.Sprint(err), f) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
	if !errors.Is(err, ds.ErrInvalidArgument) {
		t.Fatal(err)
	}
	if err := ds.DefaultWriterOptions("p").Validate(); err != nil {
		t.Fatal(err)
	}
}

// Concurrent appenders through a pipelining writer: every item stored exactly once, each
// goroutine's items in order.
func TestRefWriterConcurrent(t *testing.T) {
	srv := ref(t)
	ctx := context.Background()
	s := jsonStream(t, srv.StreamURL(name(t)))
	o := ds.DefaultWriterOptions("w1")
	o.MaxBatchItems, o.Linger = 7, 0
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

// Batches that race on separate connections reach the server out of order; the writer sends
// the early ones again after their predecessors.
func TestRefWriterSequenceGapRace(t *testing.T) {
	srv := ref(t)
	u, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Producer-Seq") == "1" {
			time.Sleep(150 * time.Millisecond) // seq 2.. overtake seq 1
		}
		proxy.ServeHTTP(w, r)
	}))
	defer hs.Close()
	ctx := context.Background()
	s := jsonStream(t, hs.URL+"/v1/stream/"+name(t))
	o := ds.DefaultWriterOptions("racer")
	o.MaxBatchBytes, o.Linger, o.MaxInFlight = 1, 0, 4
	w, err := ds.NewWriter(s, o)
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
	evs := readEvents(t, s)
	if len(evs) != 12 {
		t.Fatalf("%d items stored", len(evs))
	}
	for i, e := range evs {
		if e.N != i {
			t.Fatalf("item %d is %d", i, e.N)
		}
	}
}

func TestRefWriterEpochs(t *testing.T) {
	srv := ref(t)
	ctx := context.Background()
	s := jsonStream(t, srv.StreamURL(name(t)))
	newW := func(epoch int64, claim bool) *ds.Writer {
		o := ds.DefaultWriterOptions("p")
		o.Epoch, o.AutoClaim, o.Linger = epoch, claim, 0
		w, err := ds.NewWriter(s, o)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// A batch sent twice (a restarted producer resending seq 0 of the same epoch) is a
	// duplicate, stored once.
	for range 2 {
		w := newW(0, false)
		w.AppendJSON(ctx, event{N: 0})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if w.Stats().Batches != 1 {
			t.Fatal(w.Stats())
		}
	}
	w2 := newW(2, false)
	w2.AppendJSON(ctx, event{N: 1})
	if err := w2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A zombie with an older epoch is fenced.
	z := newW(1, false)
	z.AppendJSON(ctx, event{N: 99})
	var e *ds.Error
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
	if err != nil || !res.Closed || res.NextOffset == "" {
		t.Fatalf("close stream: %+v %v", res, err)
	}
	if again, err := c.CloseStream(ctx, nil); err != nil || again != res {
		t.Fatalf("second close: %+v %v", again, err)
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
	o := ds.DefaultWriterOptions("bp")
	o.MaxBufferedBytes, o.Linger = 10, 0
	w, _ := ds.NewWriter(ds.NewStream(hs.URL+"/s"), o)
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
