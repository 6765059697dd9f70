package dsclient_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/refserver"
)

// Faults injected into the reference server: reads and producer appends survive 5xx, 429 and
// dropped connections with nothing lost or repeated.
func TestRefFaults(t *testing.T) {
	srv := ref(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := jsonStream(t, srv.StreamURL(name(t)))
	u, _ := url.Parse(s.URL())
	faults := []refserver.Fault{
		{Status: 503, Count: 1, Method: "POST"},
		{DropConnection: true, Count: 1, Method: "POST"},
		{Status: 500, Count: 2, Method: "POST"},
		{Status: 429, RetryAfter: 0, Count: 1, Method: "GET"},
		{DropConnection: true, Count: 2, Method: "GET"},
	}
	o := ds.DefaultWriterOptions("faulty")
	o.Linger = 0
	w, err := ds.NewWriter(ds.NewStream(s.URL(), ds.WithContentType("application/json"), fastRetry()), o)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range faults {
		f.Path = u.Path
		if err := srv.InjectFault(ctx, f); err != nil {
			t.Fatal(err)
		}
		if f.Method == "POST" {
			if err := w.AppendJSON(ctx, event{N: i}); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatalf("fault %+v: %v", f, err)
			}
			continue
		}
		evs, _, err := ds.ReadJSON[event](ctx, ds.NewStream(s.URL(), fastRetry()), ds.ReadOptions{})
		if err != nil {
			t.Fatalf("fault %+v: %v", f, err)
		}
		if len(evs) != 3 || evs[0].N != 0 || evs[2].N != 2 {
			t.Fatalf("fault %+v: read %v", f, evs)
		}
	}
	w.Close(ctx)
}

// A plain append whose connection drops after the request was sent is not retried (the
// server may have stored it) unless the caller accepts duplicates.
func TestRefPlainAppendDropNotRetried(t *testing.T) {
	srv := ref(t)
	ctx := context.Background()
	s := ds.NewStream(srv.StreamURL(name(t)), ds.WithContentType("text/plain"), fastRetry())
	if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.URL())
	srv.InjectFault(ctx, refserver.Fault{Path: u.Path, DropConnection: true, Count: 1, Method: "POST"})
	_, err := s.Append(ctx, []byte("a"), ds.AppendOptions{})
	var e *ds.Error
	if !errors.As(err, &e) || !errors.Is(err, ds.ErrNetwork) || e.Attempts != 1 {
		t.Fatalf("dropped plain append: %v", err)
	}
	srv.InjectFault(ctx, refserver.Fault{Path: u.Path, DropConnection: true, Count: 1, Method: "POST"})
	if _, err := s.Append(ctx, []byte("b"), ds.AppendOptions{RetryAmbiguous: true}); err != nil {
		t.Fatalf("append with ambiguous retries: %v", err)
	}
	res, err := s.ReadAll(ctx, ds.ReadOptions{})
	if err != nil || string(res.Data) != "b" {
		t.Fatalf("stored %q %v", res.Data, err)
	}
}
