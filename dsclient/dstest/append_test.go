package dstest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestAppendStatuses(t *testing.T) {
	srv := newTestServer(t, Options{MaxBodyBytes: 100})
	u := srv.StreamURL("append")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	for _, tc := range []struct {
		name    string
		body    string
		headers []string
		want    int
	}{
		{"ok", "x", []string{"Content-Type", "text/plain"}, 204},
		{"content type parameters ignored", "x", []string{"Content-Type", "Text/Plain; charset=utf-8"}, 204},
		{"empty body", "", []string{"Content-Type", "text/plain"}, 400},
		{"no content type", "x", []string{"Content-Type", ""}, 400},
		{"content type mismatch", "x", []string{"Content-Type", "application/json"}, 409},
		{"too large", strings.Repeat("x", 101), []string{"Content-Type", "text/plain"}, 413},
		{"closed false is absent", "x", []string{"Content-Type", "text/plain", "Stream-Closed", "false"}, 204},
		{"closed yes is absent", "x", []string{"Content-Type", "text/plain", "Stream-Closed", "yes"}, 204},
	} {
		t.Run(tc.name, func(t *testing.T) { expect(t, tc.want, "POST", u, tc.body, tc.headers...) })
	}
	expect(t, 404, "POST", srv.StreamURL("missing"), "x", "Content-Type", "text/plain")
	expect(t, 404, "POST", srv.StreamURL("missing"), "", "Stream-Closed", "true")
}

func TestAppendFailuresLoseNothing(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("keep")
	expect(t, 201, "PUT", u, `[1,2]`, "Content-Type", "application/json")
	expect(t, 400, "POST", u, `[3,`, "Content-Type", "application/json")
	expect(t, 400, "POST", u, `[]`, "Content-Type", "application/json")
	expect(t, 409, "POST", u, `3`, "Content-Type", "text/plain")
	_, body := expect(t, 200, "GET", u, "")
	if body != "[1,2]" {
		t.Fatalf("body %s", body)
	}
}

func TestStreamSeq(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("seq")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	ct := "text/plain"
	expect(t, 204, "POST", u, "a", "Content-Type", ct, "Stream-Seq", "09")
	expect(t, 204, "POST", u, "b", "Content-Type", ct, "Stream-Seq", "10")
	expect(t, 409, "POST", u, "c", "Content-Type", ct, "Stream-Seq", "10") // not greater
	expect(t, 409, "POST", u, "d", "Content-Type", ct, "Stream-Seq", "1")  // "1" < "10"
	expect(t, 204, "POST", u, "e", "Content-Type", ct, "Stream-Seq", "2")  // "2" > "10": the order is lexicographic
	_, body := expect(t, 200, "GET", u, "")
	if body != "abe" {
		t.Fatalf("body %q", body)
	}
}

func TestCloseStream(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("close")
	expect(t, 201, "PUT", u, "abc", "Content-Type", "text/plain")
	resp, _ := expect(t, 204, "POST", u, "", "Stream-Closed", "true", "Content-Type", "application/json")
	header(t, resp, "Stream-Closed", "true")
	tail := resp.Header.Get("Stream-Next-Offset")
	// Closing again is idempotent.
	resp, _ = expect(t, 204, "POST", u, "", "Stream-Closed", "true")
	header(t, resp, "Stream-Next-Offset", tail)
	resp, _ = expect(t, 409, "POST", u, "x", "Content-Type", "text/plain")
	header(t, resp, "Stream-Closed", "true")
	header(t, resp, "Stream-Next-Offset", tail)
	resp, _ = expect(t, 200, "HEAD", u, "")
	header(t, resp, "Stream-Closed", "true")

	// Append and close in one request.
	v := srv.StreamURL("append-close")
	expect(t, 201, "PUT", v, "", "Content-Type", "text/plain")
	resp, _ = expect(t, 204, "POST", v, "last", "Content-Type", "text/plain", "Stream-Closed", "true")
	header(t, resp, "Stream-Closed", "true")
	resp, body := expect(t, 200, "GET", v, "")
	if body != "last" {
		t.Fatalf("body %q", body)
	}
	header(t, resp, "Stream-Closed", "true")
}

