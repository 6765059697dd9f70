package dstest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// freshClient makes every request on a new connection, so that the transport never retries a
// request whose reused connection failed.
var freshClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}

func TestFaultStatus(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("f-status")
	expect(t, 201, "PUT", u, "abc", "Content-Type", "text/plain")
	if err := srv.InjectFault("f-status", Fault{Status: 503, RetryAfter: 1500 * time.Millisecond, Count: 2}); err != nil {
		t.Fatal(err)
	}
	if n := srv.Handler().PendingFaults(); n != 2 {
		t.Fatalf("PendingFaults %d", n)
	}
	for range 2 {
		resp, _ := expect(t, 503, "GET", u, "")
		header(t, resp, "Retry-After", "2")
		header(t, resp, "Access-Control-Allow-Origin", "*")
	}
	if _, body := expect(t, 200, "GET", u, ""); body != "abc" {
		t.Fatalf("after the faults: %q", body)
	}
	if n := srv.Handler().PendingFaults(); n != 0 {
		t.Fatalf("PendingFaults %d", n)
	}
}

func TestFaultMethodAndOrder(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("f-order")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	must(t, srv.InjectFault(u[len(srv.URL):], Fault{Method: "post", Status: 429}))
	must(t, srv.InjectFault("f-order", Fault{Status: 500}))
	must(t, srv.InjectFault("f-order", Fault{Status: 502}))
	expect(t, 500, "GET", u, "") // the POST fault does not match; the next one does
	expect(t, 429, "POST", u, "x", "Content-Type", "text/plain")
	expect(t, 502, "HEAD", u, "")
	expect(t, 204, "POST", u, "x", "Content-Type", "text/plain")
	must(t, srv.InjectFault("f-order", Fault{Status: 500, Count: 3}))
	srv.ClearFaults()
	expect(t, 200, "GET", u, "")
	// A fault on another path does not apply.
	must(t, srv.InjectFault("other", Fault{Status: 500}))
	expect(t, 200, "GET", u, "")
}

func TestFaultDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHandler(Options{})
		must(t, err)
		serve(t, h, 201, "PUT", "/v1/stream/slow", "abc", "Content-Type", "text/plain")
		must(t, h.InjectFault("slow", Fault{Delay: 10 * time.Second}))
		start := time.Now()
		if body := serve(t, h, 200, "GET", "/v1/stream/slow", "").Body.String(); body != "abc" {
			t.Fatalf("body %q", body)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("served after %v, want 10s", d)
		}
		// A delay before a status.
		must(t, h.InjectFault("slow", Fault{Delay: time.Second, Status: 503}))
		start = time.Now()
		serve(t, h, 503, "GET", "/v1/stream/slow", "")
		if d := time.Since(start); d != time.Second {
			t.Fatalf("failed after %v, want 1s", d)
		}
	})
}

func TestFaultDrop(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("f-drop")
	expect(t, 201, "PUT", u, "abc", "Content-Type", "text/plain")
	must(t, srv.InjectFault("f-drop", Fault{Drop: true}))
	if resp, err := freshClient.Get(u); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request got status %d", resp.StatusCode)
	}
	// An append that was dropped before it was served left nothing behind.
	must(t, srv.InjectFault("f-drop", Fault{Drop: true, Method: "POST"}))
	if resp, err := freshClient.Post(u, "text/plain", strings.NewReader("lost")); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped append got status %d", resp.StatusCode)
	}
	if _, body := expect(t, 200, "GET", u, ""); body != "abc" {
		t.Fatalf("body %q", body)
	}
}

func TestFaultDropMidBody(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("f-mid")
	full := strings.Repeat("0123456789", 100)
	expect(t, 201, "PUT", u, full, "Content-Type", "text/plain")
	for _, tc := range []struct {
		f    Fault
		want int
	}{
		{Fault{DropMidBody: true}, 500},
		{Fault{DropMidBody: true, DropAfterBytes: 123}, 123},
		{Fault{DropMidBody: true, DropAfterBytes: 5000}, 999}, // never the whole body
	} {
		must(t, srv.InjectFault("f-mid", tc.f))
		resp, err := freshClient.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(full)) {
			t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != tc.want || string(b) != full[:tc.want] {
			t.Fatalf("%+v: read %d bytes, %v; want %d bytes and an unexpected EOF", tc.f, len(b), err, tc.want)
		}
	}
	expect(t, 200, "GET", u, "")
}

func TestFaultTruncateSSE(t *testing.T) {
	srv := newTestServer(t, Options{MaxChunkBytes: 1})
	u := srv.StreamURL("f-sse")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	for _, p := range []string{"a", "b", "c"} {
		expect(t, 204, "POST", u, p, "Content-Type", "text/plain")
	}
	expect(t, 204, "POST", u, "", "Stream-Closed", "true")
	must(t, srv.InjectFault("f-sse", Fault{TruncateSSEAfter: 3}))
	c := openSSE(t, u+"?offset=-1&live=sse")
	if d := c.expectData(); d != "a" {
		t.Fatalf("data %q", d)
	}
	ctl := c.expectControl()
	if d := c.expectData(); d != "b" {
		t.Fatalf("data %q", d)
	}
	c.expectEnd() // the partial fourth event is not an event
	// Reconnecting from the last control event's offset goes on where it stopped.
	c = openSSE(t, u+"?offset="+ctl.StreamNextOffset+"&live=sse")
	var got string
	for {
		ev, ok := c.next()
		if !ok {
			break
		}
		if ev.typ == "data" {
			got += ev.data
		}
	}
	if got != "bc" {
		t.Fatalf("after reconnecting: %q", got)
	}
	// A TruncateSSEAfter fault leaves other reads alone.
	must(t, srv.InjectFault("f-sse", Fault{TruncateSSEAfter: 1}))
	if _, body := expect(t, 200, "GET", u, ""); body != "a" { // MaxChunkBytes is 1
		t.Fatalf("catch-up: %q", body)
	}
}

func TestFaultValidation(t *testing.T) {
	h, err := NewHandler(Options{})
	must(t, err)
	for _, tc := range []struct {
		f    Fault
		want string
	}{
		{Fault{}, "nothing to do"},
		{Fault{Status: 503, Count: -1}, "Fault.Count"},
		{Fault{Status: 42}, "Fault.Status"},
		{Fault{Delay: -time.Second}, "Fault.Delay"},
		{Fault{RetryAfter: time.Second, Drop: true}, "Fault.RetryAfter: needs Status"},
		{Fault{DropAfterBytes: 3, Status: 500}, "Fault.DropAfterBytes: needs DropMidBody"},
		{Fault{Status: 500, Drop: true}, "at most one"},
		{Fault{DropMidBody: true, TruncateSSEAfter: 2}, "at most one"},
		{Fault{TruncateSSEAfter: -1}, "Fault.TruncateSSEAfter"},
	} {
		err := h.InjectFault("/v1/stream/x", tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.f, err, tc.want)
		}
	}
	if err := h.InjectFault("", Fault{Status: 500}); err == nil {
		t.Error("empty path accepted")
	}
	if n := h.PendingFaults(); n != 0 {
		t.Errorf("invalid faults installed: %d pending", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// serve calls h directly (no network, so it works inside a synctest bubble) and checks the
// status.
func serve(t *testing.T, h http.Handler, want int, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		t.Fatalf("%s %s: status %d, want %d (%s)", method, target, rec.Code, want, rec.Body)
	}
	return rec
}
