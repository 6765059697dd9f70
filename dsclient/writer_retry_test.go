package dsclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// Issue 11.6: the server is down for a minute — far longer than the old retry budget of
// about 3 s — while a writer with the default options keeps appending. Connections are
// refused, then answered 503 with Retry-After, then 500 after the server stored the batch
// (an ambiguous failure). Flush waits through it all, every failure is retried with bounded
// exponential backoff and reported to the observer, and the stream ends up holding every item
// exactly once, in order. Under testing/synctest: the minute is virtual.
func TestWriterRetriesThroughOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		phase := func() time.Duration { return time.Since(start) }
		var stored500 atomic.Int32
		tr := &handlerTransport{}
		tr.before = func(r *http.Request) (*http.Response, error, bool) {
			if r.Method != http.MethodPost {
				return nil, nil, false
			}
			switch p := phase(); {
			case p < 40*time.Second:
				return nil, errRefused, true
			case p < 50*time.Second:
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Request: r,
					Header: http.Header{"Retry-After": {"2"}}, Body: http.NoBody}, nil, true
			}
			return nil, nil, false
		}
		tr.after = func(r *http.Request, resp *http.Response) (*http.Response, error) {
			if p := phase(); r.Method == http.MethodPost && p < 60*time.Second && resp.StatusCode == http.StatusOK {
				stored500.Add(1)
				return &http.Response{StatusCode: http.StatusInternalServerError, Request: r,
					Header: http.Header{}, Body: io.NopCloser(strings.NewReader("stored, then failed"))}, nil
			}
			return resp, nil
		}
		obs := &writerObserver{}
		_, s := inProcess(t, tr, "outage", ds.WithObserver(obs))
		w, err := ds.NewWriter(s, ds.WriterOptions{ID: "patient", MaxBatchItems: 4})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		const n = 60
		for i := range n {
			if err := w.AppendJSON(ctx, event{N: i}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			if i == 10 {
				short, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := w.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("flush while the server is down: %v, want the context's deadline", err)
				}
				cancel()
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatalf("close after the outage: %v", err)
		}
		if phase() < time.Minute {
			t.Fatalf("the writer finished at %v, before the outage ended", phase())
		}
		checkEvents(t, s, n)
		if st := w.Stats(); st.Items != n {
			t.Fatalf("stats %+v", st)
		}
		if stored500.Load() == 0 {
			t.Fatal("no ambiguous 500 was exercised")
		}
		obs.mu.Lock()
		retries := obs.retries
		obs.mu.Unlock()
		pol := ds.DefaultRetryPolicy()
		var refused, unavailable, failed int
		for _, e := range retries {
			var de *ds.Error
			if !errors.As(e.Err, &de) {
				t.Fatalf("retry without a client error: %+v", e)
			}
			switch {
			case de.Status == 0:
				refused++
				if e.Delay > pol.MaxDelay {
					t.Fatalf("retry after %v, beyond the policy's MaxDelay %v", e.Delay, pol.MaxDelay)
				}
			case de.Status == http.StatusServiceUnavailable:
				unavailable++
				if e.Delay < 2*time.Second {
					t.Fatalf("503 with Retry-After 2 retried after %v", e.Delay)
				}
			case de.Status == http.StatusInternalServerError:
				failed++
			}
		}
		if refused < 10 || unavailable == 0 || failed == 0 {
			t.Fatalf("retries: %d refused, %d unavailable, %d failed", refused, unavailable, failed)
		}
		if _, dups, errs, _ := obs.counts(); dups == 0 || errs != 0 {
			t.Fatalf("observer: %d duplicates (the 500s stored their batches), %d errors", dups, errs)
		}
	})
}

// The same kind of outage on real HTTP against the in-process server: 20 consecutive 503s
// on the stream, more than the client's retry policy allows for one request.
func TestWriterOutageDstest(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	s := jsonStream(t, srv.StreamURL(name(t)))
	s = ds.NewStream(s.URL(), ds.WithContentType("application/json"), fastRetry())
	u, _ := url.Parse(s.URL())
	if err := srv.InjectFault(u.Path, dstest.Fault{Method: "POST", Status: 503, Count: 20}); err != nil {
		t.Fatal(err)
	}
	w, err := ds.NewWriter(s, ds.WriterOptions{ID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 10)
	checkEvents(t, s, 10)
	if n := srv.Handler().PendingFaults(); n != 0 {
		t.Fatalf("%d faults left unused", n)
	}
}

// Linger under testing/synctest: items appended within the linger time of the batch's first
// item share one request, sent when the linger time has passed; an item after that starts a
// new batch. With a negative Linger, a batch goes as soon as a request slot is free.
func TestWriterLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var posts []string // bodies
		var sentAt []time.Duration
		start := time.Now()
		tr := &handlerTransport{}
		tr.before = func(r *http.Request) (*http.Response, error, bool) {
			if r.Method == http.MethodPost {
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(strings.NewReader(string(b)))
				mu.Lock()
				posts = append(posts, string(b))
				sentAt = append(sentAt, time.Since(start))
				mu.Unlock()
			}
			return nil, nil, false
		}
		_, s := inProcess(t, tr, "linger")
		start = time.Now()
		ctx := context.Background()
		w, _ := ds.NewWriter(s, ds.WriterOptions{ID: "lingerer"}) // Linger: the default, 5ms
		w.Append(ctx, []byte("1"))
		time.Sleep(4 * time.Millisecond)
		w.Append(ctx, []byte("2"))
		time.Sleep(2 * time.Millisecond) // 6ms: the first batch went at 5ms
		synctest.Wait()
		w.Append(ctx, []byte("3"))
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got, at := strings.Join(posts, " "), sentAt
		posts, sentAt = nil, nil
		mu.Unlock()
		if got != "[1,2] [3]" || at[0] != 5*time.Millisecond || at[1] != 6*time.Millisecond {
			t.Fatalf("requests %s at %v, want [1,2] at 5ms and [3] at 6ms (flushed)", got, at)
		}
		w.Close(ctx)

		// No linger: the first item goes at once; while it is in flight (held here), items
		// accumulate into one batch.
		hold := make(chan struct{})
		var held atomic.Bool
		tr.before = func(r *http.Request) (*http.Response, error, bool) {
			if r.Method == http.MethodPost {
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(strings.NewReader(string(b)))
				mu.Lock()
				posts = append(posts, string(b))
				mu.Unlock()
				if held.CompareAndSwap(false, true) {
					<-hold
				}
			}
			return nil, nil, false
		}
		w, _ = ds.NewWriter(s, ds.WriterOptions{ID: "eager", Linger: -1})
		w.Append(ctx, []byte("4"))
		synctest.Wait() // the first request is in flight, held
		w.Append(ctx, []byte("5"))
		w.Append(ctx, []byte("6"))
		close(hold)
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got = strings.Join(posts, " ")
		mu.Unlock()
		if got != "[4] [5,6]" {
			t.Fatalf("requests %s", got)
		}
	})
}
