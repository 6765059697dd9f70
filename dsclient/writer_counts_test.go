package dsclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// writerObserver records writer batches and retries.
type writerObserver struct {
	ds.NopObserver
	mu      sync.Mutex
	batches []ds.WriterBatchEvent
	retries []ds.RetryEvent
}

func (o *writerObserver) WriterBatch(e ds.WriterBatchEvent) {
	o.mu.Lock()
	o.batches = append(o.batches, e)
	o.mu.Unlock()
}

func (o *writerObserver) Retry(e ds.RetryEvent) {
	o.mu.Lock()
	o.retries = append(o.retries, e)
	o.mu.Unlock()
}

// counts returns the number of batch events that were stored, duplicates and failures, and
// the items of the stored ones (duplicates included).
func (o *writerObserver) counts() (stored, dups, failed, items int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.batches {
		switch {
		case e.Err != nil:
			failed++
		case e.Duplicate:
			dups++
			items += e.Items
		default:
			stored++
			items += e.Items
		}
	}
	return
}

// retriesFor returns the retries whose cause matches kind.
func (o *writerObserver) retriesFor(kind error) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, e := range o.retries {
		if errors.Is(e.Err, kind) {
			n++
		}
	}
	return n
}

// appendN appends items 0..n-1 and closes the writer.
func appendN(t *testing.T, w *ds.Writer, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if err := w.AppendJSON(ctx, event{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkEvents checks that the stream holds events 0..n-1, each once, in order.
func checkEvents(t *testing.T, s *ds.Stream, n int) {
	t.Helper()
	evs := readEvents(t, s)
	if len(evs) != n {
		t.Fatalf("%d items in the stream, want %d", len(evs), n)
	}
	for i, e := range evs {
		if e.N != i {
			t.Fatalf("item %d is %d", i, e.N)
		}
	}
}

// A response lost after the server stored the batch: the retry is answered as a duplicate,
// which is a real one. It counts once in Duplicates (and in the observer's Duplicate flag),
// its items once in Items, and the stream holds every item once.
func TestWriterRealDuplicateCounted(t *testing.T) {
	var lost sync.Once
	tr := &handlerTransport{}
	tr.after = func(r *http.Request, resp *http.Response) (*http.Response, error) {
		if r.Method == http.MethodPost && r.Header.Get("Producer-Seq") == "1" && resp.StatusCode == http.StatusOK {
			drop := false
			lost.Do(func() { drop = true })
			if drop {
				return nil, errReset // stored, but the writer never hears of it
			}
		}
		return resp, nil
	}
	obs := &writerObserver{}
	_, s := inProcess(t, tr, "dup", ds.WithObserver(obs), fastRetry())
	w, err := ds.NewWriter(s, ds.WriterOptions{ID: "w", MaxBatchItems: 10, Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 50)
	checkEvents(t, s, 50)
	if st := w.Stats(); st.Items != 50 || st.Duplicates != 1 {
		t.Fatalf("stats %+v, want 50 items and 1 duplicate", st)
	}
	stored, dups, failed, items := obs.counts()
	if dups != 1 || failed != 0 || items != 50 || int64(stored+dups) != w.Stats().Batches {
		t.Fatalf("observer: %d stored, %d duplicates, %d failed, %d items", stored, dups, failed, items)
	}
	if n := obs.retriesFor(ds.ErrNetwork); n != 1 {
		t.Fatalf("%d retries after a network error, want 1", n)
	}
}

// The same against the reference server, through a proxy that loses the response of one
// append after the server stored it (the connection closes with no answer).
func TestRefWriterLostResponse(t *testing.T) {
	srv := ref(t)
	target, _ := url.Parse(srv.URL)
	var lost sync.Once
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI = target.Scheme, target.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		drop := false
		if r.Method == http.MethodPost && r.Header.Get("Producer-Seq") == "2" && resp.StatusCode == http.StatusOK {
			lost.Do(func() { drop = true })
		}
		if drop {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	obs := &writerObserver{}
	s := ds.NewStream(proxy.URL+"/v1/stream/"+name(t), ds.WithContentType("application/json"), ds.WithObserver(obs), fastRetry())
	if _, err := s.Create(context.Background(), ds.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := ds.NewWriter(s, ds.WriterOptions{ID: "w", MaxBatchItems: 10, Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 50)
	checkEvents(t, s, 50)
	if st := w.Stats(); st.Items != 50 || st.Duplicates != 1 {
		t.Fatalf("stats %+v, want 50 items and 1 duplicate", st)
	}
	if _, dups, _, items := obs.counts(); dups != 1 || items != 50 {
		t.Fatalf("observer: %d duplicates, %d items", dups, items)
	}
}

// A close is not a duplicate, with or without a final item, on either server; the close's
// final item counts as stored.
func TestWriterCloseStreamNotDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"dstest", func(t *testing.T) string { return dstest.ForTest(t, dstest.Options{}).StreamURL(name(t)) }},
		{"ref", func(t *testing.T) string { return ref(t).StreamURL(name(t)) }},
	} {
		for _, final := range []string{"", `{"n":3}`} {
			t.Run(tc.name+"/final="+final, func(t *testing.T) {
				ctx := context.Background()
				obs := &writerObserver{}
				s := ds.NewStream(tc.url(t), ds.WithContentType("application/json"), ds.WithObserver(obs))
				if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				w, _ := ds.NewWriter(s, ds.WriterOptions{ID: "closer"})
				for i := range 3 {
					w.AppendJSON(ctx, event{N: i})
				}
				res, err := w.CloseStream(ctx, []byte(final))
				if err != nil || !res.Closed || res.Duplicate || res.NextOffset == "" {
					t.Fatalf("close: %+v %v", res, err)
				}
				want := int64(3)
				if final != "" {
					want = 4
				}
				if st := w.Stats(); st.Duplicates != 0 || st.Items != want {
					t.Fatalf("stats %+v, want %d items and no duplicate", st, want)
				}
				if _, dups, failed, _ := obs.counts(); dups != 0 || failed != 0 {
					t.Fatalf("observer: %d duplicates, %d failed", dups, failed)
				}
				checkEvents(t, s, int(want))
			})
		}
	}
}

// A writer whose first batch meets another lifetime's state in its own epoch counts neither
// that answer as a duplicate nor the other lifetime's items: it reports the collision as a
// retry (ErrEpochInUse), moves to the next epoch and stores its own items.
func TestWriterOtherLifetimeNotCounted(t *testing.T) {
	obs := &writerObserver{}
	_, s := inProcess(t, &handlerTransport{}, "other", ds.WithObserver(obs))
	epoch := time.Now().Add(time.Hour).UnixMilli()
	first, _ := ds.NewWriter(s, ds.WriterOptions{ID: "w", Epoch: epoch, EpochPolicy: ds.EpochFixed, MaxBatchItems: 5})
	for i := range 20 {
		first.AppendJSON(context.Background(), event{N: i, S: "first"})
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	obs.mu.Lock()
	obs.batches = nil
	obs.mu.Unlock()
	second, _ := ds.NewWriter(s, ds.WriterOptions{ID: "w", Epoch: epoch, MaxBatchItems: 5})
	if second.Epoch() != epoch {
		t.Fatalf("second writer starts at %d, want %d", second.Epoch(), epoch)
	}
	for i := range 20 {
		second.AppendJSON(context.Background(), event{N: i, S: "second"})
	}
	if err := second.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := second.Stats(); st.Items != 20 || st.Duplicates != 0 || st.Batches != 4 {
		t.Fatalf("stats %+v, want 20 items in 4 batches, no duplicate", st)
	}
	if stored, dups, failed, items := obs.counts(); stored != 4 || dups != 0 || failed != 0 || items != 20 {
		t.Fatalf("observer: %d stored, %d duplicates, %d failed, %d items", stored, dups, failed, items)
	}
	if n := obs.retriesFor(ds.ErrEpochInUse); n != 1 || second.Epoch() != epoch+1 {
		t.Fatalf("%d retries for another lifetime's state, epoch %d", n, second.Epoch())
	}
	next := map[string]int{}
	for _, e := range readEvents(t, s) {
		if e.N != next[e.S] {
			t.Fatalf("%s: item %d, want %d", e.S, e.N, next[e.S])
		}
		next[e.S]++
	}
	if next["first"] != 20 || next["second"] != 20 {
		t.Fatalf("stored %v", next)
	}
}
