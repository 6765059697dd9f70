package dsclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

// Every options type of the client reports every bad field at once, by its Go field path, in
// an *OptionsError that matches ErrInvalidArgument; zero values mean the defaults.
func TestOptionsValidation(t *testing.T) {
	cases := []struct {
		name string
		err  func() error
		want []string // field paths, in order; nil: valid
	}{
		{"zero RetryPolicy", ds.RetryPolicy{}.Validate, nil},
		{"default RetryPolicy", ds.DefaultRetryPolicy().Validate, nil},
		{"unlimited", ds.RetryPolicy{MaxAttempts: ds.UnlimitedAttempts, Jitter: ds.NoJitter}.Validate, nil},
		{"bad RetryPolicy", ds.RetryPolicy{MaxAttempts: -2, InitialDelay: -1, MaxDelay: -1, Multiplier: 0.5, Jitter: 2}.Validate,
			[]string{"RetryPolicy.MaxAttempts", "RetryPolicy.InitialDelay", "RetryPolicy.MaxDelay", "RetryPolicy.Multiplier", "RetryPolicy.Jitter"}},
		{"MaxDelay under InitialDelay", ds.RetryPolicy{InitialDelay: time.Second, MaxDelay: time.Millisecond}.Validate,
			[]string{"RetryPolicy.MaxDelay"}},
		{"zero ReadOptions", ds.ReadOptions{}.Validate, nil},
		{"bad ReadOptions", ds.ReadOptions{Live: 9, MaxBytes: -1, IdleTimeout: -1, LongPollTimeout: -1, OnParseError: 7,
			Retry: ds.RetryPolicy{MaxAttempts: -5}}.Validate,
			[]string{"ReadOptions.Live", "ReadOptions.MaxBytes", "ReadOptions.IdleTimeout", "ReadOptions.LongPollTimeout",
				"ReadOptions.OnParseError", "ReadOptions.Retry.MaxAttempts"}},
		{"bad ConsumerOptions", ds.ConsumerOptions{MaxBatchItems: -1, Read: ds.ReadOptions{MaxBytes: -1}}.Validate,
			[]string{"ConsumerOptions.Read.MaxBytes", "ConsumerOptions.MaxBatchItems", "ConsumerOptions.Handler"}},
		{"NewConsumer", func() error {
			_, err := ds.NewConsumer(ds.NewStream("http://x/s"), ds.ConsumerOptions{Read: ds.ReadOptions{Retry: ds.RetryPolicy{Jitter: -0.5}}})
			return err
		}, []string{"ConsumerOptions.Read.Retry.Jitter", "ConsumerOptions.Handler"}},
		{"NewClient", func() error {
			_, err := ds.NewClient(ds.WithHeader("", "x"), ds.WithHTTPClient(nil), ds.WithRetry(ds.RetryPolicy{Multiplier: 0.1}),
				ds.WithParamFunc("p", nil))
			return err
		}, []string{"WithHeader", "WithHTTPClient", "WithRetry.Multiplier", "WithParamFunc"}},
		{"Stream", func() error {
			_, err := ds.NewStream("http://x/s", ds.WithHeaderFunc("", nil), ds.WithRetry(ds.RetryPolicy{MaxAttempts: -3})).Head(context.Background())
			return err
		}, []string{"WithHeaderFunc", "WithRetry.MaxAttempts"}},
		{"Reader", func() error {
			_, err := ds.NewStream("http://x/s").Reader(context.Background(), ds.ReadOptions{MaxBytes: -1}).Next()
			return err
		}, []string{"ReadOptions.MaxBytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid options: %v", err)
				}
				return
			}
			var oe *ds.OptionsError
			if !errors.Is(err, ds.ErrInvalidArgument) || !errors.As(err, &oe) {
				t.Fatalf("error %v (%T), want an *OptionsError matching ErrInvalidArgument", err, err)
			}
			var fields []string
			for _, p := range oe.Problems {
				fields = append(fields, p.Field)
			}
			if fmt.Sprint(fields) != fmt.Sprint(tc.want) {
				t.Fatalf("fields %v, want %v (%v)", fields, tc.want, err)
			}
		})
	}
}

