package dstest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// do sends one request and returns the response with its body read.
func do(t *testing.T, method, url string, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, string(b)
}

// expect sends a request and fails the test unless the status is want.
func expect(t *testing.T, want int, method, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	resp, b := do(t, method, url, body, headers...)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d (body %q)", method, url, resp.StatusCode, want, b)
	}
	return resp, b
}

// newTestServer starts a server with short long-polls.
func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.LongPollTimeout == 0 {
		opts.LongPollTimeout = 200 * time.Millisecond
	}
	return ForTest(t, opts)
}

func header(t *testing.T, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Get(name); got != want {
		t.Errorf("%s: %q, want %q", name, got, want)
	}
}

func noHeader(t *testing.T, resp *http.Response, name string) {
	t.Helper()
	if got, ok := resp.Header[http.CanonicalHeaderKey(name)]; ok {
		t.Errorf("%s: %q, want none", name, got)
	}
}

// readAllChunks reads a JSON stream from the start to its tail, chunk by chunk, and returns
// its values as raw JSON.
func readAllChunks(t *testing.T, url string) []string {
	t.Helper()
	var items []string
	offset := "-1"
	for range 100000 {
		resp, body := do(t, "GET", url+"?offset="+offset, "")
		if resp.StatusCode != 200 {
			t.Errorf("GET %s at %s: status %d", url, offset, resp.StatusCode)
			return items
		}
		var vals []json.RawMessage
		if err := json.Unmarshal([]byte(body), &vals); err != nil {
			t.Errorf("GET %s at %s: %v in %q", url, offset, err, body)
			return items
		}
		for _, v := range vals {
			items = append(items, string(v))
		}
		offset = resp.Header.Get("Stream-Next-Offset")
		if resp.Header.Get("Stream-Up-To-Date") == "true" {
			return items
		}
		if len(vals) == 0 {
			t.Errorf("GET %s at %s: an empty chunk that is not up to date", url, offset)
			return items
		}
	}
	t.Errorf("GET %s: no end", url)
	return items
}

// waitSignals makes the server report on the returned channel each time a live read (long-poll
// or SSE) of a stream is about to wait for a change, so that tests know a reader is in place.
func waitSignals(srv *Server) <-chan string {
	ch := make(chan string, 100)
	f := func(path string) { ch <- path }
	srv.Handler().waitHook.Store(&f)
	return ch
}
