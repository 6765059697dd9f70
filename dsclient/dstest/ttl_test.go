package dstest

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"
)

func TestSlidingTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHandler(Options{})
		must(t, err)
		p := "/v1/stream/ttl"
		serve(t, h, 201, "PUT", p, "x", "Content-Type", "text/plain", "Stream-TTL", "10")
		time.Sleep(9 * time.Second)
		serve(t, h, 200, "GET", p, "") // a read renews the TTL
		time.Sleep(9 * time.Second)
		serve(t, h, 204, "POST", p, "y", "Content-Type", "text/plain") // so does an append
		time.Sleep(9 * time.Second)
		serve(t, h, 200, "HEAD", p, "") // a HEAD does not
		time.Sleep(time.Second)
		serve(t, h, 404, "HEAD", p, "")
		serve(t, h, 404, "GET", p, "")
		serve(t, h, 201, "PUT", p, "", "Content-Type", "text/plain") // the path is free again
	})
}

func TestExpiresAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHandler(Options{})
		must(t, err)
		p := "/v1/stream/expires"
		at := time.Now().Add(5 * time.Second).UTC().Format(time.RFC3339Nano)
		serve(t, h, 201, "PUT", p, "x", "Stream-Expires-At", at)
		time.Sleep(4 * time.Second)
		serve(t, h, 200, "GET", p, "") // reads do not move an absolute expiry
		time.Sleep(time.Second)
		serve(t, h, 404, "GET", p, "")
		serve(t, h, 404, "DELETE", p, "")
	})
}

func TestExpiredSourceWithFork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHandler(Options{})
		must(t, err)
		src, fork := "/v1/stream/src", "/v1/stream/fork"
		serve(t, h, 201, "PUT", src, "abc", "Content-Type", "text/plain", "Stream-TTL", "5")
		serve(t, h, 201, "PUT", fork, "", "Stream-Forked-From", src, "Stream-TTL", "100")
		time.Sleep(6 * time.Second)
		serve(t, h, 410, "GET", src, "") // expired, but the fork still reads through it
		serve(t, h, 409, "PUT", src, "", "Content-Type", "text/plain")
		if body := serve(t, h, 200, "GET", fork, "").Body.String(); body != "abc" {
			t.Fatalf("fork body %q", body)
		}
		serve(t, h, 204, "DELETE", fork, "")
		serve(t, h, 404, "GET", src, "") // its last fork gone, the source goes too
		serve(t, h, 201, "PUT", src, "", "Content-Type", "text/plain")
	})
}

func TestLongPollWaitsItsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHandler(Options{LongPollTimeout: 7 * time.Second})
		must(t, err)
		p := "/v1/stream/lp"
		serve(t, h, 201, "PUT", p, "", "Content-Type", "text/plain")
		start := time.Now()
		rec := serve(t, h, 204, "GET", p+"?offset=now&live=long-poll", "")
		if d := time.Since(start); d != 7*time.Second {
			t.Fatalf("answered after %v, want 7s", d)
		}
		if rec.Header().Get("Stream-Cursor") == "" {
			t.Fatal("no cursor")
		}
		// An append after 3 s ends the wait then.
		done := make(chan *httptest.ResponseRecorder)
		start = time.Now()
		go func() { done <- serve(t, h, 200, "GET", p+"?offset=now&live=long-poll", "") }()
		time.Sleep(3 * time.Second)
		serve(t, h, 204, "POST", p, "late", "Content-Type", "text/plain")
		rec = <-done
		if d := time.Since(start); d != 3*time.Second || rec.Body.String() != "late" {
			t.Fatalf("after %v: %q", d, rec.Body)
		}
	})
}

func TestExpiredStreamsAreSwept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHandler(Options{})
		must(t, err)
		serve(t, h, 201, "PUT", "/v1/stream/short", "", "Stream-TTL", "1")
		time.Sleep(2 * time.Second)
		for i := range sweepEvery {
			serve(t, h, 201, "PUT", fmt.Sprintf("/v1/stream/s%d", i), "")
		}
		h.mu.RLock()
		_, present := h.streams["/v1/stream/short"]
		n := len(h.streams)
		h.mu.RUnlock()
		if present || n != sweepEvery {
			t.Fatalf("expired stream still held (%v), %d streams", present, n)
		}
	})
}

func TestReset(t *testing.T) {
	srv := newTestServer(t, Options{LongPollTimeout: time.Minute})
	waits := waitSignals(srv)
	u := srv.StreamURL("reset")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	must(t, srv.InjectFault("other", Fault{Status: 500}))
	got := make(chan int)
	go func() {
		resp, _ := do(t, "GET", u+"?offset=now&live=long-poll", "")
		got <- resp.StatusCode
	}()
	<-waits
	srv.Handler().Reset()
	if s := <-got; s != 404 {
		t.Fatalf("waiting read after Reset: %d", s)
	}
	expect(t, 404, "GET", u, "")
	if n := srv.Handler().PendingFaults(); n != 0 {
		t.Fatalf("%d faults left", n)
	}
}
