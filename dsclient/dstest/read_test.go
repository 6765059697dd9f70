package dstest

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestReadOffsets(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("offsets")
	resp, _ := expect(t, 201, "PUT", u, "abc", "Content-Type", "text/plain")
	tail := resp.Header.Get("Stream-Next-Offset")
	for _, q := range []string{"", "?offset=-1", "?offset=" + zeroOffset, "?offset=0_0", "?offset=-1&unknown=1"} {
		if _, body := expect(t, 200, "GET", u+q, ""); body != "abc" {
			t.Errorf("GET %s: %q", q, body)
		}
	}
	for _, q := range []string{"?offset=", "?offset=abc", "?offset=1,2", "?offset=0_1%20", "?offset=..%2F0_1",
		"?offset=-1&offset=-1", "?offset=-2", "?offset=-1&live=forever", "?live=long-poll", "?live=sse"} {
		expect(t, 400, "GET", u+q, "")
	}
	// Past the tail: nothing, and the tail.
	resp, body := expect(t, 200, "GET", u+"?offset=1_0", "")
	if body != "" {
		t.Fatalf("past the tail: %q", body)
	}
	header(t, resp, "Stream-Next-Offset", tail)
	header(t, resp, "Stream-Up-To-Date", "true")
	expect(t, 404, "GET", srv.StreamURL("none")+"?offset=now", "")
	expect(t, 404, "GET", srv.StreamURL("none")+"?offset=bad", "")
}

func TestReadNow(t *testing.T) {
	srv := newTestServer(t, Options{})
	j := srv.StreamURL("now-json")
	expect(t, 201, "PUT", j, `[1,2]`, "Content-Type", "application/json")
	resp, body := expect(t, 200, "GET", j+"?offset=now", "")
	if body != "[]" {
		t.Fatalf("JSON now: %q", body)
	}
	header(t, resp, "Cache-Control", "no-store")
	header(t, resp, "Stream-Up-To-Date", "true")
	noHeader(t, resp, "ETag")
	tail := resp.Header.Get("Stream-Next-Offset")
	if _, body = expect(t, 200, "GET", j+"?offset="+tail, ""); body != "[]" {
		t.Fatalf("at the tail: %q", body)
	}
	b := srv.StreamURL("now-bytes")
	expect(t, 201, "PUT", b, "xyz", "Content-Type", "application/octet-stream", "Stream-Closed", "true")
	resp, body = expect(t, 200, "GET", b+"?offset=now", "")
	if body != "" {
		t.Fatalf("bytes now: %q", body)
	}
	header(t, resp, "Stream-Closed", "true")
}

func TestReadClosedEOF(t *testing.T) {
	srv := newTestServer(t, Options{MaxChunkBytes: 2})
	u := srv.StreamURL("eof")
	expect(t, 201, "PUT", u, "ab", "Content-Type", "text/plain")
	expect(t, 204, "POST", u, "cd", "Content-Type", "text/plain", "Stream-Closed", "true")
	// The first chunk does not reach the tail: no Stream-Closed, no Up-To-Date.
	resp, body := expect(t, 200, "GET", u, "")
	if body != "ab" {
		t.Fatalf("first chunk %q", body)
	}
	noHeader(t, resp, "Stream-Closed")
	noHeader(t, resp, "Stream-Up-To-Date")
	resp, body = expect(t, 200, "GET", u+"?offset="+resp.Header.Get("Stream-Next-Offset"), "")
	if body != "cd" {
		t.Fatalf("last chunk %q", body)
	}
	header(t, resp, "Stream-Closed", "true")
	header(t, resp, "Stream-Up-To-Date", "true")
	resp, body = expect(t, 200, "GET", u+"?offset="+resp.Header.Get("Stream-Next-Offset"), "")
	if body != "" {
		t.Fatalf("EOF body %q", body)
	}
	header(t, resp, "Stream-Closed", "true")
}