func TestIdempotentProducer(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("producer")
	expect(t, 201, "PUT", u, "", "Content-Type", "application/json")
	post := func(want int, epoch, seq int, body string, extra ...string) *http.Response {
		t.Helper()
		h := append([]string{"Content-Type", "application/json", "Producer-Id", "p1",
			"Producer-Epoch", fmt.Sprint(epoch), "Producer-Seq", fmt.Sprint(seq)}, extra...)
		resp, _ := expect(t, want, "POST", u, body, h...)
		return resp
	}
	resp := post(200, 0, 0, `"a"`)
	header(t, resp, "Producer-Epoch", "0")
	header(t, resp, "Producer-Seq", "0")
	first := resp.Header.Get("Stream-Next-Offset")
	post(200, 0, 1, `"b"`)
	resp = post(204, 0, 0, `"a"`) // a retry of seq 0
	header(t, resp, "Producer-Seq", "1")
	noHeader(t, resp, "Stream-Next-Offset")
	resp = post(409, 0, 3, `"d"`)
	header(t, resp, "Producer-Expected-Seq", "2")
	header(t, resp, "Producer-Received-Seq", "3")
	post(400, 1, 1, `"x"`) // a new epoch must start at 0
	post(200, 1, 0, `"c"`)
	resp = post(403, 0, 2, `"zombie"`)
	header(t, resp, "Producer-Epoch", "1")
	resp, _ = expect(t, 409, "POST", u, `"n"`, "Content-Type", "application/json", "Producer-Id", "p2", "Producer-Epoch", "0", "Producer-Seq", "1")
	header(t, resp, "Producer-Expected-Seq", "0")

	for _, h := range [][]string{
		{"Producer-Id", "p1"},
		{"Producer-Id", "p1", "Producer-Epoch", "0"},
		{"Producer-Id", "", "Producer-Epoch", "0", "Producer-Seq", "0"},
		{"Producer-Id", "p1", "Producer-Epoch", "x", "Producer-Seq", "0"},
		{"Producer-Id", "p1", "Producer-Epoch", "0", "Producer-Seq", "1e3"},
		{"Producer-Id", "p1", "Producer-Epoch", "-1", "Producer-Seq", "0"},
		{"Producer-Id", "p1", "Producer-Epoch", "0", "Producer-Seq", "9007199254740992"},
	} {
		expect(t, 400, "POST", u, `"bad"`, append([]string{"Content-Type", "application/json"}, h...)...)
	}

	_, body := expect(t, 200, "GET", u, "")
	if body != `["a","b","c"]` {
		t.Fatalf("body %s", body)
	}
	_, body = expect(t, 200, "GET", u+"?offset="+first, "")
	if body != `["b","c"]` {
		t.Fatalf("from %s: body %s", first, body)
	}

	// Closing as the producer's next append; its retry is a duplicate, others get 409.
	resp = post(204, 1, 1, "", "Stream-Closed", "true")
	header(t, resp, "Stream-Closed", "true")
	resp = post(204, 1, 1, "", "Stream-Closed", "true")
	header(t, resp, "Producer-Seq", "1")
	post(409, 1, 2, "", "Stream-Closed", "true")
	post(409, 1, 2, `"late"`)
}

func TestConcurrentProducersAndReaders(t *testing.T) {
	srv := newTestServer(t, Options{MaxChunkBytes: 64})
	u := srv.StreamURL("concurrent")
	expect(t, 201, "PUT", u, "", "Content-Type", "application/json")
	const producers, each = 4, 50
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every append is sent twice: the second is a duplicate.
				for range 2 {
					resp, b := do(t, "POST", u, fmt.Sprintf(`{"p":%d,"i":%d}`, p, i), "Content-Type", "application/json",
						"Producer-Id", fmt.Sprint("p", p), "Producer-Epoch", "0", "Producer-Seq", fmt.Sprint(i))
					if resp.StatusCode != 200 && resp.StatusCode != 204 {
						t.Errorf("producer %d seq %d: status %d %s", p, i, resp.StatusCode, b)
						return
					}
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				readAllChunks(t, u)
			}
		}()
	}
	wg.Wait()
	items := readAllChunks(t, u)
	if len(items) != producers*each {
		t.Fatalf("%d items, want %d", len(items), producers*each)
	}
	next := make([]int, producers)
	for _, it := range items {
		var p, i int
		if _, err := fmt.Sscanf(it, `{"p":%d,"i":%d}`, &p, &i); err != nil {
			t.Fatalf("item %s: %v", it, err)
		}
		if i != next[p] {
			t.Fatalf("producer %d: item %d after %d", p, i, next[p]-1)
		}
		next[p]++
	}
}
