package dstest

import (
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
