package dsclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
)

// 11.5: a body that stops in the middle is given up after the idle timeout, and the read
// resumes from its offset, delivering everything once, for catch-up and long-poll bodies.
func TestStalledBodyResumes(t *testing.T) {
	for _, mode := range []ds.LiveMode{ds.LiveOff, ds.LiveLongPoll} {
		t.Run(mode.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeStream{n: 20, per: 20, closed: true, rec: newRecorder()}
				f.before = func(req int, w http.ResponseWriter, r *http.Request) bool {
					if req != 1 {
						return false
					}
					body := f.items(0, 20)
					protoHeaders(w, "application/json", "0_00020", true, true)
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
					w.Write(body[:len(body)/2])
					<-r.Context().Done() // stalls: a frozen proxy
					return true
				}
				r := inproc(f, "/s", exactRetry(0)).Reader(bg(), ds.ReadOptions{Live: mode, IdleTimeout: 10 * time.Second})
				defer r.Close()
				start := time.Now()
				got, err := readInts(r)
				if err != nil || fmt.Sprint(got) != fmt.Sprint(ints(0, 20)) {
					t.Fatalf("read %v: %v", got, err)
				}
				if d := time.Since(start); d != 10*time.Second+100*time.Millisecond {
					t.Fatalf("took %s, want the idle timeout and one backoff", d)
				}
			})
		})
	}
}

// A server that accepts a request and never answers is given up: a catch-up request after
// the idle timeout, the in-process server delaying its answer (dstest.Fault.Delay) alike.
func TestSilentServerGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := dstest.NewHandler(dstest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := inproc(h, "/v1/stream/silent", ds.WithContentType("application/json"), exactRetry(0))
		fillClosed(t, s, 50, 10)
		u, _ := url.Parse(s.URL())
		if err := h.InjectFault(u.Path, dstest.Fault{Method: "GET", Delay: time.Hour, Count: 2}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got, err := readInts(s.Reader(bg(), ds.ReadOptions{IdleTimeout: 5 * time.Second}))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(ints(0, 50)) {
			t.Fatalf("read %v: %v", got, err)
		}
		if d := time.Since(start); d != 10*time.Second+300*time.Millisecond {
			t.Fatalf("took %s, want two idle timeouts and their backoffs", d)
		}
	})
}

// A long-poll is given up after the server's long-poll timeout plus a margin: learned from
// the first long-poll that ends without data (2s here: given up after 3s, not after the
// 60s idle timeout), or taken from ReadOptions.LongPollTimeout.
func TestLongPollDeadline(t *testing.T) {
	for _, configured := range []bool{false, true} {
		t.Run(fmt.Sprint("configured=", configured), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeStream{n: 0, per: 10, lpWait: 2 * time.Second, rec: newRecorder()}
				f.before = func(req int, w http.ResponseWriter, r *http.Request) bool {
					switch {
					case req == 2:
						<-r.Context().Done() // a black-holed long-poll
						return true
					case req == 3:
						f.n, f.closed = 5, true
					}
					return false
				}
				opts := ds.ReadOptions{Offset: "0_00000", Live: ds.LiveLongPoll}
				if configured {
					opts.LongPollTimeout = 2 * time.Second
					f.before = func(req int, w http.ResponseWriter, r *http.Request) bool {
						if req == 1 {
							<-r.Context().Done()
							return true
						}
						f.n, f.closed = 5, true
						return false
					}
				}
				r := inproc(f, "/s", exactRetry(0)).Reader(bg(), opts)
				defer r.Close()
				got, err := readInts(r)
				if err != nil || fmt.Sprint(got) != fmt.Sprint(ints(0, 5)) {
					t.Fatalf("read %v: %v", got, err)
				}
				want := "[2s 3.1s]" // a 2s long-poll, then one given up after 3s and a backoff
				if configured {
					want = "[3.1s]"
				}
				if got := fmt.Sprint(f.rec.gaps()); got != want {
					t.Fatalf("requests %s apart, want %s", got, want)
				}
			})
		})
	}
}

// An SSE connection without events (no data, no keep-alive) for the idle timeout is given
// up and reconnected from the last control event; keep-alives keep it open.
func TestSSESilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := rec.add(r)
			q := r.URL.Query()
			if q.Get("live") != "sse" {
				protoHeaders(w, "application/json", "0_00000", true, false)
				w.Write([]byte("[]"))
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			switch n {
			case 2: // keep-alives every 3s for 30s, then silence
				for range 10 {
					sseWrite(w, "", "0_00000", true, false)
					time.Sleep(3 * time.Second)
				}
				<-r.Context().Done()
			case 3:
				sseWrite(w, `[{"n":0}]`, "0_00001", true, true)
			}
		})
		r := inproc(h, "/s", exactRetry(0)).Reader(bg(), ds.ReadOptions{Live: ds.LiveSSE, IdleTimeout: 5 * time.Second})
		defer r.Close()
		start := time.Now()
		got, err := readInts(r)
		if err != nil || fmt.Sprint(got) != "[0]" {
			t.Fatalf("read %v: %v", got, err)
		}
		// Keep-alives until 27s, given up 5s after the last one, then a backoff.
		if d, n := time.Since(start), len(rec.all()); d != 32*time.Second+100*time.Millisecond || n != 3 {
			t.Fatalf("took %s over %d requests", d, n)
		}
	})
}

// Against the reference server: a request the server holds back (its DelayMs fault) is given
// up after the idle timeout and sent again.
func TestRefSilentServer(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := ref(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := ds.NewStream(srv.StreamURL(name(t)), ds.WithContentType("application/json"))
	if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.AppendJSON(ctx, event{N: i}, ds.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(s.URL())
	if err := srv.InjectFault(ctx, refserver.Fault{Path: u.Path, Method: "GET", DelayMs: 10_000, Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	evs, _, err := ds.ReadJSON[event](ctx, ds.NewStream(s.URL(), fastRetry()), ds.ReadOptions{IdleTimeout: time.Second})
	if err != nil || len(evs) != 3 {
		t.Fatalf("read %v: %v", evs, err)
	}
	// Under the fault's 10s: the request was not waited out (however slow the rest under load).
	if d := time.Since(start); d > 9500*time.Millisecond {
		t.Fatalf("took %s: the silent request was not given up", d)
	}
}

// A long-poll timeout learned from a fluke (a server that answered one long-poll early) is
// forgotten at the first long-poll given up: the next one waits as long as the idle timeout,
// and the server's real timeout is learned.
func TestLongPollLearnsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeStream{n: 0, per: 10, lpWait: 5 * time.Second, rec: newRecorder()}
		f.before = func(req int, w http.ResponseWriter, r *http.Request) bool {
			switch req {
			case 1: // an early 204
				time.Sleep(200 * time.Millisecond)
				protoHeaders(w, "application/json", "0_00000", true, false)
				w.WriteHeader(http.StatusNoContent)
				return true
			case 4:
				f.n, f.closed = 1, true
			}
			return false
		}
		r := inproc(f, "/s", exactRetry(0)).Reader(bg(), ds.ReadOptions{Offset: "0_00000", Live: ds.LiveLongPoll})
		defer r.Close()
		got, err := readInts(r)
		if err != nil || fmt.Sprint(got) != "[0]" {
			t.Fatalf("read %v: %v", got, err)
		}
		// 200ms, given up after 200ms + 1s, a backoff, then the server's 5s.
		if got, want := fmt.Sprint(f.rec.gaps()), "[200ms 1.3s 5s]"; got != want {
			t.Fatalf("requests %s apart, want %s", got, want)
		}
	})
}
