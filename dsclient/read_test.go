package dsclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

// dropServer serves a JSON (or text) stream as one response and cuts the connection in the
// middle of the body for the first `drops` requests.
type dropServer struct {
	body     []byte
	ctype    string
	drops    int32
	requests atomic.Int32
	cutAt    int
}

func (d *dropServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := d.requests.Add(1)
	if got := r.URL.Query().Get("offset"); got != "-1" {
		http.Error(w, "unexpected offset "+got, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", d.ctype)
	w.Header().Set("Stream-Next-Offset", "0_end")
	w.Header().Set("Stream-Up-To-Date", "true")
	w.Header().Set("Content-Length", strconv.Itoa(len(d.body)))
	if n <= d.drops {
		w.Write(d.body[:d.cutAt])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	w.Write(d.body)
}

func jsonArray(n int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"n":%d,"s":"item \"%d\" with, commas ] and } brackets"}`, i, i)
	}
	b.WriteByte(']')
	return []byte(b.String())
}

func fastRetry() ds.Option {
	return ds.WithRetry(ds.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})
}

func TestResumeJSONAfterMidBodyDrop(t *testing.T) { synctest.Test(t, testResumeJSONAfterMidBodyDrop) }

func testResumeJSONAfterMidBodyDrop(t *testing.T) {
	const n = 20000
	srv := &dropServer{body: jsonArray(n), ctype: "application/json", drops: 2}
	srv.cutAt = len(srv.body) / 3
	s := inproc(srv, "/s")
	r := s.Reader(context.Background(), ds.ReadOptions{})
	defer r.Close()
	c, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		var e event
		err := c.DecodeItem(&e)
		if err == io.EOF {
			if i != n {
				t.Fatalf("read %d items, want %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		if e.N != i {
			t.Fatalf("item %d has n=%d: skipped or repeated", i, e.N)
		}
	}
	if c.Resumed() != 2 || srv.requests.Load() != 3 {
		t.Fatalf("resumed %d times over %d requests, want 2 over 3", c.Resumed(), srv.requests.Load())
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after up-to-date chunk: %v, want io.EOF", err)
	}
}

func TestResumeBytesAfterMidBodyDrop(t *testing.T) { synctest.Test(t, testResumeBytesAfterMidBodyDrop) }

func testResumeBytesAfterMidBodyDrop(t *testing.T) {
	body := []byte(strings.Repeat("0123456789", 50000))
	srv := &dropServer{body: body, ctype: "text/plain", drops: 1, cutAt: 123457}
	res, err := inproc(srv, "/s").ReadAll(context.Background(), ds.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Data) != string(body) {
		t.Fatalf("read %d bytes, want %d identical bytes", len(res.Data), len(body))
	}
}

// With retries disabled the chunk fails; Next continues it without a gap or a repeat.
func TestNextContinuesFailedChunk(t *testing.T) { synctest.Test(t, testNextContinuesFailedChunk) }

func testNextContinuesFailedChunk(t *testing.T) {
	const n = 5000
	srv := &dropServer{body: jsonArray(n), ctype: "application/json", drops: 1}
	srv.cutAt = len(srv.body) / 2
	r := inproc(srv, "/s", ds.WithRetry(ds.RetryPolicy{MaxAttempts: 1})).Reader(context.Background(), ds.ReadOptions{})
	defer r.Close()
	c, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	failed := false
	for {
		var e event
		err := c.DecodeItem(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			if failed || !errors.Is(err, ds.ErrNetwork) {
				t.Fatalf("item %d: %v", next, err)
			}
			failed = true
			if r.Offset() != "-1" {
				t.Fatalf("offset after failure %q, want the chunk's start", r.Offset())
			}
			if c, err = r.Next(); err != nil {
				t.Fatal(err)
			}
			if c.Index() != next || c.StartOffset() != "-1" {
				t.Fatalf("continuation starts at index %d offset %q, want %d -1", c.Index(), c.StartOffset(), next)
			}
			continue
		}
		if e.N != next {
			t.Fatalf("got n=%d, want %d", e.N, next)
		}
		next++
	}
	if !failed || next != n {
		t.Fatalf("failed=%v read=%d", failed, next)
	}
}

func TestStatusMapping(t *testing.T) {
	cases := []struct {
		name   string
		status int
		hdr    map[string]string
		op     func(*ds.Stream) error
		kind   error
		check  func(*ds.Error) bool
	}{
		{"read 404", 404, nil, readOp, ds.ErrNotFound, nil},
		{"read 400", 400, nil, readOp, ds.ErrBadRequest, nil},
		{"read 401", 401, nil, readOp, ds.ErrUnauthorized, nil},
		{"read 403", 403, nil, readOp, ds.ErrForbidden, nil},
		{"read 410", 410, map[string]string{"Stream-Earliest-Offset": "5_0"}, readOp, ds.ErrGone,
			func(e *ds.Error) bool { return e.EarliestOffset == "5_0" }},
		{"create 409", 409, nil, func(s *ds.Stream) error { _, err := s.Create(ctx(), ds.CreateOptions{}); return err }, ds.ErrConflict, nil},
		{"append 409 closed", 409, map[string]string{"Stream-Closed": "true", "Stream-Next-Offset": "9_9"}, appendOp(ds.AppendOptions{}), ds.ErrStreamClosed,
			func(e *ds.Error) bool { return e.NextOffset == "9_9" }},
		{"append 409 seq", 409, nil, appendOp(ds.AppendOptions{Seq: "0002"}), ds.ErrSequenceConflict, nil},
		{"append 409 type", 409, nil, appendOp(ds.AppendOptions{}), ds.ErrConflict, nil},
		{"append 409 gap", 409, map[string]string{"Producer-Expected-Seq": "3", "Producer-Received-Seq": "5"},
			appendOp(ds.AppendOptions{Idempotent: &ds.IdempotentHeaders{ID: "p", Seq: 5}}), ds.ErrSequenceGap,
			func(e *ds.Error) bool { return e.ExpectedSeq == 3 && e.ReceivedSeq == 5 }},
		{"append 403 stale", 403, map[string]string{"Producer-Epoch": "7"},
			appendOp(ds.AppendOptions{Idempotent: &ds.IdempotentHeaders{ID: "p"}}), ds.ErrStaleEpoch,
			func(e *ds.Error) bool { return e.Epoch == 7 }},
		{"append 413", 413, nil, appendOp(ds.AppendOptions{}), ds.ErrPayloadTooLarge, nil},
		{"append 500 not retried", 500, nil, appendOp(ds.AppendOptions{}), ds.ErrServerError,
			func(e *ds.Error) bool { return e.Attempts == 1 }},
		{"append 503 retried", 503, nil, appendOp(ds.AppendOptions{}), ds.ErrServerError,
			func(e *ds.Error) bool { return e.Attempts == 3 }},
		{"append 500 retried when asked", 500, nil, appendOp(ds.AppendOptions{RetryAmbiguous: true}), ds.ErrServerError,
			func(e *ds.Error) bool { return e.Attempts == 3 }},
		{"read 429", 429, map[string]string{"Retry-After": "0"}, readOp, ds.ErrRateLimited,
			func(e *ds.Error) bool { return e.Attempts == 3 }},
		{"head 500", 502, nil, func(s *ds.Stream) error { _, err := s.Head(ctx()); return err }, ds.ErrServerError,
			func(e *ds.Error) bool { return e.Attempts == 3 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					for k, v := range tc.hdr {
						w.Header().Set(k, v)
					}
					w.WriteHeader(tc.status)
					io.WriteString(w, "server says no")
				})
				s := inproc(h, "/v1/stream/x", ds.WithRetry(ds.RetryPolicy{MaxAttempts: 3}))
				err := tc.op(s)
				var e *ds.Error
				if !errors.Is(err, tc.kind) || !errors.As(err, &e) {
					t.Fatalf("error %v, want kind %v", err, tc.kind)
				}
				if e.Status != tc.status || !strings.Contains(err.Error(), "/v1/stream/x") || (!strings.Contains(err.Error(), "server says no") && !strings.HasPrefix(tc.name, "head")) {
					t.Fatalf("error lacks context: %v", err)
				}
				if tc.check != nil && !tc.check(e) {
					t.Fatalf("error fields wrong: %+v", e)
				}
				if int(calls.Load()) != e.Attempts {
					t.Fatalf("server saw %d requests, error says %d attempts", calls.Load(), e.Attempts)
				}
			})
		})
	}
}

func ctx() context.Context { return context.Background() }

func readOp(s *ds.Stream) error { _, err := s.ReadAll(ctx(), ds.ReadOptions{}); return err }

func appendOp(o ds.AppendOptions) func(*ds.Stream) error {
	return func(s *ds.Stream) error { _, err := s.Append(ctx(), []byte("x"), o); return err }
}

// A plain append that fails before reaching the server (connection refused) is retried; the
// dynamic header is evaluated on every attempt.
func TestDynamicHeadersPerAttempt(t *testing.T) { synctest.Test(t, testDynamicHeadersPerAttempt) }

func testDynamicHeadersPerAttempt(t *testing.T) {
	var seen []string
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization")+"|"+r.URL.Query().Get("tok"))
		if calls.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Stream-Next-Offset", "1_1")
		w.WriteHeader(204)
	})
	n := 0
	s := inproc(h, "/s",
		ds.WithHeaderFunc("Authorization", func(context.Context) (string, error) { n++; return "Bearer " + strconv.Itoa(n), nil }),
		ds.WithParamFunc("tok", func(context.Context) (string, error) { return strconv.Itoa(n), nil }))
	res, err := s.Append(ctx(), []byte("x"), ds.AppendOptions{})
	if err != nil || res.NextOffset != "1_1" {
		t.Fatal(res, err)
	}
	if strings.Join(seen, ",") != "Bearer 1|0,Bearer 2|1" { // params are evaluated before headers
		t.Fatalf("headers per attempt: %v", seen)
	}
}

func TestCreateValidation(t *testing.T) {
	s := ds.NewStream("http://127.0.0.1:1/s")
	_, err := s.Create(ctx(), ds.CreateOptions{TTL: time.Hour, ExpiresAt: time.Now()})
	if !errors.Is(err, ds.ErrInvalidArgument) {
		t.Fatalf("TTL and ExpiresAt: %v", err)
	}
	if _, err := ds.NewStream("::bad").Head(ctx()); !errors.Is(err, ds.ErrInvalidArgument) {
		t.Fatalf("bad URL: %v", err)
	}
	if _, err := ds.NewClient(ds.WithRetry(ds.RetryPolicy{})); err != nil {
		t.Fatalf("zero retry policy (the defaults): %v", err)
	}
}

func TestDecodeItemErrors(t *testing.T) {
	var requests atomic.Int32 // the handlers of successive requests may overlap
	serve := func(body string) *ds.Stream {
		return inproc(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Stream-Next-Offset", "1_1")
			w.Header().Set("Stream-Up-To-Date", "true")
			io.WriteString(w, body)
		}), "/s")
	}
	// A value of the wrong type is consumed and reported; the chunk goes on.
	var ns []int
	var errs int
	for it, err := range ds.JSONItems[event](ctx(), serve(`[{"n":1},{"n":"x"},{"n":3}]`), ds.ReadOptions{}) {
		if err != nil {
			if !errors.Is(err, ds.ErrDecode) || errors.Is(err, ds.ErrParse) || it.Index != 1 {
				t.Fatalf("item %d: %v", it.Index, err)
			}
			errs++
			continue
		}
		ns = append(ns, it.Value.N)
	}
	if fmt.Sprint(ns) != "[1 3]" || errs != 1 {
		t.Fatalf("decoded %v with %d errors", ns, errs)
	}
	// A complete response with a truncated array, or with garbage, is malformed: no retry
	// under the default ParseFail.
	for _, body := range []string{`[{"n":1},{"n"`, `XY{"n":1}]`, `[{"n":1}]x`, `[{"n":1} {"n":2}]`} {
		requests.Store(0)
		_, _, err := ds.ReadJSON[event](ctx(), serve(body), ds.ReadOptions{})
		if !errors.Is(err, ds.ErrParse) || requests.Load() != 1 {
			t.Errorf("%s: %v after %d requests, want ErrParse after one", body, err, requests.Load())
		}
	}
}