func TestETag(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("etag")
	expect(t, 201, "PUT", u, "a", "Content-Type", "text/plain")
	resp, _ := expect(t, 200, "GET", u, "")
	etag := resp.Header.Get("ETag")
	if etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q", etag)
	}
	resp, body := expect(t, 304, "GET", u, "", "If-None-Match", etag)
	if body != "" {
		t.Fatalf("304 body %q", body)
	}
	header(t, resp, "ETag", etag)
	expect(t, 200, "GET", u, "", "If-None-Match", `"other"`)
	expect(t, 204, "POST", u, "", "Stream-Closed", "true")
	// Closing changes the ETag even without new data.
	resp, _ = expect(t, 200, "GET", u, "", "If-None-Match", etag)
	if resp.Header.Get("ETag") == etag {
		t.Fatal("the ETag did not change when the stream closed")
	}
}

func TestMaxChunkBytes(t *testing.T) {
	srv := newTestServer(t, Options{MaxChunkBytes: 25})
	u := srv.StreamURL("chunks")
	expect(t, 201, "PUT", u, "", "Content-Type", "application/json")
	var want []string
	for i := range 20 {
		v := strings.Repeat("x", i)
		want = append(want, `"`+v+`"`)
		expect(t, 204, "POST", u, `["`+v+`"]`, "Content-Type", "application/json")
	}
	// One batch bigger than the limit still comes out whole.
	expect(t, 204, "POST", u, `["`+strings.Repeat("y", 100)+`","z"]`, "Content-Type", "application/json")
	want = append(want, `"`+strings.Repeat("y", 100)+`"`, `"z"`)
	got := readAllChunks(t, u)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// Count the chunks: several values per chunk, never more than the limit unless one append is.
	chunks := 0
	for offset := "-1"; ; chunks++ {
		resp, body := expect(t, 200, "GET", u+"?offset="+offset, "")
		if len(body) > 25+2 && strings.Count(body, ",") > 1 {
			t.Fatalf("chunk of %d bytes: %s", len(body), body)
		}
		offset = resp.Header.Get("Stream-Next-Offset")
		if resp.Header.Get("Stream-Up-To-Date") == "true" {
			break
		}
	}
	if chunks < 10 {
		t.Fatalf("%d chunks", chunks)
	}
}

func TestCompression(t *testing.T) {
	srv := newTestServer(t, Options{Compression: true})
	u := srv.StreamURL("gzip")
	big := strings.Repeat("0123456789", 200)
	expect(t, 201, "PUT", u, big, "Content-Type", "text/plain")
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	header(t, resp, "Content-Encoding", "gzip")
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil || string(b) != big {
		t.Fatalf("gunzipped %d bytes, %v", len(b), err)
	}
	for _, ae := range []string{"", "identity", "gzip;q=0", "br"} {
		req.Header.Set("Accept-Encoding", ae)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, []byte(big)) {
			t.Errorf("Accept-Encoding %q: encoding %q, %d bytes", ae, resp.Header.Get("Content-Encoding"), len(b))
		}
	}
}

func TestLongPoll(t *testing.T) {
	srv := newTestServer(t, Options{LongPollTimeout: 5 * time.Second})
	waits := waitSignals(srv)
	u := srv.StreamURL("lp")
	resp, _ := expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	tail := resp.Header.Get("Stream-Next-Offset")

	// Data that exists comes back at once.
	expect(t, 204, "POST", u, "x", "Content-Type", "text/plain")
	resp, body := expect(t, 200, "GET", u+"?offset=-1&live=long-poll", "")
	if body != "x" || resp.Header.Get("Stream-Cursor") == "" {
		t.Fatalf("body %q, cursor %q", body, resp.Header.Get("Stream-Cursor"))
	}
	tail = resp.Header.Get("Stream-Next-Offset")

	// A waiting read is woken by an append.
	got := make(chan string, 1)
	go func() {
		resp, body := do(t, "GET", u+"?offset="+tail+"&live=long-poll", "")
		got <- resp.Status + " " + body
	}()
	<-waits
	expect(t, 204, "POST", u, "y", "Content-Type", "text/plain")
	if g := <-got; g != "200 OK y" {
		t.Fatalf("woken read: %q", g)
	}

	// A waiting read is woken by a close: 204 with Stream-Closed.
	resp, _ = expect(t, 200, "HEAD", u, "")
	tail = resp.Header.Get("Stream-Next-Offset")
	closed := make(chan *http.Response, 1)
	go func() {
		resp, _ := do(t, "GET", u+"?offset="+tail+"&live=long-poll", "")
		closed <- resp
	}()
	<-waits
	expect(t, 204, "POST", u, "", "Stream-Closed", "true")
	resp = <-closed
	if resp.StatusCode != 204 || resp.Header.Get("Stream-Closed") != "true" || resp.Header.Get("Stream-Next-Offset") != tail {
		t.Fatalf("after close: %d %v", resp.StatusCode, resp.Header)
	}
	// At the tail of a closed stream it answers at once.
	resp, _ = expect(t, 204, "GET", u+"?offset=now&live=long-poll", "")
	header(t, resp, "Stream-Closed", "true")
	header(t, resp, "Stream-Up-To-Date", "true")
}

