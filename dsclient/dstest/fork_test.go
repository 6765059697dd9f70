package dstest

import (
	"testing"
	"time"
)

func TestForkReads(t *testing.T) {
	srv := newTestServer(t, Options{})
	src := srv.StreamURL("fsrc")
	srcPath := src[len(srv.URL):]
	expect(t, 201, "PUT", src, "", "Content-Type", "text/plain")
	resp, _ := expect(t, 204, "POST", src, "ab", "Content-Type", "text/plain")
	mid := resp.Header.Get("Stream-Next-Offset")
	expect(t, 204, "POST", src, "cd", "Content-Type", "text/plain")

	// Fork at the middle, by path and by name.
	f1 := srv.StreamURL("f1")
	resp, _ = expect(t, 201, "PUT", f1, "", "Stream-Forked-From", srcPath, "Stream-Fork-Offset", mid)
	header(t, resp, "Content-Type", "text/plain")
	header(t, resp, "Stream-Next-Offset", mid)
	expect(t, 200, "PUT", f1, "", "Stream-Forked-From", srcPath, "Stream-Fork-Offset", mid)
	expect(t, 409, "PUT", f1, "", "Stream-Forked-From", srcPath, "Stream-Fork-Offset", zeroOffset)
	resp, _ = expect(t, 204, "POST", f1, "XY", "Content-Type", "text/plain")
	f1tail := resp.Header.Get("Stream-Next-Offset")
	expect(t, 204, "POST", src, "ef", "Content-Type", "text/plain") // after the fork: not inherited
	if _, body := expect(t, 200, "GET", f1, ""); body != "abXY" {
		t.Fatalf("fork: %q", body)
	}
	if _, body := expect(t, 200, "GET", f1+"?offset="+mid, ""); body != "XY" {
		t.Fatalf("fork from its fork offset: %q", body)
	}
	// A fork of the fork, at its tail (the default), with a sub-offset of nothing.
	f2 := srv.StreamURL("f2")
	resp, _ = expect(t, 201, "PUT", f2, "", "Stream-Forked-From", "f1")
	header(t, resp, "Stream-Next-Offset", f1tail)
	if _, body := expect(t, 200, "GET", f2, ""); body != "abXY" {
		t.Fatalf("fork of fork: %q", body)
	}

	// Errors.
	expect(t, 404, "PUT", srv.StreamURL("f3"), "", "Stream-Forked-From", "/v1/stream/none")
	expect(t, 400, "PUT", srv.StreamURL("f3"), "", "Stream-Forked-From", srcPath, "Stream-Fork-Offset", "0_999999")
	expect(t, 409, "PUT", srv.StreamURL("f3"), "", "Stream-Forked-From", srcPath, "Content-Type", "application/json")
	expect(t, 400, "PUT", srv.StreamURL("f3"), "", "Stream-Forked-From", srcPath, "Stream-Fork-Offset", mid, "Stream-Fork-Sub-Offset", "3")
	expect(t, 400, "PUT", srv.StreamURL("f3"), "", "Stream-Forked-From", srcPath, "Stream-Fork-Sub-Offset", "1") // at the tail

	// A binary sub-offset inherits part of the next append.
	f4 := srv.StreamURL("f4")
	expect(t, 201, "PUT", f4, "", "Stream-Forked-From", srcPath, "Stream-Fork-Offset", mid, "Stream-Fork-Sub-Offset", "1")
	if _, body := expect(t, 200, "GET", f4, ""); body != "abc" {
		t.Fatalf("sub-offset fork: %q", body)
	}
}

func TestForkJSONSubOffset(t *testing.T) {
	srv := newTestServer(t, Options{})
	src := srv.StreamURL("jsrc")
	expect(t, 201, "PUT", src, `[1,{"a":[2,3]},"4,5",6]`, "Content-Type", "application/json")
	f := srv.StreamURL("jfork")
	expect(t, 201, "PUT", f, "", "Stream-Forked-From", "jsrc", "Stream-Fork-Offset", zeroOffset, "Stream-Fork-Sub-Offset", "3")
	expect(t, 204, "POST", f, `7`, "Content-Type", "application/json")
	if _, body := expect(t, 200, "GET", f, ""); body != `[1,{"a":[2,3]},"4,5",7]` {
		t.Fatalf("fork: %s", body)
	}
	expect(t, 400, "PUT", srv.StreamURL("jfork2"), "", "Stream-Forked-From", "jsrc", "Stream-Fork-Offset", zeroOffset, "Stream-Fork-Sub-Offset", "5")
}

func TestForkSoftDelete(t *testing.T) {
	srv := newTestServer(t, Options{})
	src := srv.StreamURL("sd-src")
	expect(t, 201, "PUT", src, "abc", "Content-Type", "text/plain")
	fork := srv.StreamURL("sd-fork")
	expect(t, 201, "PUT", fork, "", "Stream-Forked-From", "sd-src")
	expect(t, 204, "DELETE", src, "")
	for _, m := range []string{"GET", "HEAD", "DELETE"} {
		expect(t, 410, m, src, "")
	}
	expect(t, 410, "POST", src, "x", "Content-Type", "text/plain")
	expect(t, 409, "PUT", src, "", "Content-Type", "text/plain")
	expect(t, 409, "PUT", srv.StreamURL("sd-fork2"), "", "Stream-Forked-From", "sd-src")
	if _, body := expect(t, 200, "GET", fork, ""); body != "abc" {
		t.Fatalf("fork of a deleted source: %q", body)
	}
	expect(t, 204, "DELETE", fork, "")
	expect(t, 404, "GET", src, "")
	expect(t, 201, "PUT", src, "", "Content-Type", "text/plain")
}

func TestForkLongPollWaitsForOwnAppends(t *testing.T) {
	srv := newTestServer(t, Options{LongPollTimeout: time.Minute})
	waits := waitSignals(srv)
	src := srv.StreamURL("lp-src")
	expect(t, 201, "PUT", src, "abc", "Content-Type", "text/plain")
	fork := srv.StreamURL("lp-fork")
	resp, _ := expect(t, 201, "PUT", fork, "", "Stream-Forked-From", "lp-src")
	tail := resp.Header.Get("Stream-Next-Offset")
	// Inherited data comes at once.
	if _, body := expect(t, 200, "GET", fork+"?offset=-1&live=long-poll", ""); body != "abc" {
		t.Fatalf("inherited: %q", body)
	}
	got := make(chan string, 1)
	go func() {
		_, body := do(t, "GET", fork+"?offset="+tail+"&live=long-poll", "")
		got <- body
	}()
	<-waits
	expect(t, 204, "POST", src, "source", "Content-Type", "text/plain") // does not wake the fork's reader
	expect(t, 204, "POST", fork, "fork", "Content-Type", "text/plain")
	if body := <-got; body != "fork" {
		t.Fatalf("woken by %q", body)
	}
}