// A failing read backs off exponentially (100ms doubling up to 5s, without jitter here) and,
// with a bounded policy, returns the last failure after MaxAttempts.
func TestReadBackoffExponential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec.add(r)
			http.Error(w, "down", http.StatusServiceUnavailable)
		})
		s := inproc(h, "/s", exactRetry(8))
		r := s.Reader(bg(), ds.ReadOptions{})
		defer r.Close()
		_, err := r.Next()
		var e *ds.Error
		if !errors.Is(err, ds.ErrServerError) || !errors.As(err, &e) || e.Attempts != 8 {
			t.Fatalf("error %v, want ErrServerError after 8 attempts", err)
		}
		want := "[100ms 200ms 400ms 800ms 1.6s 3.2s 5s]"
		if got := fmt.Sprint(rec.gaps()); got != want {
			t.Fatalf("delays %s, want %s", got, want)
		}
		// The reader is still usable: Next asks again, with a fresh round of attempts.
		if _, err := r.Next(); !errors.Is(err, ds.ErrServerError) || len(rec.all()) != 16 {
			t.Fatalf("second Next: %v after %d requests", err, len(rec.all()))
		}
	})
}

// 11.6: a server that declares a huge Content-Length and closes the connection after a few
// bytes is not asked again 13 times a second: each failed attempt backs off further, since
// no new data reached the caller (a response header is no progress). With unlimited
// attempts the read keeps trying, at most every MaxDelay, for as long as its context lives.
func TestCutBodyBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec.add(r)
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Stream-Next-Offset", "0_10000000000")
			w.Header().Set("Content-Length", "10000000000")
			io.WriteString(w, "0123456789")
			panic(http.ErrAbortHandler)
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s := inproc(h, "/s", exactRetry(ds.UnlimitedAttempts))
		r := s.Reader(ctx, ds.ReadOptions{})
		defer r.Close()
		c, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 4)
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("read: %v", err)
				}
				break
			}
		}
		if string(got) != "0123456789" {
			t.Fatalf("read %q, want the 10 bytes once", got)
		}
		// 100ms, 200ms, ... 3.2s, then every 5s: 17 requests in a minute, not 600.
		n := len(rec.all())
		gaps := rec.gaps()
		if n > 20 || gaps[len(gaps)-1] != 5*time.Second {
			t.Fatalf("%d requests in a minute, delays %v", n, gaps)
		}
	})
}

// Progress resets the backoff: a server that fails twice before each item makes every item
// wait 100ms + 200ms, never longer.
func TestBackoffResetsOnProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := rec.add(r)
			if n%3 != 0 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			item := n/3 - 1
			protoHeaders(w, "application/json", fmt.Sprintf("0_%03d", item+1), item == 4, item == 4)
			fmt.Fprintf(w, `[{"n":%d}]`, item)
		})
		s := inproc(h, "/s", exactRetry(3))
		start := time.Now()
		got, err := readInts(s.Reader(bg(), ds.ReadOptions{}))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(ints(0, 5)) {
			t.Fatalf("read %v: %v", got, err)
		}
		if d := time.Since(start); d != 5*300*time.Millisecond {
			t.Fatalf("read took %s, want 5 × (100ms + 200ms)", d)
		}
	})
}

// The default policy is bounded, and a read may ask for unlimited attempts without changing
// the handle's policy: ReadOptions.Retry changes only the fields it sets.
func TestReadRetryOverridesHandle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rec.add(r) <= 20 {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			protoHeaders(w, "text/plain", "0_1", true, true)
			io.WriteString(w, "x")
		})
		s := inproc(h, "/s", ds.WithRetry(ds.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}))
		if _, err := s.ReadAll(bg(), ds.ReadOptions{}); !errors.Is(err, ds.ErrServerError) || len(rec.all()) != ds.DefaultMaxAttempts {
			t.Fatalf("default policy: %v after %d requests", err, len(rec.all()))
		}
		res, err := s.ReadAll(bg(), ds.ReadOptions{Retry: ds.RetryPolicy{MaxAttempts: ds.UnlimitedAttempts}})
		if err != nil || string(res.Data) != "x" {
			t.Fatalf("unlimited: %q %v", res.Data, err)
		}
		if gaps := rec.gaps(); gaps[len(gaps)-1] > 2*time.Millisecond {
			t.Fatalf("the read's policy lost the handle's delays: %v", gaps)
		}
	})
}