func TestLongPollTimeoutAndCursor(t *testing.T) {
	// Cursors count wall-clock intervals: with day-long ones the test's requests all fall in
	// one interval (with the default 20 s, a run that crossed a boundary saw two).
	srv := newTestServer(t, Options{LongPollTimeout: 50 * time.Millisecond, CursorInterval: 24 * time.Hour})
	u := srv.StreamURL("lp-timeout")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	resp, _ := expect(t, 204, "GET", u+"?offset=now&live=long-poll", "")
	header(t, resp, "Stream-Up-To-Date", "true")
	header(t, resp, "Stream-Next-Offset", zeroOffset)
	cursor := resp.Header.Get("Stream-Cursor")
	if cursor == "" {
		t.Fatal("no cursor on 204")
	}
	// Echoing the current cursor gets a strictly greater one.
	resp, _ = expect(t, 204, "GET", u+"?offset=now&live=long-poll&cursor="+cursor, "")
	if c2 := resp.Header.Get("Stream-Cursor"); len(c2) < len(cursor) || (len(c2) == len(cursor) && c2 <= cursor) {
		t.Fatalf("cursor %s after echoing %s", c2, cursor)
	}
	// An old cursor gets the current interval.
	resp, _ = expect(t, 204, "GET", u+"?offset=now&live=long-poll&cursor=5", "")
	header(t, resp, "Stream-Cursor", cursor)
}

func TestLongPollEndsOnDeleteAndClose(t *testing.T) {
	srv := newTestServer(t, Options{LongPollTimeout: time.Minute})
	waits := waitSignals(srv)
	u := srv.StreamURL("lp-delete")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	got := make(chan int, 2)
	go func() {
		resp, _ := do(t, "GET", u+"?offset=now&live=long-poll", "")
		got <- resp.StatusCode
	}()
	<-waits
	expect(t, 204, "DELETE", u, "")
	if s := <-got; s != 404 {
		t.Fatalf("deleted while waiting: %d", s)
	}

	v := srv.StreamURL("lp-close")
	expect(t, 201, "PUT", v, "", "Content-Type", "text/plain")
	go func() {
		resp, _ := do(t, "GET", v+"?offset=now&live=long-poll", "")
		got <- resp.StatusCode
	}()
	<-waits
	srv.Handler().Close()
	if s := <-got; s != 204 {
		t.Fatalf("handler closed while waiting: %d", s)
	}
}

func TestHeadMetadata(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("head")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain", "Stream-TTL", "120")
	resp, body := expect(t, 200, "HEAD", u, "")
	header(t, resp, "Stream-TTL", "120")
	header(t, resp, "Content-Type", "text/plain")
	noHeader(t, resp, "Stream-Expires-At")
	noHeader(t, resp, "Stream-Closed")
	if body != "" {
		t.Fatalf("HEAD body %q", body)
	}
	v := srv.StreamURL("head-expires")
	expect(t, 201, "PUT", v, "", "Stream-Expires-At", "2099-01-01T00:00:00Z")
	resp, _ = expect(t, 200, "HEAD", v, "")
	header(t, resp, "Stream-Expires-At", "2099-01-01T00:00:00Z")
	header(t, resp, "Content-Type", "application/octet-stream")
}
