package dsclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// The in-process transport serves the in-process server without sockets: the whole client
// works over it, and a long-poll blocked on it is durably blocked, so that the server's
// timeout passes on the bubble's fake clock in no time.
func TestTransportServesDstestInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := dstest.NewHandler(dstest.Options{LongPollTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s := inproc(h, "/v1/stream/t", ds.WithContentType("application/json"))
		ctx := context.Background()
		if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ds.AppendJSONBatch(ctx, s, []event{{N: 0}, {N: 1}}, ds.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		info, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := s.Reader(ctx, ds.ReadOptions{Offset: info.NextOffset, Live: ds.LiveLongPoll})
		defer r.Close()
		c, err := r.Next()
		if err != nil || c.Status() != http.StatusNoContent || time.Since(start) != 20*time.Second {
			t.Fatalf("long-poll: %v after %s, want a 204 after the server's 20s", err, time.Since(start))
		}
		// An append wakes the next long-poll at once.
		go func() {
			time.Sleep(time.Second)
			s.AppendJSON(ctx, event{N: 2}, ds.AppendOptions{})
		}()
		start = time.Now()
		c, err = r.Next()
		if err != nil {
			t.Fatal(err)
		}
		var e event
		if err := c.DecodeItem(&e); err != nil || e.N != 2 || time.Since(start) != time.Second {
			t.Fatalf("woken long-poll: %+v %v after %s", e, err, time.Since(start))
		}
	})
}

// A handler that drops the connection, before or in the middle of a response, and one whose
// body is shorter than its Content-Length, look to the client as they would over TCP.
func TestTransportConnectionFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/drop":
				panic(http.ErrAbortHandler)
			case "/cut":
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "abc")
				panic(http.ErrAbortHandler)
			case "/short":
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "abc")
			case "/wait":
				<-r.Context().Done()
			}
		})
		hc := &http.Client{Transport: dstest.NewTransport(h)}
		get := func(ctx context.Context, path string) (string, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://x"+path, nil)
			resp, err := hc.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
		if _, err := get(context.Background(), "/drop"); err == nil {
			t.Fatal("dropped connection: no error")
		}
		for _, p := range []string{"/cut", "/short"} {
			if b, err := get(context.Background(), p); b != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: %q %v", p, b, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := get(ctx, "/wait"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("unanswered request: %v", err)
		}
		synctest.Wait() // the handler has seen the cancellation and returned
	})
}

// Credentials in the URL reach the handler as basic authentication.
func TestTransportCredentials(t *testing.T) {
	var auth string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusNotFound)
	})
	s := ds.NewStream("http://u:p@inproc.test/s", ds.WithHTTPClient(&http.Client{Transport: dstest.NewTransport(h)}))
	if _, err := s.Head(context.Background()); !errors.Is(err, ds.ErrNotFound) || auth != "Basic dTpw" {
		t.Fatalf("head: %v, Authorization %q", err, auth)
	}
}