// The Consumer shares the policy type: its reads retry for as long as Run's context lives by
// default, with the policy's backoff; a bounded Read.Retry makes Run return the failure.
func TestConsumerRetryPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rec.add(r) <= 30 {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			protoHeaders(w, "application/json", "0_2", true, true)
			io.WriteString(w, `[{"n":0},{"n":1}]`)
		})
		s := inproc(h, "/s", exactRetry(0))
		var got []string
		c, err := ds.NewConsumer(s, ds.ConsumerOptions{Handler: func(_ context.Context, b ds.ConsumerBatch) error {
			for _, it := range b.Items {
				got = append(got, string(it))
			}
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(bg()); err != nil || len(got) != 2 || c.Committed() != "0_2" {
			t.Fatalf("run: %v, got %v, committed %q", err, got, c.Committed())
		}
		bounded, _ := ds.NewConsumer(s, ds.ConsumerOptions{Read: ds.ReadOptions{Retry: ds.RetryPolicy{MaxAttempts: 2}},
			Handler: func(context.Context, ds.ConsumerBatch) error { return nil }})
		rec.mu.Lock()
		rec.reqs = nil
		rec.mu.Unlock()
		if err := bounded.Run(bg()); !errors.Is(err, ds.ErrServerError) {
			t.Fatalf("bounded run: %v", err)
		}
		if n := len(rec.all()); n != 2 {
			t.Fatalf("bounded run made %d requests, want 2", n)
		}
	})
}

// A 404 or 410 is returned at once, not retried, and the reader stays usable: a caller with
// a policy (wait for the stream, resume at the earliest offset) goes on with it.
func TestReaderUsableAfterNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch rec.add(r) {
			case 1:
				http.Error(w, "Stream not found", http.StatusNotFound)
			case 2:
				w.Header().Set("Stream-Earliest-Offset", "0_5")
				http.Error(w, "gone", http.StatusGone)
			default:
				protoHeaders(w, "text/plain", "0_9", true, true)
				io.WriteString(w, "late")
			}
		})
		r := inproc(h, "/s").Reader(bg(), ds.ReadOptions{})
		defer r.Close()
		if _, err := r.Next(); !errors.Is(err, ds.ErrNotFound) {
			t.Fatalf("first: %v", err)
		}
		var e *ds.Error
		if _, err := r.Next(); !errors.Is(err, ds.ErrGone) || !errors.As(err, &e) || e.EarliestOffset != "0_5" || r.Offset() != ds.Beginning {
			t.Fatalf("second: %v at %q", err, r.Offset())
		}
		c, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if b, err := c.ReadAll(); string(b) != "late" || err != nil {
			t.Fatalf("third: %q %v", b, err)
		}
		if _, err := r.Next(); err != io.EOF || len(rec.all()) != 3 {
			t.Fatalf("end: %v after %d requests", err, len(rec.all()))
		}
	})
}

// Retry-After is honoured when longer than the backoff.
func TestRetryAfterHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rec.add(r) == 1 {
				w.Header().Set("Retry-After", "7")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			protoHeaders(w, "text/plain", "0_1", true, false)
		})
		if _, err := inproc(h, "/s").ReadAll(bg(), ds.ReadOptions{}); err != nil {
			t.Fatal(err)
		}
		if g := rec.gaps(); len(g) != 1 || g[0] != 7*time.Second {
			t.Fatalf("delays %v, want [7s]", g)
		}
	})
}

func TestRetryPolicyDefaults(t *testing.T) {
	if p := ds.DefaultRetryPolicy(); p.MaxAttempts != 6 || p.InitialDelay != 100*time.Millisecond || p.MaxDelay != 5*time.Second || p.Multiplier != 2 || p.Jitter != 0.5 {
		t.Fatalf("defaults %+v", p)
	}
	b := ds.RetryPolicy{MaxAttempts: 3, Jitter: ds.NoJitter}.Backoff()
	var ds_ []string
	for !b.Exhausted() {
		ds_ = append(ds_, b.Next().String())
	}
	if strings.Join(ds_, ",") != "100ms,200ms,400ms" || b.Attempts() != 3 {
		t.Fatalf("delays %v, attempts %d", ds_, b.Attempts())
	}
	b.Reset()
	if b.Exhausted() || b.Attempts() != 0 {
		t.Fatal("reset")
	}
	// A large InitialDelay raises the default MaxDelay with it.
	b = ds.RetryPolicy{InitialDelay: 10 * time.Second, Jitter: ds.NoJitter}.Backoff()
	if d := b.Next(); d != 10*time.Second {
		t.Fatalf("first delay %s", d)
	}
	u := ds.RetryPolicy{MaxAttempts: ds.UnlimitedAttempts}.Backoff()
	for range 1000 {
		u.Next()
	}
	if u.Exhausted() {
		t.Fatal("unlimited policy exhausted")
	}
}
